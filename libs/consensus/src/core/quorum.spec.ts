import { MajorityConfig, VoteResult } from './quorum';

describe('MajorityConfig', () => {
  it.each([
    [['a'], [7], 7],
    [['a', 'b'], [7, 3], 3],
    [['a', 'b', 'c'], [7, 3, 5], 5],
    [['a', 'b', 'c'], [0, 0, 9], 0],
    [['a', 'b', 'c', 'd'], [1, 2, 3, 4], 2],
    [['a', 'b', 'c', 'd', 'e'], [9, 1, 8, 2, 7], 7],
    [['a', 'b', 'c', 'd', 'e'], [5, 5, 5, 1, 1], 5],
    [[], [], Infinity],
  ])('committedIndex of %j with acks %j is %d', (voters, acks, want) => {
    const c = new MajorityConfig(voters);
    const by = new Map(voters.map((v, i) => [v, acks[i]]));
    expect(c.committedIndex((id) => by.get(id) ?? 0)).toBe(want);
  });

  it.each([
    [['a'], {}, VoteResult.VotePending],
    [['a'], { a: true }, VoteResult.VoteWon],
    [['a'], { a: false }, VoteResult.VoteLost],
    [['a', 'b', 'c'], { a: true }, VoteResult.VotePending],
    [['a', 'b', 'c'], { a: true, b: true }, VoteResult.VoteWon],
    [['a', 'b', 'c'], { a: true, b: false }, VoteResult.VotePending],
    [['a', 'b', 'c'], { a: false, b: false }, VoteResult.VoteLost],
    [['a', 'b', 'c', 'd'], { a: true, b: true }, VoteResult.VotePending],
    [['a', 'b', 'c', 'd'], { a: true, b: true, c: false, d: false }, VoteResult.VoteLost],
    [['a', 'b', 'c', 'd'], { a: true, b: true, c: true }, VoteResult.VoteWon],
    [['a', 'b', 'c'], { x: true, y: true }, VoteResult.VotePending], // non-voters do not count
  ])('voteResult of %j with votes %j', (voters, votes, want) => {
    const c = new MajorityConfig(voters);
    expect(c.voteResult(new Map(Object.entries(votes)))).toBe(want);
  });

  it('voteResult accepts a set of acknowledgements (ReadIndex rounds)', () => {
    const c = new MajorityConfig(['a', 'b', 'c']);
    expect(c.voteResult(new Set(['a']))).toBe(VoteResult.VotePending);
    expect(c.voteResult(new Set(['a', 'c']))).toBe(VoteResult.VoteWon);
  });
});

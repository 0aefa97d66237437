import { ents, it2 } from '../../../../test/support/raft-test-util';
import { Unstable } from './unstable';

function unstable(offset: number, terms: number[], inProgress = offset): Unstable {
  const u = new Unstable(offset);
  if (terms.length > 0) u.truncateAndAppend(ents(offset, terms));
  u.offsetInProgress = inProgress;
  return u;
}

describe('Unstable', () => {
  it('knows last index and terms of its entries only', () => {
    const u = unstable(5, [1, 2]);
    expect(u.maybeLastIndex()).toBe(6);
    expect([u.maybeTerm(4), u.maybeTerm(5), u.maybeTerm(6), u.maybeTerm(7)]).toEqual([undefined, 1, 2, undefined]);
    expect(new Unstable(5).maybeLastIndex()).toBeUndefined();
  });

  it.each([
    // offset, terms, inProgress, append first index, append terms, want offset, want inProgress, want [index, term]
    ['plain append', 5, [1], 6, 6, [1, 1], 5, 6, [[5, 1], [6, 1], [7, 1]]],
    ['replace everything (from = offset)', 5, [1], 6, 5, [2, 2], 5, 5, [[5, 2], [6, 2]]],
    ['replace everything (from < offset)', 5, [1], 6, 4, [2, 2, 2], 4, 4, [[4, 2], [5, 2], [6, 2]]],
    ['truncate a suffix', 5, [1, 1, 1], 8, 6, [2], 5, 6, [[5, 1], [6, 2]]],
    ['truncate after the in-progress part', 5, [1, 1, 1], 6, 7, [2], 5, 6, [[5, 1], [6, 1], [7, 2]]],
  ])('truncateAndAppend: %s', (_n, offset, terms, inProgress, from, appendTerms, wantOffset, wantInProgress, want) => {
    const u = unstable(offset, terms, inProgress);
    u.truncateAndAppend(ents(from, appendTerms));
    expect(u.offset).toBe(wantOffset);
    expect(u.offsetInProgress).toBe(wantInProgress);
    expect(it2(u.slice(u.offset, u.offset + u.length))).toEqual(want);
  });

  it.each([
    // terms (offset 5), stableTo index, term, want offset, want remaining length
    ['prefix', [1, 1, 2], 5, 1, 6, 2],
    ['everything', [1, 1, 2], 7, 2, 8, 0],
    ['term mismatch: the entry was overwritten meanwhile', [1, 1, 2], 7, 1, 5, 3],
    ['below the offset', [1, 1, 2], 4, 1, 5, 3],
    ['beyond the entries', [1, 1, 2], 8, 2, 5, 3],
  ])('stableTo: %s', (_n, terms, index, term, wantOffset, wantLen) => {
    const u = unstable(5, terms, 8);
    u.stableTo(index, term);
    expect(u.offset).toBe(wantOffset);
    expect(u.length).toBe(wantLen);
    expect(u.offsetInProgress).toBeGreaterThanOrEqual(u.offset);
  });

  it('hands out entries once: nextEntries, acceptInProgress', () => {
    const u = unstable(5, [1, 1]);
    expect(it2(u.nextEntries())).toEqual([[5, 1], [6, 1]]);
    u.acceptInProgress();
    expect(u.hasNextEntries()).toBe(false);
    expect(u.nextEntries()).toEqual([]);
    u.truncateAndAppend(ents(7, [1]));
    expect(it2(u.nextEntries())).toEqual([[7, 1]]);
    // A conflict inside the in-progress part hands the replaced entries out again.
    u.acceptInProgress();
    u.truncateAndAppend(ents(6, [2]));
    expect(it2(u.nextEntries())).toEqual([[6, 2]]);
  });

  it('drops its persisted prefix without copying the rest (many small stableTo calls)', () => {
    const u = new Unstable(1);
    for (let i = 1; i <= 5000; i++) u.truncateAndAppend(ents(i, [1]));
    for (let i = 1; i <= 5000; i++) {
      u.stableTo(i, 1);
      if (i < 5000) expect(u.slice(i + 1, i + 2)[0].index).toBe(i + 1);
    }
    expect(u.length).toBe(0);
    expect(u.offset).toBe(5001);
  });

  it('slice checks its bounds', () => {
    const u = unstable(5, [1, 1]);
    expect(() => u.slice(4, 6)).toThrow('out of bound');
    expect(() => u.slice(5, 8)).toThrow('out of bound');
    expect(() => u.slice(6, 5)).toThrow('invalid');
  });
});

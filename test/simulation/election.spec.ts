/**
 * Leader election scenarios: the classic lab suite (2A) plus pre-vote, check-quorum and leadership
 * transfer, on the deterministic simulator (invariants checked after every event).
 */
import { MessageType, StateType } from '@app/consensus';
import { RELIABLE, UNRELIABLE } from './network';
import { checkNoLeader, ELECTION_TICKS, forSeeds, makeCluster, stateOf, termOf } from './scenario';

describe('leader election', () => {
  it('TestInitialElection: one leader is elected, and the term stays put without failures', () => {
    forSeeds([1, 2, 3, 4, 5], (seed) => {
      const c = makeCluster({ size: 3, seed });
      c.checkOneLeader();
      const term1 = c.checkTerms();
      expect(term1).toBeGreaterThanOrEqual(1);
      c.runTicks(2 * ELECTION_TICKS);
      expect(c.checkTerms()).toBe(term1);
      c.checkOneLeader();
    });
  });

  it('TestReElection: a new leader after the leader is cut off; none without a quorum', () => {
    forSeeds([11, 12, 13, 14, 15], (seed) => {
      const c = makeCluster({ size: 3, seed });
      const ids = c.ids;
      const leader1 = c.checkOneLeader();
      c.disconnect(leader1);
      c.checkOneLeader();
      // The old leader rejoins: still exactly one leader.
      c.connect(leader1);
      const leader2 = c.checkOneLeader();
      // No quorum: no leader among the connected.
      const other = ids[(ids.indexOf(leader2) + 1) % ids.length];
      c.disconnect(leader2);
      c.disconnect(other);
      c.runTicks(2 * ELECTION_TICKS);
      checkNoLeader(c);
      c.connect(other);
      c.checkOneLeader();
      c.connect(leader2);
      c.checkOneLeader();
    });
  });

  it('TestManyElections: a leader emerges after each of many random partitions (7 nodes)', () => {
    forSeeds([21, 22, 23], (seed) => {
      const c = makeCluster({ size: 7, seed });
      c.checkOneLeader();
      for (let iter = 0; iter < 10; iter++) {
        const cut = c.rng.shuffle([...c.ids]).slice(0, 3);
        cut.forEach((id) => c.disconnect(id));
        // Either the current leader survives, or a new one is elected.
        c.checkOneLeader();
        cut.forEach((id) => c.connect(id));
      }
      c.checkOneLeader();
    });
  });

  it('TestPreVoteFlappingNode: a partitioned node does not raise its term, and does not depose the leader when it rejoins', () => {
    forSeeds([31, 32, 33], (seed) => {
      const c = makeCluster({ size: 3, seed, preVote: true, checkQuorum: true });
      const leader = c.checkOneLeader();
      const term = termOf(c, leader);
      const flapper = c.ids.find((id) => id !== leader)!;
      for (let round = 0; round < 5; round++) {
        c.disconnect(flapper);
        c.runTicks(5 * ELECTION_TICKS);
        // Pre-vote rounds fail without a quorum and leave no trace in the term.
        expect(termOf(c, flapper)).toBe(term);
        c.connect(flapper);
        c.runTicks(ELECTION_TICKS);
        expect(c.leaders()).toEqual([{ id: leader, term }]);
      }
    });
  });

  it('without pre-vote, the same flapping node does raise its term on every timeout (the contrast)', () => {
    const c = makeCluster({ size: 3, seed: 34, preVote: false, checkQuorum: true });
    const leader = c.checkOneLeader();
    const term = termOf(c, leader);
    const flapper = c.ids.find((id) => id !== leader)!;
    c.disconnect(flapper);
    c.runTicks(5 * ELECTION_TICKS);
    expect(termOf(c, flapper)).toBeGreaterThan(term + 2);
  });

  it('TestCheckQuorum: a leader cut off from its quorum steps down within an election timeout or two', () => {
    forSeeds([41, 42, 43], (seed) => {
      const c = makeCluster({ size: 5, seed, checkQuorum: true });
      const leader = c.checkOneLeader();
      c.disconnect(leader);
      // check-quorum runs every electionTick ticks: at most two rounds to notice.
      c.runTicks(2 * 10 + 2);
      // (It may be pre-campaigning by now, in vain.)
      expect(stateOf(c, leader)).not.toBe(StateType.Leader);
      expect(() => c.raft(leader).read({ resolve() {}, reject() {} }, { onFollower: true })).toThrow('no leader');
      c.connect(leader);
      c.checkOneLeader();
    });
  });

  it('without check-quorum, the cut-off leader keeps believing it leads (the contrast)', () => {
    const c = makeCluster({ size: 5, seed: 44, checkQuorum: false });
    const leader = c.checkOneLeader();
    c.disconnect(leader);
    c.runTicks(5 * ELECTION_TICKS);
    expect(stateOf(c, leader)).toBe(StateType.Leader);
  });

  it('a leader that loses its followers one way only (they cannot answer) steps down', () => {
    const c = makeCluster({ size: 3, seed: 45 });
    const leader = c.checkOneLeader();
    for (const id of c.ids) if (id !== leader) c.net.block(id, leader);
    c.runTicks(ELECTION_TICKS);
    expect(stateOf(c, leader)).not.toBe(StateType.Leader);
  });

  it('TestLeadershipTransfer: leadership moves to a lagging follower, with no committed entry lost', () => {
    forSeeds([51, 52, 53, 54], (seed) => {
      const c = makeCluster({ size: 3, seed, maxEntriesPerMsg: 8 });
      const leader = c.checkOneLeader();
      const target = c.ids.find((id) => id !== leader)!;
      // The target falls behind.
      c.disconnect(target);
      for (let i = 0; i < 20; i++) c.one(2, false);
      c.proposeMany(leader, 100);
      c.runTicks(5);
      c.connect(target);
      const committedBefore = c.checker.commitIndex;
      c.transferLeadership(leader, target);
      // Proposals are refused during the transfer.
      expect(c.propose(leader)).toBeUndefined();
      expect(c.runUntil(() => stateOf(c, target) === StateType.Leader, ELECTION_TICKS)).toBe(true);
      expect(stateOf(c, leader)).toBe(StateType.Follower);
      // The new leader holds everything committed before (leader completeness is also checked on every
      // election by the invariant checker) and commits new entries.
      expect(c.status(target)!.lastIndex).toBeGreaterThanOrEqual(committedBefore);
      const idx = c.one(3, false);
      expect(c.nCommitted(committedBefore).count).toBe(3);
      expect(idx).toBeGreaterThan(committedBefore);
    });
  });

  it('a transfer to an unreachable node is abandoned after an election timeout, and proposals resume', () => {
    const c = makeCluster({ size: 3, seed: 55 });
    const leader = c.checkOneLeader();
    const target = c.ids.find((id) => id !== leader)!;
    c.disconnect(target);
    c.one(2, false);
    c.transferLeadership(leader, target);
    expect(c.status(leader)!.leadTransferee).toBe(target);
    expect(c.propose(leader)).toBeUndefined();
    c.runTicks(12);
    expect(c.status(leader)!.leadTransferee).toBe('');
    expect(stateOf(c, leader)).toBe(StateType.Leader);
    expect(c.propose(leader)).toBeDefined();
  });

  it('a transfer requested on a follower is forwarded to the leader', () => {
    const c = makeCluster({ size: 3, seed: 56 });
    const leader = c.checkOneLeader();
    const [a, b] = c.ids.filter((id) => id !== leader);
    c.one(3, false);
    c.transferLeadership(a, b);
    expect(c.runUntil(() => stateOf(c, b) === StateType.Leader, ELECTION_TICKS)).toBe(true);
  });

  it('a single-node cluster elects itself and commits', () => {
    const c = makeCluster({ size: 1, seed: 57 });
    const leader = c.checkOneLeader();
    expect(leader).toBe('n1');
    const idx = c.one(1, false);
    c.crash(leader);
    c.restart(leader);
    c.checkOneLeader();
    expect(c.one(1, false)).toBeGreaterThan(idx);
  });

  it('elections converge on an unreliable network', () => {
    forSeeds([61, 62, 63], (seed) => {
      const c = makeCluster({ size: 5, seed, net: UNRELIABLE });
      c.checkOneLeader();
      c.setNetwork(RELIABLE);
      c.one(5, true);
    });
  });

  it('an election costs a bounded number of messages (no vote storms)', () => {
    forSeeds([71, 72, 73, 74, 75], (seed) => {
      const c = makeCluster({ size: 3, seed });
      c.checkOneLeader();
      const votes = [MessageType.MsgPreVote, MessageType.MsgPreVoteResp, MessageType.MsgVote, MessageType.MsgVoteResp];
      const n = votes.reduce((s, t) => s + (c.stats.byType.get(t) ?? 0), 0);
      // One successful round is 8 messages (pre-vote and vote, request and response, to 2 peers).
      expect(n).toBeLessThanOrEqual(24);
    });
  });
});

/**
 * Membership changes on the production node loop (RaftNode.changeMembership), one member at a time: the
 * operator's procedures (grow 3 to 5, shrink 5 to 3, replace a dead node, remove the leader), the refusals
 * that keep them safe, a joining node caught up by a snapshot of a compacted log, and a learner that never
 * counts toward a commit. The checker follows the configuration through the committed ConfChange entries
 * and checks every invariant against it after every step.
 */
import { MembershipChange, NodeId, StateType } from '@app/consensus';
import { Cluster, MembershipRequest } from './cluster';
import { ELECTION_TICKS, forSeedsAsync, makeCluster, stateOf } from './scenario';

/** Asks `leader` (default: the one that emerges) for `change` and waits for the answer. */
async function ask(c: Cluster, change: MembershipChange, leader = c.checkOneLeader()): Promise<MembershipRequest> {
  return c.waitForChange(c.changeMembership(leader, change));
}

/** Asks for `change` and expects it committed; returns its entry's index. */
async function commit(c: Cluster, change: MembershipChange, leader?: NodeId): Promise<number> {
  const r = await ask(c, change, leader);
  expect([r.outcome, r.error?.message]).toEqual(['committed', undefined]);
  return r.index!;
}

/** A new node, added as a learner: it joins with no configuration and catches up from the leader. */
async function addLearner(c: Cluster): Promise<NodeId> {
  const id = c.addNode();
  await commit(c, { op: 'add', nodeId: id, url: `sim://${id}`, learner: true });
  return id;
}

/** Promotes a learner, asking again while it is refused for not having caught up; returns those refusals. */
async function promote(c: Cluster, id: NodeId): Promise<number> {
  for (let refusals = 0; refusals < 30; refusals++) {
    const r = await ask(c, { op: 'promote', nodeId: id });
    if (r.outcome === 'committed') return refusals;
    expect(r.error?.message).toMatch(/has not caught up/);
    c.runTicks(5);
  }
  throw new Error(`${id} was never promoted`);
}

/** `id` holds every committed entry: it applied each (or restored a snapshot covering it). */
function holdsEverything(c: Cluster, id: NodeId): void {
  const n = c.node(id);
  expect(n.smApplied).toBe(c.checker.commitIndex);
  for (let i = 1; i <= c.checker.commitIndex; i++) {
    if (n.applied[i] !== c.checker.appliedIdentAt(i)) throw new Error(`${id} lacks committed entry ${i}`);
  }
}

describe('membership changes, one member at a time', () => {
  it('grows from 3 to 5: new nodes join as learners, catch up from a snapshot taken for them, are promoted', async () => {
    await forSeedsAsync([601, 602, 603], async (seed) => {
      // No periodic snapshots: the leader takes one when a member is added, to catch the joining node up.
      const c = makeCluster({ size: 3, seed });
      for (let i = 0; i < 5; i++) c.one(3, true);
      const n4 = await addLearner(c);
      const n5 = await addLearner(c);
      expect(c.config).toMatchObject({ voters: ['n1', 'n2', 'n3'], learners: [n4, n5] });
      await promote(c, n4);
      await promote(c, n5);
      expect(c.config).toMatchObject({ voters: ['n1', 'n2', 'n3', n4, n5], learners: [] });
      expect(c.node(n4).installs + c.node(n5).installs).toBeGreaterThanOrEqual(2);
      // A quorum is 3 of 5 now: two of the original nodes down, the others and the new ones commit.
      c.crash('n1');
      c.crash('n2');
      const idx = c.one(3, true);
      expect(c.nCommitted(idx).count).toBe(3);
      holdsEverything(c, n4);
      holdsEverything(c, n5);
      c.settle();
    });
  });

  it('shrinks from 5 to 3: the removed nodes stop; a quorum is then 2 of 3', async () => {
    await forSeedsAsync([611, 612, 613], async (seed) => {
      const c = makeCluster({ size: 5, seed });
      c.one(5, true);
      const leader = c.checkOneLeader();
      const [a, b] = c.ids.filter((id) => id !== leader);
      await commit(c, { op: 'remove', nodeId: a });
      await commit(c, { op: 'remove', nodeId: b });
      expect(c.config.voters).toEqual(c.ids.filter((id) => id !== a && id !== b));
      // Each applied its own removal (the leader told it the commit index) and stopped for good.
      expect(c.runUntil(() => c.node(a).removed && c.node(b).removed, ELECTION_TICKS)).toBe(true);
      expect([c.node(a).alive, c.node(b).alive]).toEqual([false, false]);
      c.restart(a);
      expect(c.node(a).alive).toBe(false);
      // One of the three remaining down: the other two still commit.
      c.crash(c.config.voters.find((id) => id !== leader)!);
      const idx = c.one(2, true);
      expect(c.nCommitted(idx).count).toBe(2);
      c.settle();
    });
  });

  it('replaces a dead node: remove n1, add n4, promote it; with n2 down too, n3 and n4 commit and n4 has everything', async () => {
    await forSeedsAsync([621, 622, 623], async (seed) => {
      const c = makeCluster({ size: 3, seed, snapshotEntries: 8, snapshotCatchUpEntries: 2 });
      for (let i = 0; i < 10; i++) c.one(3, true);
      c.crash('n1'); // the disk died: n1 never comes back
      c.one(2, true);
      await commit(c, { op: 'remove', nodeId: 'n1' });
      expect(c.config.voters).toEqual(['n2', 'n3']);
      const n4 = await addLearner(c);
      await promote(c, n4);
      expect(c.config.voters).toEqual(['n2', 'n3', n4]);
      c.crash('n2');
      const idx = c.one(2, true);
      expect(c.nCommitted(idx).count).toBe(2);
      holdsEverything(c, n4);
      // settle() restarts n1 too, from its old disk and configuration (it never applied its removal): the
      // members converge without it.
      c.restart('n2');
      c.settle();
      expect(c.node('n1').smApplied).toBeLessThan(c.checker.commitIndex);
      holdsEverything(c, n4);
    });
  });

  it('removes the leader: it commits its removal, steps down and stops; the others elect a leader at once', async () => {
    await forSeedsAsync([631, 632, 633], async (seed) => {
      const c = makeCluster({ size: 3, seed });
      c.one(3, true);
      const leader = c.checkOneLeader();
      const term = c.status(leader)!.term;
      await commit(c, { op: 'remove', nodeId: leader }, leader);
      expect(c.runUntil(() => c.node(leader).removed, ELECTION_TICKS)).toBe(true);
      // MsgTimeoutNow: the caught-up voter campaigns without waiting for an election timeout.
      const others = c.ids.filter((id) => id !== leader);
      expect(c.runUntil(() => c.leaders().some((l) => others.includes(l.id)), 5)).toBe(true);
      expect(c.leaders()).toEqual([{ id: expect.any(String), term: term + 1 }]);
      expect(c.config.voters).toEqual(others);
      const idx = c.one(2, true);
      expect(c.nCommitted(idx).count).toBe(2);
      c.settle();
    });
  });

  it('refuses a change while another is pending, a removal that leaves too few reachable voters, a promotion before catching up', async () => {
    await forSeedsAsync([641, 642], async (seed) => {
      const c = makeCluster({ size: 3, seed });
      c.one(3, true);
      const leader = c.checkOneLeader();
      const [f1, f2] = c.ids.filter((id) => id !== leader);

      // One follower down: the leader still leads with the other. Removing that other would leave the
      // leader and the dead one: 1 reachable voter of 2, below their quorum of 2.
      c.crash(f1);
      c.runTicks(2 * ELECTION_TICKS);
      const unsafe = await ask(c, { op: 'remove', nodeId: f2 }, leader);
      expect([unsafe.outcome, unsafe.error?.message]).toEqual(['refused', expect.stringMatching(/of which 1 are reachable; a quorum needs 2/)]);
      expect(c.config.voters).toContain(f2);
      c.restart(f1);

      const [n4, n5] = [c.addNode(), c.addNode()];
      const first = c.changeMembership(leader, { op: 'add', nodeId: n4, url: `sim://${n4}`, learner: true });
      const second = c.changeMembership(leader, { op: 'add', nodeId: n5, url: `sim://${n5}`, learner: true });
      await c.answers();
      expect(second.outcome).toBe('refused');
      expect(second.error?.message).toMatch(/another membership change is in progress/);
      expect((await c.waitForChange(first)).outcome).toBe('committed');
      // Refused, nothing was proposed: once the first is applied, the same change goes through.
      await commit(c, { op: 'add', nodeId: n5, url: `sim://${n5}`, learner: true }, leader);
      expect(c.config.learners).toEqual([n4, n5]);

      // A learner cut off from the start has not caught up: promoting it is refused until it has.
      await commit(c, { op: 'remove', nodeId: n5 }, leader);
      const n6 = c.addNode();
      c.disconnect(n6);
      await commit(c, { op: 'add', nodeId: n6, url: `sim://${n6}`, learner: true }, leader);
      const early = await ask(c, { op: 'promote', nodeId: n6 }, leader);
      expect([early.outcome, early.error?.message]).toEqual(['refused', expect.stringMatching(/n6 has not caught up/)]);
      c.connect(n6);
      await promote(c, n6);
      expect(c.config).toMatchObject({ voters: [...c.ids.slice(0, 3), n6], learners: [n4] });
      c.settle();
    });
  });

  it('a joining node is caught up by a snapshot when the log it needs was compacted', async () => {
    await forSeedsAsync([651, 652, 653], async (seed) => {
      const c = makeCluster({ size: 3, seed, snapshotEntries: 5, snapshotCatchUpEntries: 1 });
      for (let i = 0; i < 30; i++) c.one(3, true);
      for (const id of c.ids) expect(c.node(id).storage.firstIndex()).toBeGreaterThan(10);
      const n4 = await addLearner(c);
      expect(c.runUntil(() => c.node(n4).smApplied === c.checker.commitIndex, ELECTION_TICKS)).toBe(true);
      expect(c.node(n4).installs).toBe(1);
      // Its log starts after the snapshot, and its state machine holds the committed prefix's state.
      expect(c.node(n4).storage.firstIndex()).toBeGreaterThan(10);
      const state = c.node(n4).sm!.state;
      expect(state.hash).toBe(c.checker.committedHash(state.index));
      // Then the log: what commits next reaches it as entries.
      const idx = c.one(3, true);
      expect(c.runUntil(() => c.node(n4).smApplied >= idx, ELECTION_TICKS)).toBe(true);
      holdsEverything(c, n4);
      expect(c.node(n4).installs).toBe(1);
      c.settle();
    });
  });

  it('a learner never counts toward a commit: the leader connected only to its learner commits nothing', async () => {
    await forSeedsAsync([661, 662, 663], async (seed) => {
      const c = makeCluster({ size: 3, seed });
      c.one(3, true);
      const n4 = await addLearner(c);
      expect(c.runUntil(() => c.node(n4).smApplied === c.checker.commitIndex, ELECTION_TICKS)).toBe(true);
      const leader = c.checkOneLeader();
      const commitBefore = c.checker.commitIndex;
      c.partition([[leader, n4], c.ids.filter((id) => id !== leader && id !== n4)]);
      const p = c.propose(leader)!;
      c.runTicks(5);
      // The learner holds the entry, durably: the leader and it are "two of four", and still no quorum.
      expect(c.node(n4).storage.lastIndex()).toBeGreaterThanOrEqual(p.index);
      expect(c.checker.commitIndex).toBe(commitBefore);
      // Nor does the learner keep the leader in office (check-quorum), and the entry never commits.
      c.runTicks(3 * ELECTION_TICKS);
      expect(stateOf(c, leader)).not.toBe(StateType.Leader);
      c.settle();
      expect(c.nCommitted(p.index).ident).not.toBe(p.ident);
      expect(c.acked.some((a) => a.ident === p.ident)).toBe(false);
    });
  });
});

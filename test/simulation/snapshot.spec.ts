/**
 * Snapshots and log compaction (Raft §7) on the production node loop: each node snapshots its state machine
 * every few applied entries and compacts its log, a follower that needs compacted entries is caught up by
 * InstallSnapshot, and crashes hit the snapshot writes and installs in the middle. The checker verifies at
 * every install and restart that the restored state is that of the committed entries up to the snapshot.
 */
import { Message, MessageType, NodeId, StateMachine } from '@app/consensus';
import { encodeCommand, KvStateMachine } from '@app/kv';
import { Cluster, ClusterOptions } from './cluster';
import { skipForeignEntries } from './kv-clients';
import { ELECTION_TICKS, forSeeds, makeCluster, runUntilFine } from './scenario';

const SNAPSHOTS: Partial<ClusterOptions> = { snapshotEntries: 5, snapshotCatchUpEntries: 1 };

/** The state machine of `id` holds the state of the committed entries up to what it applied. */
function expectCommittedState(c: Cluster, id: NodeId): void {
  const state = c.node(id).sm!.state;
  expect(state.index).toBeGreaterThan(0);
  expect(state.hash).toBe(c.checker.committedHash(state.index));
}

/** Cuts `f` off and commits `count` commands on the others, until their logs no longer hold what f needs. */
function leaveBehind(c: Cluster, f: NodeId, count: number): void {
  c.disconnect(f);
  for (let i = 0; i < count; i++) c.one(c.ids.length - 1, true);
  const needs = c.node(f).storage.lastIndex() + 1;
  for (const id of c.ids) if (id !== f) expect(c.node(id).storage.firstIndex()).toBeGreaterThan(needs);
}

describe('snapshots and log compaction', () => {
  it('a follower cut off while the leader compacts comes back by InstallSnapshot and converges', () => {
    forSeeds([301, 302, 303], (seed) => {
      const c = makeCluster({ size: 3, seed, ...SNAPSHOTS });
      c.one(3, true);
      const f = c.ids.find((id) => id !== c.checkOneLeader())!;
      leaveBehind(c, f, 30);
      const { taken, compactions } = c.snapshotStats;
      expect(taken).toBeGreaterThan(0);
      expect(compactions).toBeGreaterThan(0);
      c.connect(f);
      const idx = c.one(3, true);
      expect(c.node(f).installs).toBe(1);
      expect(c.snapshotStats.delivered).toBeGreaterThanOrEqual(1);
      // Its log restarted after the snapshot, and it applied everything after it.
      expect(c.node(f).storage.firstIndex()).toBeGreaterThan(2);
      expect(c.nCommitted(idx).count).toBe(3);
      expectCommittedState(c, f);
    });
  });

  it('a crash during a snapshot write loses only that write: the node restarts from its previous snapshot', () => {
    forSeeds([311, 312, 313], (seed) => {
      const c = makeCluster({ size: 3, seed, ...SNAPSHOTS, snapshotDelay: [20, 40] });
      const x = c.ids[0];
      while (c.node(x).storage.snapshot().metadata.index === 0) c.one(3, true);
      // Commit until x starts its next snapshot write, and crash it before the write completes.
      const leader = c.checkOneLeader();
      let writing: number | undefined;
      for (let i = 0; i < 50 && writing === undefined; i++) {
        c.propose(leader);
        runUntilFine(c, () => c.node(x).pendingSnapshots.length > 0, 5);
        writing = c.node(x).pendingSnapshots[0]?.metadata.index;
      }
      expect(writing).toBeDefined();
      const previous = c.node(x).storage.snapshot().metadata.index;
      const first = c.node(x).storage.firstIndex();
      c.crash(x);
      c.runTicks(50);
      // Nothing of the write reached the disk, and the log was not compacted for it.
      expect(c.node(x).storage.snapshot().metadata.index).toBe(previous);
      expect(previous).toBeLessThan(writing!);
      expect(c.node(x).storage.firstIndex()).toBe(first);
      const atStart = c.snapshotStats.restoredAtStart;
      c.restart(x);
      // The state machine starts from the previous snapshot (the checker verified its state).
      expect(c.snapshotStats.restoredAtStart).toBe(atStart + 1);
      expect(c.node(x).smApplied).toBe(previous);
      expectCommittedState(c, x);
      const idx = c.one(3, true);
      expect(c.nCommitted(idx).count).toBe(3);
      while (c.node(x).storage.snapshot().metadata.index <= writing!) c.one(3, true);
      expectCommittedState(c, x);
    });
  });

  it('a crash during an install leaves the old snapshot and log; the restarted follower is caught up again', () => {
    forSeeds([321, 322, 323], (seed) => {
      const c = makeCluster({ size: 3, seed, ...SNAPSHOTS, snapshotDelay: [20, 40] });
      c.one(3, true);
      const f = c.ids.find((id) => id !== c.checkOneLeader())!;
      leaveBehind(c, f, 30);
      const before = { snapshot: c.node(f).storage.snapshot().metadata.index, last: c.node(f).storage.lastIndex() };
      c.connect(f);
      expect(runUntilFine(c, () => c.node(f).pendingInstall !== undefined, 3 * ELECTION_TICKS)).toBe(true);
      c.crash(f);
      expect(c.snapshotStats.crashesDuringInstall).toBe(1);
      expect(c.node(f).installs).toBe(0);
      expect(c.node(f).storage.snapshot().metadata.index).toBe(before.snapshot);
      expect(c.node(f).storage.lastIndex()).toBe(before.last);
      c.runTicks(10);
      c.restart(f);
      const idx = c.one(3, true);
      expect(c.node(f).installs).toBe(1);
      expect(c.nCommitted(idx).count).toBe(3);
      expectCommittedState(c, f);
    });
  });

  it('a crash right after an install, before the hard state is saved, restarts from the installed snapshot', () => {
    forSeeds([331, 332, 333], (seed) => {
      const c = makeCluster({ size: 3, seed, ...SNAPSHOTS, persistDelay: [20, 40] });
      c.one(3, true);
      const f = c.ids.find((id) => id !== c.checkOneLeader())!;
      leaveBehind(c, f, 30);
      c.connect(f);
      // The install completes, then the Ready's save (hard state, entries) is in flight: crash then.
      expect(runUntilFine(c, () => c.node(f).installs === 1 && c.node(f).saving, 3 * ELECTION_TICKS)).toBe(true);
      const snapshot = c.node(f).storage.snapshot().metadata;
      expect(c.node(f).storage.initialState().hardState.commit).toBeLessThan(snapshot.index);
      c.crash(f);
      c.restart(f);
      expect(c.node(f).smApplied).toBe(snapshot.index);
      expect(c.status(f)!.commit).toBeGreaterThanOrEqual(snapshot.index);
      expect(c.status(f)!.term).toBeGreaterThanOrEqual(snapshot.term);
      const idx = c.one(3, true);
      expect(c.nCommitted(idx).count).toBe(3);
      expectCommittedState(c, f);
    });
  });

  it('an older MsgSnap delivered late is ignored (the follower keeps its newer log and state)', () => {
    forSeeds([341, 342, 343], (seed) => {
      const c = makeCluster({ size: 3, seed, ...SNAPSHOTS });
      c.one(3, true);
      const leader = c.checkOneLeader();
      const f = c.ids.find((id) => id !== leader)!;
      leaveBehind(c, f, 30);
      let old: Message | undefined;
      c.dropIf = (m) => {
        if (m.type === MessageType.MsgSnap && m.to === f && !old) old = m;
        return false;
      };
      c.connect(f);
      c.one(3, true);
      c.dropIf = undefined;
      expect(old).toBeDefined();
      expect(c.node(f).installs).toBe(1);
      // The follower moves on (by the log, and by snapshots of its own) in the same term.
      for (let i = 0; i < 20; i++) c.one(3, true);
      expect(c.status(f)!.term).toBe(old!.term);
      expect(c.node(f).storage.snapshot().metadata.index).toBeGreaterThan(old!.snapshot!.metadata.index);
      const before = { last: c.node(f).storage.lastIndex(), applied: c.node(f).smApplied, snapshot: c.node(f).storage.snapshot() };
      c.deliverLate(old!);
      c.runTicks(5);
      expect(c.node(f).installs).toBe(1);
      expect(c.node(f).storage.snapshot()).toBe(before.snapshot);
      expect(c.node(f).storage.lastIndex()).toBeGreaterThanOrEqual(before.last);
      expect(c.node(f).smApplied).toBeGreaterThanOrEqual(before.applied);
      const idx = c.one(3, true);
      expect(c.nCommitted(idx).count).toBe(3);
      expectCommittedState(c, f);
    });
  });

  it('a leader restarted from its snapshot serves linearizable reads of the right KV state', () => {
    forSeeds([351, 352, 353], (seed) => {
      const machines = new Map<NodeId, KvStateMachine>();
      const stateMachine = (id: NodeId): StateMachine => {
        const kv = new KvStateMachine();
        machines.set(id, kv);
        return skipForeignEntries(kv);
      };
      const c = makeCluster({ size: 3, seed, ...SNAPSHOTS, stateMachine });
      const expected = new Map<string, string>();
      for (let i = 0; i < 23; i++) {
        const key = `k${i % 4}`;
        const value = `v${i}`;
        let done = false;
        while (!done) {
          const leader = c.checkOneLeader();
          c.raft(leader).submit(encodeCommand({ op: 'put', key, value }), { resolve: () => (done = true), reject: () => undefined });
          c.runUntil(() => done, 50);
        }
        expected.set(key, value);
      }
      c.runTicks(10);
      // Everyone goes down and comes back: every state machine starts from its node's snapshot.
      for (const id of c.ids) {
        expect(c.node(id).storage.firstIndex()).toBeGreaterThan(1);
        c.crash(id);
      }
      const atStart = c.snapshotStats.restoredAtStart;
      for (const id of c.ids) c.restart(id);
      expect(c.snapshotStats.restoredAtStart).toBe(atStart + 3);
      const leader = c.checkOneLeader();
      for (const [key, value] of expected) {
        let got: string | undefined | null = null;
        c.raft(leader).read({ resolve: () => (got = machines.get(leader)!.get(key)), reject: () => undefined });
        expect(c.runUntil(() => got !== null, 50)).toBe(true);
        expect(got).toBe(value);
      }
      expectCommittedState(c, leader);
    });
  });
});

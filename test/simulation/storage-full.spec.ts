/**
 * Full disks, on the production node loop (Cluster.fillDisk: saves, installs and snapshot writes refused
 * with StorageFullError, nothing kept, until space returns):
 * - a leader whose disk fills freezes: it refuses new writes and linearizable reads at once, still serves
 *   stale reads, and is replaced by another leader; once space returns it resumes by itself, learns the new
 *   term and catches up;
 * - a follower whose disk fills freezes and never campaigns; the cluster goes on with the others;
 * - a whole cluster whose disks fill refuses writes and commits nothing; once space returns it resumes,
 *   with every write acknowledged before still there.
 * The invariant checker watches every step, as in every simulation.
 */
import { isStorageFull, NodeId, StateType } from '@app/consensus';
import { KvService, KvStateMachine } from '@app/kv';
import { Cluster, TICK } from './cluster';
import { skipForeignEntries } from './kv-clients';
import { ELECTION_TICKS, forSeedsAsync, makeCluster } from './scenario';

const LIMITS = { maxKeyBytes: 64, maxValueBytes: 64 };

/** A cluster whose state machines are the real KV map, and a KvService on any node. */
function kvCluster(size: number, seed: number): { c: Cluster; kv: (id: NodeId) => KvService } {
  const machines = new Map<NodeId, KvStateMachine>();
  const c = makeCluster({
    size,
    seed,
    stateMachine: (id) => {
      const machine = new KvStateMachine();
      machines.set(id, machine);
      return skipForeignEntries(machine);
    },
  });
  return { c, kv: (id) => new KvService(c.raft(id), machines.get(id)!, LIMITS) };
}

/** Runs the cluster until the promise settles (promise callbacks see each answer at its virtual time). */
async function settled<T>(c: Cluster, p: Promise<T>, maxTicks = 300): Promise<{ value?: T; error?: Error }> {
  let out: { value?: T; error?: Error } | undefined;
  p.then(
    (value) => (out = { value }),
    (error: Error) => (out = { error }),
  );
  for (let i = 0; i < maxTicks && !out; i++) await c.runForAsync(TICK);
  if (!out) throw new Error(`no answer within ${maxTicks} ticks`);
  return out;
}

describe('full disks (simulation)', () => {
  it('a full leader refuses writes and linearizable reads, serves stale reads, is replaced, then resumes and catches up', async () => {
    await forSeedsAsync([401, 402, 403], async (seed) => {
      const { c, kv } = kvCluster(3, seed);
      const leader = c.checkOneLeader();
      expect(await settled(c, kv(leader).put('k', 'before'))).toMatchObject({ value: { index: expect.any(Number) } });
      const term = c.status(leader)!.term;

      c.fillDisk(leader);
      // The next write goes into a Ready whose save the disk refuses: the leader freezes.
      const held = kv(leader).put('k', 'held');
      held.catch(() => undefined);
      await c.runForAsync(5 * TICK);
      expect(c.raft(leader).status().storageFull).toMatchObject({ code: 'ENOSPC' });
      expect(c.propose(leader)).toBeUndefined();
      const write = await settled(c, kv(leader).put('k', 'refused'), 1);
      expect(isStorageFull(write.error)).toBe(true);
      const read = await settled(c, kv(leader).get('k'), 1);
      expect(isStorageFull(read.error)).toBe(true);
      expect(await settled(c, kv(leader).get('k', 'stale'), 1)).toEqual({ value: 'before' });

      // Its followers hear nothing (it does not tick) and elect another leader, which takes writes.
      c.runTicks(ELECTION_TICKS * 2);
      const next = c.checkOneLeader();
      expect(next).not.toBe(leader);
      expect(c.status(next)!.term).toBeGreaterThan(term);
      expect(await settled(c, kv(next).put('k', 'after'))).toMatchObject({ value: { index: expect.any(Number) } });
      // Frozen, the old leader stepped nothing: it still believes it leads its old term.
      expect(c.status(leader)).toMatchObject({ term, raftState: StateType.Leader });

      c.freeDisk(leader);
      c.one(3, true);
      expect(c.raft(leader).status().storageFull).toBeUndefined();
      expect(c.status(leader)).toMatchObject({ raftState: StateType.Follower, term: c.status(next)!.term });
      expect(await settled(c, kv(leader).get('k', 'stale'), 1)).toEqual({ value: 'after' });
      expect(c.diskStats).toMatchObject({ refusedSaves: expect.any(Number), resumed: 1 });
      c.settle();
    });
  });

  it('a full follower freezes and starts no election; the others go on; it catches up once space returns', () => {
    for (const seed of [411, 412]) {
      const c = makeCluster({ size: 3, seed });
      const leader = c.checkOneLeader();
      const follower = c.ids.find((id) => id !== leader)!;
      c.fillDisk(follower);
      c.one(2, true); // its save of these entries is refused
      const term = c.status(follower)!.term;
      c.runTicks(ELECTION_TICKS * 5);
      for (let i = 0; i < 5; i++) c.one(2, true);
      expect(c.raft(follower).status().storageFull).toBeDefined();
      expect(c.status(follower)).toMatchObject({ term, raftState: StateType.Follower });
      expect(c.node(follower).smApplied).toBeLessThan(c.checker.commitIndex);
      c.freeDisk(follower);
      const last = c.one(3, true);
      expect(c.nCommitted(last).count).toBe(3);
      expect(c.raft(follower).status().storageFull).toBeUndefined();
      c.settle();
    }
  });

  it('a whole cluster full refuses writes and commits nothing; once space returns it resumes, nothing acknowledged lost', () => {
    for (const seed of [421, 422, 423]) {
      const c = makeCluster({ size: 3, seed });
      for (let i = 0; i < 5; i++) c.one(3, true);
      const acked = [...c.acked];
      const commit = c.checker.commitIndex;
      for (const id of c.ids) c.fillDisk(id);
      const leader = c.checkOneLeader();
      c.proposeMany(leader, 3); // into the Ready the disk refuses; their outcome stays unknown
      c.runTicks(ELECTION_TICKS * 5);
      expect(c.checker.commitIndex).toBe(commit);
      expect(c.ids.every((id) => c.raft(id).status().storageFull !== undefined)).toBe(true);
      expect(c.propose(leader)).toBeUndefined();
      expect(c.readIndex(leader)).toBeUndefined();
      // Nothing moves meanwhile: no election (nobody ticks), the frozen leader keeps its term.
      expect(c.leaders()).toEqual([{ id: leader, term: c.status(leader)!.term }]);

      for (const id of c.ids) c.freeDisk(id);
      const index = c.one(3, true);
      expect(index).toBeGreaterThan(commit);
      for (const { index: i, ident } of acked) expect(c.nCommitted(i)).toEqual({ count: 3, ident });
      expect(c.ids.every((id) => c.raft(id).status().storageFull === undefined)).toBe(true);
      c.settle();
    }
  });
});

/**
 * ReadIndex (Raft thesis 6.4): a read is served at an index that covers every write acknowledged before
 * it was issued. The cluster checks that for every ReadState it sees (a stale read index throws), so these
 * scenarios set up the situations where a shortcut would return stale data.
 */
import { MessageType, StateType } from '@app/consensus';
import { ELECTION_TICKS, forSeeds, makeCluster, runUntilFine, stateOf } from './scenario';

describe('ReadIndex', () => {
  it('a read on the leader is served at its commit index after one heartbeat round', () => {
    forSeeds([301, 302, 303], (seed) => {
      const c = makeCluster({ size: 3, seed });
      const leader = c.checkOneLeader();
      const idx = c.one(3, false);
      const r = c.readIndex(leader)!;
      expect(c.runUntil(() => r.index !== undefined, 5)).toBe(true);
      expect(r.index).toBeGreaterThanOrEqual(idx);
    });
  });

  it('a read on a follower is forwarded to the leader and served', () => {
    forSeeds([311, 312, 313], (seed) => {
      const c = makeCluster({ size: 5, seed });
      const leader = c.checkOneLeader();
      const idx = c.one(5, false);
      const follower = c.ids.find((id) => id !== leader)!;
      const r = c.readIndex(follower)!;
      expect(c.runUntil(() => r.index !== undefined, 5)).toBe(true);
      expect(r.index).toBeGreaterThanOrEqual(idx);
    });
  });

  it('a deposed leader cut off in a minority never serves a read (it cannot confirm its leadership)', () => {
    forSeeds([321, 322, 323, 324], (seed) => {
      // Without check-quorum the old leader keeps believing it leads: only the heartbeat round saves it.
      const c = makeCluster({ size: 5, seed, checkQuorum: false });
      const old = c.checkOneLeader();
      c.one(5, false);
      const buddy = c.ids.find((id) => id !== old)!;
      const majority = c.ids.filter((id) => id !== old && id !== buddy);
      c.partition([[old, buddy], majority]);
      // The majority elects a new leader and commits writes the old leader has never seen.
      expect(c.runUntil(() => c.leaders().some((l) => majority.includes(l.id)), 3 * ELECTION_TICKS)).toBe(true);
      const l2 = c.leaders().find((l) => majority.includes(l.id))!.id;
      const before = c.checker.commitIndex;
      c.proposeMany(l2, 5);
      expect(c.runUntil(() => c.checker.commitIndex >= before + 5, ELECTION_TICKS)).toBe(true);
      expect(stateOf(c, old)).toBe(StateType.Leader);
      const onOld = c.readIndex(old)!;
      const viaBuddy = c.readIndex(buddy)!;
      c.runTicks(3 * ELECTION_TICKS);
      expect(onOld.index).toBeUndefined();
      expect(viaBuddy.index).toBeUndefined();
      // Healed: the old leader steps down; reads go through the new leader.
      c.heal();
      c.runTicks(ELECTION_TICKS);
      expect(stateOf(c, old)).not.toBe(StateType.Leader);
      const r = c.readIndex(old)!;
      expect(c.runUntil(() => r.index !== undefined, 10)).toBe(true);
      expect(r.index).toBeGreaterThanOrEqual(c.checker.commitIndex - 1);
    });
  });

  it('a new leader serves no read before it has committed an entry of its own term', () => {
    forSeeds([331, 332, 333, 334, 335], (seed) => {
      const c = makeCluster({ size: 3, seed, checkQuorum: false });
      const l1 = c.checkOneLeader();
      c.one(3, false);
      const [f2, f3] = c.ids.filter((id) => id !== l1);
      // X reaches f2 only; then l1 can no longer tell anyone that X committed.
      c.net.block(l1, f3);
      const x = c.propose(l1)!;
      expect(runUntilFine(c, () => c.node(f2).storage.lastIndex() >= x.index, 10)).toBe(true);
      c.net.block(l1, f2);
      expect(runUntilFine(c, () => c.node(l1).applied[x.index] === x.ident, 10)).toBe(true);
      expect(c.acked.some((a) => a.index === x.index)).toBe(true);
      c.crash(l1);
      c.heal();
      // f2 (the only one with X) wins; its commit index is still below X.
      expect(runUntilFine(c, () => stateOf(c, f2) === StateType.Leader, 3 * ELECTION_TICKS)).toBe(true);
      // Its no-op cannot commit (f3's acknowledgements are lost), but heartbeats still get through.
      c.dropIf = (m) => m.type === MessageType.MsgAppResp && m.from === f3;
      expect(c.status(f2)!.commit).toBeLessThan(x.index);
      const r = c.readIndex(f2)!;
      c.runTicks(8);
      expect(r.index).toBeUndefined();
      c.dropIf = undefined;
      expect(c.runUntil(() => r.index !== undefined, 10)).toBe(true);
      expect(r.index).toBeGreaterThanOrEqual(x.index);
    });
  });

  it('a single-node cluster also waits for its own-term commit after a restart (commit index not fsynced)', () => {
    forSeeds([341, 342], (seed) => {
      const c = makeCluster({ size: 1, seed });
      c.checkOneLeader();
      let last = 0;
      for (let i = 0; i < 5; i++) last = c.one(1, false);
      c.crash('n1');
      // The acknowledged writes are durable, the commit index that covered them was not.
      expect(c.node('n1').storage.initialState().hardState.commit).toBeLessThan(last);
      c.restart('n1');
      expect(runUntilFine(c, () => stateOf(c, 'n1') === StateType.Leader, 3 * ELECTION_TICKS)).toBe(true);
      c.runFor(0); // the loop's turn that reports the new leadership to the node
      const r = c.readIndex('n1')!;
      expect(c.runUntil(() => r.index !== undefined, 5)).toBe(true);
      expect(r.index).toBeGreaterThanOrEqual(last);
    });
  });

  it('many reads between two Readies share one heartbeat round', () => {
    const c = makeCluster({ size: 5, seed: 351 });
    const leader = c.checkOneLeader();
    c.one(5, false);
    c.runTicks(2);
    const before = c.stats.byType.get(MessageType.MsgHeartbeat) ?? 0;
    const reads = c.readMany(leader, 100);
    c.runFor(3);
    expect((c.stats.byType.get(MessageType.MsgHeartbeat) ?? 0) - before).toBeLessThanOrEqual(4);
    expect(c.runUntil(() => reads.every((r) => r.index !== undefined), 5)).toBe(true);
  });

  it('reads from followers with the same context do not collide at the leader', () => {
    const c = makeCluster({ size: 3, seed: 352 });
    const leader = c.checkOneLeader();
    c.one(3, false);
    const [a, b] = c.ids.filter((id) => id !== leader);
    const got: string[] = [];
    // Each node numbers its read batches from 1: the first read of each follower has context "1".
    const reads = [a, b].map((id) => c.readIndex(id)!);
    // Read the ReadStates straight from the nodes' Readies.
    const spy = c.checker.onReady.bind(c.checker);
    c.checker.onReady = (id, rd) => {
      for (const rs of rd.readStates) got.push(`${id}:${rs.requestCtx}`);
      return spy(id, rd);
    };
    c.runTicks(3);
    expect(got.sort()).toEqual([`${a}:1`, `${b}:1`].sort());
    expect(c.runUntil(() => reads.every((r) => r.index !== undefined), 5)).toBe(true);
  });

  it('reads under churn are never stale (random crashes, partitions and reads)', () => {
    forSeeds([361, 362, 363], (seed) => {
      const c = makeCluster({ size: 5, seed, checkQuorum: false, tornWrites: true });
      const rng = c.rng;
      let served = 0;
      const reads: { index?: number }[] = [];
      for (let iter = 0; iter < 60; iter++) {
        const l = c.leaders()[0];
        if (l) c.proposeMany(l.id, rng.range(1, 5));
        for (let k = 0; k < 3; k++) {
          const r = c.readIndex(rng.pick(c.ids));
          if (r) reads.push(r);
        }
        const roll = rng.next();
        if (roll < 0.15) {
          const shuffled = rng.shuffle([...c.ids]);
          c.partition([shuffled.slice(0, 2), shuffled.slice(2)]);
        } else if (roll < 0.3) c.heal();
        else if (roll < 0.4) c.crash(rng.pick(c.ids));
        else if (roll < 0.55) c.restart(rng.pick(c.ids));
        c.runTicks(rng.range(1, 10));
      }
      c.settle();
      served = reads.filter((r) => r.index !== undefined).length;
      expect(served).toBeGreaterThan(20);
    });
  });
});

/**
 * Crash-restart scenarios: the lab suite (2C: persistence, Figure 8, unreliable agreement, churn) run on
 * the production node loop with a fast disk and a slow one (a slow fsync widens the window in which the
 * leader's appends have left before its own write is durable), plus torn and failed writes. A restarted
 * node has exactly what it had made durable.
 */
import { MessageType } from '@app/consensus';
import { Cluster } from './cluster';
import { RELIABLE, UNRELIABLE } from './network';
import { ELECTION_TICKS, forSeeds, makeCluster, runUntilFine } from './scenario';

const DISKS: Array<{ disk: string; persistDelay: [number, number] }> = [
  { disk: 'fast', persistDelay: [0, 3] },
  { disk: 'slow', persistDelay: [5, 25] },
];

function crashRestart(c: Cluster, id: string): void {
  c.crash(id);
  c.restart(id);
}

describe.each(DISKS)('persistence ($disk disk)', ({ persistDelay }) => {
  it('TestPersist1: state survives crashes of everyone, of the leader, of a follower', () => {
    forSeeds([201, 202, 203], (seed) => {
      const c = makeCluster({ size: 3, seed, persistDelay });
      c.one(3, true);
      // Everyone crashes and restarts.
      c.ids.forEach((id) => crashRestart(c, id));
      c.one(3, true);
      // The leader crashes and restarts.
      const leader1 = c.checkOneLeader();
      crashRestart(c, leader1);
      c.one(3, true);
      // The leader crashes and stays down for a while.
      const leader2 = c.checkOneLeader();
      c.crash(leader2);
      c.one(2, true);
      c.restart(leader2);
      const idx = c.one(3, true);
      // A follower is cut off and crashes; it restarts and catches up.
      const leader3 = c.checkOneLeader();
      const f = c.ids.find((id) => id !== leader3)!;
      c.disconnect(f);
      c.crash(f);
      c.one(2, true);
      c.restart(f);
      c.connect(f);
      c.one(3, true);
      expect(c.nCommitted(idx).count).toBe(3);
    });
  });

  it('TestPersist2: repeated crashes of a majority, with the survivors making progress', () => {
    forSeeds([211, 212], (seed) => {
      const c = makeCluster({ size: 5, seed, persistDelay });
      const ids = c.ids;
      for (let iter = 0; iter < 5; iter++) {
        c.one(5, true);
        const leader1 = c.checkOneLeader();
        const a = ids[(ids.indexOf(leader1) + 1) % 5];
        const b = ids[(ids.indexOf(leader1) + 2) % 5];
        c.disconnect(a);
        c.disconnect(b);
        c.one(3, true);
        const c1 = ids[(ids.indexOf(leader1) + 3) % 5];
        const c2 = ids[(ids.indexOf(leader1) + 4) % 5];
        c.disconnect(leader1);
        c.disconnect(c1);
        c.disconnect(c2);
        c.crash(a);
        c.crash(b);
        c.restart(a);
        c.restart(b);
        c.connect(a);
        c.connect(b);
        c.runTicks(ELECTION_TICKS);
        c.crash(c1);
        c.crash(c2);
        c.restart(c1);
        c.restart(c2);
        c.connect(c1);
        c.connect(c2);
        c.one(3, true);
        c.connect(leader1);
      }
      c.one(5, true);
    });
  });

  it('TestPersist3: a partitioned leader and a crashed follower', () => {
    forSeeds([221, 222, 223], (seed) => {
      const c = makeCluster({ size: 3, seed, persistDelay });
      c.one(3, true);
      const leader = c.checkOneLeader();
      const [f1, f2] = c.ids.filter((id) => id !== leader);
      c.disconnect(f2);
      c.one(2, true);
      c.crash(leader);
      c.crash(f1);
      c.connect(f2);
      c.restart(leader);
      c.one(2, true);
      c.restart(f1);
      c.one(3, true);
    });
  });

  // One entry per MsgApp makes a new leader replicate an old-term entry before its own no-op, which is
  // when counting replicas of the old entry (Figure 8) would go wrong.
  it.each([
    ['batched', {}],
    ['one entry per MsgApp', { maxEntriesPerMsg: 1, maxInflightMsgs: 2 }],
  ])('TestFigure8 (%s): only entries of the current term are committed by counting replicas', (_name, limits) => {
    forSeeds([231, 232, 233], (seed) => {
      const c = makeCluster({ size: 5, seed, persistDelay, ...limits });
      const rng = c.rng;
      c.one(1, true);
      let up = 5;
      for (let iter = 0; iter < 1000; iter++) {
        let leader: string | undefined;
        for (const id of c.ids) {
          if (c.node(id).alive && c.propose(id)) leader = id;
        }
        c.runFor(rng.chance(0.1) ? rng.int(ELECTION_TICKS * 10) : rng.int(30));
        if (leader && c.node(leader).alive) {
          c.crash(leader);
          up--;
        }
        if (up < 3) {
          const dead = c.ids.filter((id) => !c.node(id).alive);
          c.restart(rng.pick(dead));
          up++;
        }
      }
      c.ids.forEach((id) => c.restart(id));
      c.one(5, true);
    });
  });

  it('TestUnreliableAgree: agreement with loss, duplication, delay and reordering', () => {
    forSeeds([241, 242], (seed) => {
      const c = makeCluster({ size: 5, seed, persistDelay, net: UNRELIABLE });
      for (let iter = 1; iter < 50; iter++) {
        for (let j = 0; j < 4; j++) {
          const l = c.leaders()[0];
          if (l) c.propose(l.id);
        }
        c.one(1, true);
      }
      c.setNetwork(RELIABLE);
      c.one(5, true);
    });
  });

  it.each([
    ['batched', {}],
    ['one entry per MsgApp', { maxEntriesPerMsg: 1, maxInflightMsgs: 2 }],
  ])('TestFigure8Unreliable (%s): Figure 8 with an unreliable network and long reordering', (_name, limits) => {
    forSeeds([251, 252], (seed) => {
      const c = makeCluster({ size: 5, seed, persistDelay, net: UNRELIABLE, ...limits });
      const rng = c.rng;
      c.one(1, true);
      let up = 5;
      for (let iter = 0; iter < 1000; iter++) {
        if (iter === 200) c.setNetwork({ ...UNRELIABLE, longDelayChance: 0.3, longDelayMax: 400 });
        let leader: string | undefined;
        for (const id of c.ids) {
          if (!c.net.isolatedNode(id) && c.propose(id)) leader = id;
        }
        c.runFor(rng.chance(0.1) ? rng.int(ELECTION_TICKS * 10) : rng.int(30));
        if (leader && !c.net.isolatedNode(leader) && rng.chance(0.5)) {
          c.disconnect(leader);
          up--;
        }
        if (up < 3) {
          const cut = c.ids.filter((id) => c.net.isolatedNode(id));
          c.connect(rng.pick(cut));
          up++;
        }
      }
      c.ids.forEach((id) => c.connect(id));
      c.setNetwork(RELIABLE);
      c.one(5, true);
    });
  });

  it.each([
    ['TestReliableChurn', RELIABLE],
    ['TestUnreliableChurn', UNRELIABLE],
  ])('%s: nodes crash, restart and get cut off while clients propose', (_name, net) => {
    forSeeds([261, 262], (seed) => {
      const c = makeCluster({ size: 5, seed, persistDelay, net, tornWrites: true });
      const rng = c.rng;
      for (let iter = 0; iter < 20; iter++) {
        for (let k = 0; k < 10; k++) {
          for (const id of c.ids) if (rng.chance(0.3)) c.propose(id);
          c.runTicks(rng.range(1, 4));
        }
        const id = rng.pick(c.ids);
        const roll = rng.next();
        if (roll < 0.2) c.disconnect(id);
        else if (roll < 0.5) c.connect(rng.pick(c.ids));
        else if (roll < 0.7) c.crash(id);
        else c.restart(rng.pick(c.ids));
      }
      const acked = c.acked.length;
      c.settle();
      // Every acknowledged command is applied everywhere (the checker also saw it durable on a quorum
      // when it was acknowledged).
      expect(acked).toBeGreaterThan(0);
      for (const { index, ident } of c.acked) expect(c.nCommitted(index)).toEqual({ count: 5, ident });
    });
  });

  it('torn persistence: a crash during a write keeps a prefix of the entries and no hard state', () => {
    forSeeds([271, 272, 273, 274], (seed) => {
      const c = makeCluster({ size: 3, seed, tornWrites: true, persistDelay: [persistDelay[0] + 5, persistDelay[1] + 20] });
      const rng = c.rng;
      for (let iter = 0; iter < 40; iter++) {
        const l = c.leaders()[0];
        if (l) c.proposeMany(l.id, rng.range(1, 30));
        // Crash someone (often the leader) in the middle of its writes.
        c.runFor(rng.int(25));
        const victim = l && rng.chance(0.5) ? l.id : rng.pick(c.ids);
        c.crash(victim);
        c.runFor(rng.int(50));
        c.restart(victim);
        c.runTicks(rng.range(5, 30));
      }
      c.settle();
      expect(c.checker.commitIndex).toBeGreaterThan(100);
    });
  });
});

describe('early-send', () => {
  it('a leader that crashes after sending its MsgApps but before persisting loses nothing committed', () => {
    forSeeds([281, 282, 283, 284, 285], (seed) => {
      const c = makeCluster({ size: 3, seed, persistDelay: [10, 20] });
      const rng = c.rng;
      let crashes = 0;
      for (let iter = 0; iter < 100; iter++) {
        const l = c.leaders()[0];
        if (!l) {
          c.runTicks(5);
          continue;
        }
        // Wait until the leader's loop is idle, so that the proposals go out in a Ready of their own.
        if (!runUntilFine(c, () => !c.node(l.id).saving, 5) || !c.node(l.id).alive) continue;
        // Sent before persisted: crash the leader while its Ready is still being persisted.
        const sentBefore = c.stats.byType.get(MessageType.MsgApp) ?? 0;
        c.proposeMany(l.id, rng.range(1, 20));
        c.runFor(0); // the loop's turn: the Ready's MsgApps leave, its save starts
        if ((c.stats.byType.get(MessageType.MsgApp) ?? 0) > sentBefore && c.node(l.id).saving) {
          c.runFor(rng.int(8));
          c.crash(l.id);
          crashes++;
          c.runFor(rng.int(30));
          c.restart(l.id);
        }
        c.runTicks(rng.range(1, 10));
      }
      expect(crashes).toBeGreaterThan(5);
      c.settle();
    });
  });

  it('the leader counts itself only for persisted entries: with both followers slow, nothing commits early', () => {
    const c = makeCluster({ size: 3, seed: 286, persistDelay: [30, 30] });
    const leader = c.checkOneLeader();
    c.one(3, true);
    c.runTicks(10);
    const [f1, f2] = c.ids.filter((id) => id !== leader);
    c.disconnect(f1);
    c.disconnect(f2);
    const p = c.propose(leader)!;
    // The leader's own persistence completes, but alone it is no quorum.
    c.runTicks(10);
    expect(c.status(leader)!.commit).toBeLessThan(p.index);
    c.connect(f1);
    c.connect(f2);
    expect(c.runUntil(() => c.nCommitted(p.index).count === 3, 40)).toBe(true);
  });
});

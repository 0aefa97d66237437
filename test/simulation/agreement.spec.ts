/**
 * Log agreement scenarios: the lab suite (2B) plus message-count bounds that catch storms and prove
 * that proposals are coalesced.
 */
import { MessageType } from '@app/consensus';
import { countMessages, ELECTION_TICKS, forSeeds, makeCluster } from './scenario';

const APPEND = [MessageType.MsgApp];
const ALL_TYPES = Object.values(MessageType).filter((v): v is MessageType => typeof v === 'number');

describe('log agreement', () => {
  it('TestBasicAgree: commands commit on every server, at consecutive indices', () => {
    forSeeds([101, 102, 103], (seed) => {
      const c = makeCluster({ size: 3, seed });
      c.checkOneLeader();
      // Index 1 is the first leader's no-op.
      let expected = 2;
      for (let i = 0; i < 3; i++) {
        expect(c.nCommitted(expected).count).toBe(0);
        const index = c.one(3, false);
        expect(index).toBe(expected++);
      }
    });
  });

  it('TestFollowerFailure: agreement continues while a follower is down, and it catches up', () => {
    forSeeds([111, 112, 113], (seed) => {
      const c = makeCluster({ size: 3, seed });
      c.one(3, false);
      const leader = c.checkOneLeader();
      const follower = c.ids.find((id) => id !== leader)!;
      c.disconnect(follower);
      c.one(2, false);
      c.runTicks(ELECTION_TICKS);
      c.one(2, false);
      c.connect(follower);
      const idx = c.one(3, true);
      expect(c.nCommitted(idx).count).toBe(3);
    });
  });

  it('TestFailNoAgree: nothing commits without a quorum; the minority leader\'s entry is replaced', () => {
    forSeeds([121, 122, 123], (seed) => {
      const c = makeCluster({ size: 5, seed, checkQuorum: false });
      c.one(5, false);
      const leader = c.checkOneLeader();
      const followers = c.ids.filter((id) => id !== leader);
      followers.slice(0, 3).forEach((id) => c.disconnect(id));
      const p = c.propose(leader);
      expect(p).toBeDefined();
      c.runTicks(2 * ELECTION_TICKS);
      expect(c.nCommitted(p!.index).count).toBe(0);
      followers.slice(0, 3).forEach((id) => c.connect(id));
      const leader2 = c.checkOneLeader();
      const p2 = c.propose(leader2);
      expect(p2).toBeDefined();
      expect(p2!.index).toBeGreaterThanOrEqual(p!.index);
      c.one(5, true);
    });
  });

  it('TestConcurrentStarts: concurrent proposals in one term all commit, in one batch', () => {
    forSeeds([131, 132, 133], (seed) => {
      const c = makeCluster({ size: 3, seed });
      const leader = c.checkOneLeader();
      c.one(3, false);
      const term = c.status(leader)!.term;
      const ps = [0, 1, 2, 3, 4].map(() => c.propose(leader)!);
      expect(ps.every((p) => p.term === term)).toBe(true);
      expect(c.runUntil(() => ps.every((p) => c.nCommitted(p.index).count === 3), ELECTION_TICKS)).toBe(true);
      expect(new Set(ps.map((p) => c.nCommitted(p.index).ident))).toEqual(new Set(ps.map((p) => p.ident)));
    });
  });

  it('TestRejoin: a partitioned leader with uncommitted entries rejoins and is brought in line', () => {
    forSeeds([141, 142, 143], (seed) => {
      const c = makeCluster({ size: 3, seed });
      c.one(3, true);
      const leader1 = c.checkOneLeader();
      c.disconnect(leader1);
      // The old leader takes entries it can never commit.
      c.propose(leader1);
      c.propose(leader1);
      c.propose(leader1);
      c.one(2, true);
      const leader2 = c.checkOneLeader();
      c.disconnect(leader2);
      c.connect(leader1);
      c.one(2, true);
      c.connect(leader2);
      c.one(3, true);
    });
  });

  it('TestBackup: a leader backs up quickly over many incorrect follower entries (fast backtracking)', () => {
    forSeeds([151, 152, 153], (seed) => {
      const c = makeCluster({ size: 5, seed, maxEntriesPerMsg: 16 });
      const ids = c.ids;
      c.one(3, true);
      // The leader and one follower are cut off; the leader takes 50 entries it cannot commit.
      const leader1 = c.checkOneLeader();
      const at = ids.indexOf(leader1);
      const buddy = ids[(at + 1) % 5];
      const others = ids.filter((id) => id !== leader1 && id !== buddy);
      others.forEach((id) => c.disconnect(id));
      for (let i = 0; i < 50; i++) c.propose(leader1);
      c.runTicks(ELECTION_TICKS / 2);
      c.disconnect(leader1);
      c.disconnect(buddy);
      // The other three commit 50 entries.
      others.forEach((id) => c.connect(id));
      for (let i = 0; i < 50; i++) c.one(3, true);
      // Their leader, with one follower cut off, takes 50 entries it cannot commit.
      const leader2 = c.checkOneLeader();
      const other = others.find((id) => id !== leader2)!;
      c.disconnect(other);
      for (let i = 0; i < 50; i++) c.propose(leader2);
      c.runTicks(ELECTION_TICKS / 2);
      // Everyone down; the original leader, its buddy and `other` come back: 150 conflicting entries.
      ids.forEach((id) => c.disconnect(id));
      c.connect(leader1);
      c.connect(buddy);
      c.connect(other);
      for (let i = 0; i < 50; i++) c.one(3, true);
      // All together: the followers with 50-100 conflicting entries are repaired in a few round trips.
      ids.forEach((id) => c.connect(id));
      let rejections = 0;
      const spy = c.checker.onSend.bind(c.checker);
      c.checker.onSend = (m) => {
        if (m.type === MessageType.MsgAppResp && m.reject) rejections++;
        spy(m);
      };
      const appends = countMessages(c, APPEND, () => c.one(5, true));
      expect(appends).toBeLessThan(60);
      expect(rejections).toBeLessThanOrEqual(12);
    });
  });

  it('fast backtracking needs one round trip per conflicting term, not per entry', () => {
    const c = makeCluster({ size: 3, seed: 155, maxEntriesPerMsg: 1000 });
    const leader = c.checkOneLeader();
    c.one(3, false);
    const [f1, f2] = c.ids.filter((id) => id !== leader);
    // The leader appends 200 entries it never replicates (its followers are cut off).
    c.disconnect(f1);
    c.disconnect(f2);
    c.proposeMany(leader, 200);
    c.runTicks(2);
    c.crash(leader);
    c.connect(f1);
    c.connect(f2);
    // The others commit 10 entries in a newer term.
    for (let i = 0; i < 10; i++) c.one(2, true);
    c.restart(leader);
    // The old leader's 200 conflicting entries go away with a handful of rejections.
    let rejections = 0;
    const before = c.stats.byType.get(MessageType.MsgAppResp) ?? 0;
    const spy = c.checker.onSend.bind(c.checker);
    c.checker.onSend = (m) => {
      if (m.type === MessageType.MsgAppResp && m.reject) rejections++;
      spy(m);
    };
    c.one(3, true);
    expect((c.stats.byType.get(MessageType.MsgAppResp) ?? 0) - before).toBeGreaterThan(0);
    expect(rejections).toBeLessThanOrEqual(4);
  });

  it('TestCount: elections, agreement and idleness cost a bounded number of messages', () => {
    forSeeds([161, 162, 163], (seed) => {
      const c = makeCluster({ size: 3, seed });
      const leader = c.checkOneLeader();
      c.one(3, false);
      // Agreement on 10 commands, one at a time: each costs, per follower, a MsgApp with the entry and one
      // carrying the new commit index, and their answers (plus a little for a MsgApp deemed lost).
      const appends = countMessages(c, [MessageType.MsgApp, MessageType.MsgAppResp], () => {
        for (let i = 0; i < 10; i++) c.one(3, false);
      });
      expect(appends).toBeLessThanOrEqual(10 * 2 * 4 * 1.2);
      // Idle: heartbeats only (one round per heartbeat tick), no MsgApp storm.
      c.runTicks(5);
      const idle = countMessages(c, ALL_TYPES, () => c.runTicks(100));
      const idleAppends = countMessages(c, APPEND, () => c.runTicks(100));
      expect(idle).toBeLessThanOrEqual(100 * 2 * 2 + 4);
      expect(idleAppends).toBe(0);
      expect(c.leaders()).toEqual([{ id: leader, term: c.status(leader)!.term }]);
    });
  });

  it('many proposals between two Readies go out as about one MsgApp per follower (coalescing)', () => {
    const c = makeCluster({ size: 5, seed: 171 });
    const leader = c.checkOneLeader();
    c.one(5, false);
    c.runTicks(3);
    const sent = countMessages(c, APPEND, () => {
      c.proposeMany(leader, 1000);
      c.runTicks(1);
    });
    // 4 followers: one MsgApp each with the 1000 entries, one each with the new commit index.
    expect(sent).toBeLessThanOrEqual(4 * 2);
    expect(c.runUntil(() => c.nCommitted(c.checker.commitIndex).count === 5, 20)).toBe(true);
    expect(c.checker.commitIndex).toBeGreaterThanOrEqual(1002);
  });

  it('batches respect maxEntriesPerMsg and maxSizePerMsg, and the inflight window', () => {
    const c = makeCluster({ size: 3, seed: 172, maxEntriesPerMsg: 10, maxSizePerMsg: 1000, maxInflightMsgs: 4 });
    const leader = c.checkOneLeader();
    c.one(3, false);
    c.runTicks(3);
    let maxEntries = 0;
    let maxBytes = 0;
    const spy = c.checker.onSend.bind(c.checker);
    c.checker.onSend = (m) => {
      if (m.type === MessageType.MsgApp && m.entries) {
        maxEntries = Math.max(maxEntries, m.entries.length);
        maxBytes = Math.max(maxBytes, m.entries.reduce((s, e) => s + e.data.byteLength, 0));
      }
      spy(m);
    };
    const first = countMessages(c, APPEND, () => c.proposeMany(leader, 200, 96));
    // The window: at most 4 MsgApps per follower before any answer.
    expect(first).toBeLessThanOrEqual(2 * 4);
    c.runTicks(40);
    expect(maxEntries).toBeLessThanOrEqual(10);
    expect(maxBytes).toBeLessThanOrEqual(1000);
    expect(c.nCommitted(c.checker.commitIndex).count).toBe(3);
  });

  it('a proposal larger than maxSizePerMsg still goes out (alone)', () => {
    const c = makeCluster({ size: 3, seed: 173, maxSizePerMsg: 10 });
    c.checkOneLeader();
    const idx = c.one(3, false, 100);
    expect(c.nCommitted(idx).count).toBe(3);
  });

  it('maxUncommittedEntriesSize makes the leader drop proposals until entries commit', () => {
    const c = makeCluster({ size: 3, seed: 174, maxUncommittedEntriesSize: 100 });
    const leader = c.checkOneLeader();
    c.one(3, false);
    const [f1, f2] = c.ids.filter((id) => id !== leader);
    c.disconnect(f1);
    c.disconnect(f2);
    let accepted = 0;
    for (let i = 0; i < 10; i++) if (c.propose(leader, 36)) accepted++;
    expect(accepted).toBe(2);
    c.connect(f1);
    c.connect(f2);
    c.runTicks(10);
    expect(c.propose(leader, 36)).toBeDefined();
  });
});

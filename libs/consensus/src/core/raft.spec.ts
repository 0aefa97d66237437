/**
 * Unit tests of the Raft state machine, named after the paper's sections (Ongaro & Ousterhout 2014) and
 * the thesis' extensions (pre-vote, check-quorum, ReadIndex, leadership transfer). Messages are delivered
 * synchronously by a tiny in-test network whose driver persists everything before sending (strict mode).
 */
import { RaftConfig } from './config';
import { ProposalDroppedError } from './errors';
import { MemoryStorage } from './memory-storage';
import { CAMPAIGN_TRANSFER } from './message';
import { CampaignType, Raft } from './raft';
import { ents, it2, msg, newRaft, persistAll, seededRandom, takeMsgs } from '../../../../test/support/raft-test-util';
import { Entry, Message, MessageType as T, None, NodeId, StateType } from './types';

const IDS3 = ['1', '2', '3'];


/** A raft whose storage holds entries with the given terms (indices 1..n) and the given hard state term. */
function raftWithLog(id: NodeId, peers: NodeId[], terms: number[], term = 0, opts: Partial<RaftConfig> = {}): Raft {
  const s = new MemoryStorage();
  s.append(ents(1, terms));
  s.setHardState({ term, vote: None, commit: 0 });
  return newRaft(id, peers, opts, s);
}

const persist = persistAll;

function logTerms(r: Raft): number[] {
  const out: number[] = [];
  for (let i = r.raftLog.firstIndex(); i <= r.raftLog.lastIndex(); i++) out.push(r.raftLog.term(i));
  return out;
}

/** Synchronous delivery between rafts, with drops: the etcd tests' `network`. */
class Net {
  readonly peers = new Map<NodeId, Raft>();
  private readonly cut = new Set<string>();
  /** Every message delivered (or dropped), in order. */
  readonly log: Message[] = [];

  constructor(...rafts: Raft[]) {
    for (const r of rafts) this.peers.set(r.id, r);
  }

  static of(n: number, opts: Partial<RaftConfig> = {}): Net {
    const ids = Array.from({ length: n }, (_, i) => String(i + 1));
    return new Net(...ids.map((id) => newRaft(id, ids, opts)));
  }

  get(id: NodeId): Raft {
    return this.peers.get(id)!;
  }

  /** Lets `id` drain its output (after persisting), then delivers until the network is quiet. */
  flushFrom(...ids: NodeId[]): void {
    const q: Message[] = [];
    for (const id of ids) {
      const r = this.get(id);
      persist(r);
      q.push(...takeMsgs(r));
    }
    this.deliver(q);
  }

  deliver(q: Message[]): void {
    let budget = 100_000;
    while (q.length > 0) {
      if (--budget === 0) throw new Error('the network never went quiet (a message storm)');
      const m = q.shift()!;
      this.log.push(m);
      if (this.cut.has(`${m.from}>${m.to}`) || this.cut.has(`*>${m.to}`) || this.cut.has(`${m.from}>*`)) continue;
      const p = this.peers.get(m.to);
      if (!p) continue;
      p.step(m);
      persist(p);
      q.push(...takeMsgs(p));
    }
  }

  campaign(id: NodeId, t: CampaignType = CampaignType.Election): void {
    this.get(id).hup(t);
    this.flushFrom(id);
  }

  propose(id: NodeId, data = 'x'): { index: number; term: number } {
    const at = this.get(id).propose(new TextEncoder().encode(data));
    this.flushFrom(id);
    return at;
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.get(id).tick();
      this.flushFrom(id);
    }
  }

  isolate(id: NodeId): void {
    this.cut.add(`*>${id}`);
    this.cut.add(`${id}>*`);
  }

  drop(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  recover(): void {
    this.cut.clear();
  }
}

/** Makes `r` leader of a 3-node configuration by hand (votes granted), with everything persisted. */
function becomeLeader(r: Raft): void {
  r.hup(CampaignType.Election);
  for (const id of r.trk.voters) if (id !== r.id) r.step(msg(T.MsgVoteResp, id, r.id, r.term));
  persist(r);
  takeMsgs(r);
}

describe('Raft', () => {
  describe('§5.1 terms', () => {
    it.each([StateType.Follower, StateType.Candidate, StateType.Leader])(
      'a %s that sees a higher term becomes a follower at that term',
      (state) => {
        const r = newRaft('1', IDS3);
        if (state === StateType.Candidate) r.hup(CampaignType.Election);
        if (state === StateType.Leader) becomeLeader(r);
        const term = r.term;
        r.step(msg(T.MsgApp, '2', '1', term + 5));
        expect([r.state, r.term, r.lead]).toEqual([StateType.Follower, term + 5, '2']);
      },
    );

    it('a message with a stale term is ignored (and, with check-quorum, answered so the stale leader learns)', () => {
      for (const checkQuorum of [false, true]) {
        const r = newRaft('1', IDS3, { checkQuorum });
        r.becomeFollower(2, None);
        r.step(msg(T.MsgApp, '2', '1', 1, { entries: ents(1, [1]) }));
        expect(r.raftLog.lastIndex()).toBe(0);
        const out = takeMsgs(r);
        expect(out.map((m) => [m.type, m.term])).toEqual(checkQuorum ? [[T.MsgAppResp, 2]] : []);
      }
    });

    it('a vote request with a stale term is refused with our term, and the candidate catches up (§5.1)', () => {
      for (const type of [T.MsgVote, T.MsgPreVote]) {
        const r = newRaft('1', IDS3);
        r.becomeFollower(7, None);
        r.step(msg(type, '2', '1', 3, { index: 0, logTerm: 0 }));
        const out = takeMsgs(r);
        expect(out.map((m) => [m.type, m.term, m.reject])).toEqual([[type === T.MsgVote ? T.MsgVoteResp : T.MsgPreVoteResp, 7, true]]);
      }
      // Two candidates that never ask each other (a membership change one applied and the other did not)
      // still meet: the one behind learns the term from the refusal and can then vote for the other.
      const behind = newRaft('2', IDS3);
      behind.hup(CampaignType.Election);
      takeMsgs(behind);
      behind.step(msg(T.MsgVoteResp, '1', '2', 7, { reject: true }));
      expect([behind.state, behind.term]).toEqual([StateType.Follower, 7]);
    });

    it('a vote granted in an earlier election does not count in this one', () => {
      const r = newRaft('1', IDS3);
      r.hup(CampaignType.Election);
      takeMsgs(r);
      r.hup(CampaignType.Election);
      expect(r.term).toBe(2);
      // The answer to the term-1 MsgVote arrives late.
      r.step(msg(T.MsgVoteResp, '2', '1', 1));
      expect(r.state).toBe(StateType.Candidate);
      r.step(msg(T.MsgVoteResp, '2', '1', 2));
      expect(r.state).toBe(StateType.Leader);
    });

    it('starts as a follower at the persisted term', () => {
      const r = raftWithLog('1', IDS3, [1, 2], 2);
      expect([r.state, r.term, r.vote]).toEqual([StateType.Follower, 2, None]);
    });
  });

  describe('§5.2 leader election', () => {
    it('a follower starts an election after its timeout: term + 1, votes for itself, asks the others', () => {
      const r = raftWithLog('1', IDS3, [1, 1], 1);
      for (let i = 0; i < 20; i++) r.tick();
      expect([r.state, r.term, r.vote]).toEqual([StateType.Candidate, 2, '1']);
      const out = takeMsgs(r);
      expect(out.map((m) => [m.type, m.to, m.term, m.index, m.logTerm])).toEqual([
        [T.MsgVote, '2', 2, 2, 1],
        [T.MsgVote, '3', 2, 2, 1],
      ]);
    });

    it('a candidate that times out starts a new election', () => {
      const r = newRaft('1', IDS3);
      r.hup(CampaignType.Election);
      takeMsgs(r);
      for (let i = 0; i < 20; i++) r.tick();
      expect([r.state, r.term]).toEqual([StateType.Candidate, 2]);
    });

    it.each([
      // size, votes granted (besides self), votes rejected -> state
      [1, 0, 0, StateType.Leader],
      [3, 1, 0, StateType.Leader],
      [3, 2, 0, StateType.Leader],
      [5, 2, 0, StateType.Leader],
      [5, 3, 1, StateType.Leader],
      [3, 0, 0, StateType.Candidate],
      [5, 1, 0, StateType.Candidate],
      [5, 1, 2, StateType.Candidate],
      [3, 0, 2, StateType.Follower],
      [5, 1, 3, StateType.Follower],
    ])('size %d, %d granted, %d rejected: %s (one round of votes)', (size, granted, rejected, want) => {
      const ids = Array.from({ length: size }, (_, i) => String(i + 1));
      const r = newRaft('1', ids);
      r.hup(CampaignType.Election);
      let k = 2;
      for (let i = 0; i < granted; i++) r.step(msg(T.MsgVoteResp, String(k++), '1', 1));
      for (let i = 0; i < rejected; i++) r.step(msg(T.MsgVoteResp, String(k++), '1', 1, { reject: true }));
      expect([r.state, r.term]).toEqual([want, 1]);
    });

    it.each([
      // current vote, candidate -> rejected
      [None, '2', false],
      [None, '3', false],
      ['2', '2', false],
      ['3', '3', false],
      ['2', '3', true],
      ['3', '2', true],
    ])('a follower that voted %j gets a MsgVote from %s: reject=%s (one vote per term)', (vote, from, reject) => {
      const r = newRaft('1', IDS3);
      r.term = 1;
      r.vote = vote;
      r.step(msg(T.MsgVote, from, '1', 1));
      const out = takeMsgs(r);
      expect(out.map((m) => [m.type, m.to, m.reject])).toEqual([[T.MsgVoteResp, from, reject]]);
    });

    it('a candidate that hears from a leader of its term falls back to follower', () => {
      for (const term of [1, 2]) {
        const r = newRaft('1', IDS3);
        r.hup(CampaignType.Election);
        r.step(msg(T.MsgApp, '2', '1', term));
        expect([r.state, r.term, r.lead]).toEqual([StateType.Follower, term, '2']);
      }
    });

    it('election timeouts are randomized in [electionTick, 2 * electionTick)', () => {
      const seen = new Set<number>();
      const random = seededRandom(42);
      for (let k = 0; k < 200; k++) {
        const r = newRaft('1', IDS3, { random });
        let ticks = 0;
        while (r.state === StateType.Follower) {
          r.tick();
          ticks++;
        }
        seen.add(ticks);
      }
      expect(Math.min(...seen)).toBe(10);
      expect(Math.max(...seen)).toBe(19);
      expect(seen.size).toBe(10);
    });

    it('a single-voter cluster elects itself at once', () => {
      const r = newRaft('1', ['1']);
      r.hup(CampaignType.Election);
      expect(r.state).toBe(StateType.Leader);
    });

    it('a node outside the configuration never campaigns', () => {
      const r = newRaft('9', IDS3);
      for (let i = 0; i < 50; i++) r.tick();
      expect(r.state).toBe(StateType.Follower);
      expect(takeMsgs(r)).toEqual([]);
    });
  });

  describe('§5.3 log replication', () => {
    it('the leader sends new entries to every follower with the preceding index and term', () => {
      const r = newRaft('1', IDS3);
      becomeLeader(r);
      // Followers acknowledge the no-op: they are now in Replicate state.
      for (const id of ['2', '3']) r.step(msg(T.MsgAppResp, id, '1', 1, { index: 1 }));
      takeMsgs(r);
      r.propose(new TextEncoder().encode('some data'));
      const out = takeMsgs(r);
      expect(out.map((m) => [m.type, m.to, m.index, m.logTerm, m.commit, it2(m.entries ?? [])])).toEqual([
        [T.MsgApp, '2', 1, 1, 1, [[2, 1]]],
        [T.MsgApp, '3', 1, 1, 1, [[2, 1]]],
      ]);
    });

    it("a heartbeat carries the commit index capped at the follower's match (it may not commit beyond what it holds)", () => {
      const r = newRaft('1', IDS3);
      becomeLeader(r);
      // Follower 2 acknowledges the no-op and the next entry; follower 3 has acknowledged nothing.
      r.step(msg(T.MsgAppResp, '2', '1', 1, { index: 1 }));
      r.propose(new TextEncoder().encode('x'));
      persist(r);
      r.step(msg(T.MsgAppResp, '2', '1', 1, { index: 2 }));
      expect(r.raftLog.committed).toBe(2);
      takeMsgs(r);
      r.tick(); // heartbeatTick 1: one heartbeat round
      const beats = takeMsgs(r).filter((m) => m.type === T.MsgHeartbeat);
      expect(beats.map((m) => [m.to, m.commit])).toEqual([
        ['2', 2],
        ['3', 0],
      ]);
    });

    it('the leader commits an entry once a quorum (itself included, once persisted) has it', () => {
      const net = Net.of(3);
      net.campaign('1');
      const { index } = net.propose('1');
      for (const id of IDS3) expect(net.get(id).raftLog.committed).toBe(index);
    });

    it.each([
      // size, followers that acknowledge -> committed
      [1, [], true],
      [3, [], false],
      [3, ['2'], true],
      [3, ['2', '3'], true],
      [5, [], false],
      [5, ['2'], false],
      [5, ['2', '3'], true],
      [5, ['2', '3', '4', '5'], true],
    ])('size %d, acknowledged by %j: committed=%s', (size, ackers, want) => {
      const ids = Array.from({ length: size }, (_, i) => String(i + 1));
      const r = newRaft('1', ids);
      r.hup(CampaignType.Election);
      for (const id of ids.slice(1)) r.step(msg(T.MsgVoteResp, id, '1', 1));
      persist(r);
      takeMsgs(r);
      const li = r.raftLog.lastIndex();
      for (const id of ackers) r.step(msg(T.MsgAppResp, id, '1', 1, { index: li }));
      expect(r.raftLog.committed === li).toBe(want);
    });

    it('the leader does not count itself for entries it has not persisted (driver may send before fsync)', () => {
      const r = newRaft('1', IDS3);
      becomeLeader(r);
      for (const id of ['2', '3']) r.step(msg(T.MsgAppResp, id, '1', 1, { index: 1 }));
      const { index } = r.propose(new Uint8Array([1]));
      // One follower has it, the leader has not persisted it: no quorum yet.
      r.step(msg(T.MsgAppResp, '2', '1', 1, { index }));
      expect(r.raftLog.committed).toBe(1);
      persist(r);
      expect(r.raftLog.committed).toBe(index);
    });

    it('a single-node leader commits only after persisting', () => {
      const r = newRaft('1', ['1']);
      r.hup(CampaignType.Election);
      expect(r.raftLog.committed).toBe(0);
      persist(r);
      expect(r.raftLog.committed).toBe(1);
      const { index } = r.propose(new Uint8Array([1]));
      expect(r.raftLog.committed).toBe(1);
      persist(r);
      expect(r.raftLog.committed).toBe(index);
    });

    it('committing the new leader\'s entry commits the preceding entries of older terms', () => {
      for (const terms of [[], [2], [1, 1], [1, 2], [1, 1, 2], [1, 2, 2]]) {
        const storages = IDS3.map(() => {
          const s = new MemoryStorage();
          s.append(ents(1, terms));
          s.setHardState({ term: 2, vote: None, commit: 0 });
          return s;
        });
        const net = new Net(...IDS3.map((id, k) => newRaft(id, IDS3, {}, storages[k])));
        net.campaign('1');
        const { index } = net.propose('1');
        expect(net.get('1').raftLog.committed).toBe(index);
        expect(index).toBe(terms.length + 2);
      }
    });

    it.each([
      // entries in MsgApp, leader commit -> follower commit
      [[[1, 1]], 1, 1],
      [[[1, 1], [2, 1]], 2, 2],
      [[[1, 1], [2, 1]], 1, 1],
      [[[1, 1], [2, 1]], 5, 2], // capped by what it holds
    ])('a follower learns the commit index from MsgApp: %j with commit %d -> %d', (es, commit, want) => {
      const r = newRaft('1', IDS3);
      r.becomeFollower(1, '2');
      r.step(msg(T.MsgApp, '2', '1', 1, { index: 0, logTerm: 0, commit, entries: es.map(([i, t]) => ents(i, [t])[0]) }));
      expect(r.raftLog.committed).toBe(want);
    });

    it('a follower with a stale suffix commits (and acknowledges) only what the MsgApp vouches for', () => {
      // Entries 6..8 come from a deposed leader of term 2; the leader of term 3 has other entries there.
      const r = raftWithLog('1', IDS3, [1, 1, 1, 1, 1, 2, 2, 2], 2);
      r.step(msg(T.MsgApp, '2', '1', 3, { index: 3, logTerm: 1, entries: ents(4, [1, 1]), commit: 8 }));
      expect(r.raftLog.committed).toBe(5);
      const [m] = takeMsgs(r);
      expect([m.type, m.index, m.reject]).toEqual([T.MsgAppResp, 5, false]);
    });

    it.each([
      // follower log [1@1, 2@2], commit 1. MsgApp term/index -> index, reject, hint, hint term
      ['match committed', 0, 0, 1, false, 0, 0],
      ['match', 2, 2, 2, false, 0, 0],
      ['match first', 1, 1, 1, false, 0, 0],
      ['mismatch: term', 2, 1, 2, true, 1, 1],
      ['mismatch: beyond the log', 3, 3, 3, true, 2, 2],
    ])('the follower checks the entry preceding MsgApp entries (%s)', (_n, logTerm, index, wantIndex, reject, hint, hintTerm) => {
      const r = raftWithLog('1', IDS3, [1, 2], 2);
      r.raftLog.commitTo(1);
      r.becomeFollower(2, '2');
      r.step(msg(T.MsgApp, '2', '1', 2, { index, logTerm, commit: 1 }));
      const [m] = takeMsgs(r);
      expect([m.type, m.index, m.reject, m.rejectHint, m.logTerm]).toEqual([
        T.MsgAppResp,
        reject ? index : wantIndex,
        reject,
        hint,
        hintTerm,
      ]);
    });

    it.each([
      // MsgApp prev (index, term), entries -> log terms after
      [2, 2, [[3, 3]], [1, 2, 3]],
      [1, 1, [[2, 3], [3, 4]], [1, 3, 4]],
      [0, 0, [[1, 1]], [1, 2]],
      [0, 0, [[1, 3]], [3]],
    ])('the follower appends after (%d, %d), removing conflicting entries', (index, logTerm, es, want) => {
      const r = raftWithLog('1', IDS3, [1, 2], 2);
      r.becomeFollower(2, '2');
      r.step(msg(T.MsgApp, '2', '1', 2, { index, logTerm, entries: es.map(([i, t]) => ents(i, [t])[0]) }));
      expect(logTerms(r)).toEqual(want);
    });

    // Figure 7: the leader of term 8 with followers (a)-(f) in their states.
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    it.each([
      ['a', [1, 1, 1, 4, 4, 5, 5, 6, 6]],
      ['b', [1, 1, 1, 4]],
      ['c', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]],
      ['d', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]],
      ['e', [1, 1, 1, 4, 4, 4, 4]],
      ['f', [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]],
    ])('Figure 7: the leader brings follower (%s) in line with its log', (_name, followerLog) => {
      const leader = raftWithLog('1', IDS3, leaderLog, 8);
      const follower = raftWithLog('2', IDS3, followerLog, 7);
      const third = newRaft('3', IDS3);
      const net = new Net(leader, follower, third);
      // The third node votes for the leader; the follower would refuse if its log were more up to date.
      net.campaign('1');
      expect(leader.state).toBe(StateType.Leader);
      net.propose('1');
      expect(logTerms(follower)).toEqual(logTerms(leader));
      expect(logTerms(leader)).toEqual([...leaderLog, leader.term, leader.term]);
    });
  });

  describe('§5.4 safety', () => {
    it.each([
      // candidate last (index, term) vs voter log [1@1, 2@2]: granted?
      [2, 2, true],
      [3, 2, true],
      [1, 2, false],
      [9, 1, false],
      [1, 1, false],
      [2, 1, false],
      [1, 3, true],
    ])('§5.4.1 a voter grants only an up-to-date candidate: last (%d, term %d) -> %s', (index, logTerm, granted) => {
      const r = raftWithLog('1', IDS3, [1, 2], 2);
      r.step(msg(T.MsgVote, '2', '1', 3, { index, logTerm }));
      const [m] = takeMsgs(r);
      expect([m.type, m.reject]).toEqual([T.MsgVoteResp, !granted]);
      expect(r.vote).toBe(granted ? '2' : None);
    });

    it.each([
      // acknowledged index -> committed (leader log [1@1, 2@2] elected at term 3, no-op at 3)
      [1, 0],
      [2, 0],
      [3, 3],
    ])('§5.4.2 a leader commits by counting replicas only entries of its own term: ack %d -> commit %d', (ack, want) => {
      const r = raftWithLog('1', IDS3, [1, 2], 2);
      becomeLeader(r);
      expect(r.term).toBe(3);
      r.step(msg(T.MsgAppResp, '2', '1', r.term, { index: ack }));
      expect(r.raftLog.committed).toBe(want);
    });

    it('Figure 8: an old-term entry on a majority is not committed until an entry of the new term is', () => {
      const net = Net.of(5, { maxEntriesPerMsg: 1 });
      net.campaign('1');
      // Term 1: leader 1 replicates an entry to 2 only.
      for (const id of ['3', '4', '5']) net.drop('1', id);
      const old = net.propose('1');
      net.recover();
      // Leader 1 is elected again in term 2 (voters 2, 3, 4); one entry per MsgApp: the old entry goes first.
      net.isolate('5');
      net.get('1').becomeFollower(net.get('1').term, None);
      net.campaign('1');
      const leader = net.get('1');
      expect([leader.state, leader.term]).toEqual([StateType.Leader, 2]);
      // Whatever the old entry's replication, the commit index only moves with the new term's entry.
      if (leader.raftLog.committed >= old.index) expect(leader.raftLog.term(leader.raftLog.committed)).toBe(2);
    });
  });

  describe('fast log backtracking', () => {
    it.each([
      // leader log terms, follower log terms -> rejections until the follower matches
      ['follower has extra entries of an old term', [1, 2, 2, 4, 4, 4, 4], [1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], 2],
      ['leader has extra entries', [1, 2, 2, 4, 4, 4, 4], [1, 2, 2, 4], 1],
      ['many conflicting terms', [1, 1, 5, 5, 5, 5], [1, 1, 2, 2, 3, 3, 4, 4], 2],
      ['empty follower', [1, 1, 1, 1, 2, 2, 2, 2, 2], [], 1],
    ])('%s: a handful of round trips, not one per entry', (_n, leaderTerms, followerTerms, maxRejections) => {
      const leader = raftWithLog('1', ['1', '2'], leaderTerms, 5, { maxEntriesPerMsg: 1000 });
      const follower = raftWithLog('2', ['1', '2'], followerTerms, 5);
      const net = new Net(leader, follower);
      net.campaign('1');
      net.propose('1');
      expect(logTerms(follower)).toEqual(logTerms(leader));
      const rejections = net.log.filter((m) => m.type === T.MsgAppResp && m.reject).length;
      expect(rejections).toBeLessThanOrEqual(maxRejections);
    });
  });

  describe('flow control', () => {
    it('many proposals between two flushes go out as one MsgApp per follower', () => {
      const net = Net.of(3);
      net.campaign('1');
      net.propose('1');
      const r = net.get('1');
      for (let i = 0; i < 500; i++) r.propose(new Uint8Array([i & 0xff]));
      const out = takeMsgs(r);
      expect(out.map((m) => [m.type, m.to, m.entries?.length])).toEqual([
        [T.MsgApp, '2', 500],
        [T.MsgApp, '3', 500],
      ]);
    });

    it('batches are split by maxEntriesPerMsg and limited by the inflight window', () => {
      const net = Net.of(2, { maxEntriesPerMsg: 10, maxInflightMsgs: 3 });
      net.campaign('1');
      net.propose('1');
      const r = net.get('1');
      for (let i = 0; i < 100; i++) r.propose(new Uint8Array([1]));
      const out = takeMsgs(r);
      expect(out.map((m) => m.entries?.length)).toEqual([10, 10, 10]);
      expect(r.trk.progress.get('2')!.isPaused()).toBe(true);
      // Acknowledging the first frees one slot: one more MsgApp.
      r.step(msg(T.MsgAppResp, '2', '1', r.term, { index: out[0].entries![9].index }));
      expect(takeMsgs(r).map((m) => m.entries?.length)).toEqual([10]);
    });

    it('a follower in Probe state gets one MsgApp per heartbeat until it answers', () => {
      const r = newRaft('1', ['1', '2']);
      becomeLeader(r);
      for (let i = 0; i < 5; i++) r.propose(new Uint8Array([1]));
      expect(takeMsgs(r).filter((m) => m.type === T.MsgApp)).toHaveLength(0); // the no-op probe is unanswered
      r.tick();
      const hb = takeMsgs(r);
      expect(hb.map((m) => m.type)).toEqual([T.MsgHeartbeat]);
      r.step(msg(T.MsgHeartbeatResp, '2', '1', r.term));
      expect(takeMsgs(r).map((m) => [m.type, m.entries?.length])).toEqual([[T.MsgApp, 6]]);
    });

    it('MsgApps that get no answer while heartbeats do are resent after two heartbeat rounds', () => {
      const r = newRaft('1', ['1', '2']);
      becomeLeader(r);
      r.step(msg(T.MsgAppResp, '2', '1', r.term, { index: 1 }));
      r.propose(new Uint8Array([1]));
      expect(takeMsgs(r).map((m) => m.type)).toEqual([T.MsgApp]); // lost
      r.step(msg(T.MsgHeartbeatResp, '2', '1', r.term));
      expect(takeMsgs(r)).toEqual([]);
      r.step(msg(T.MsgHeartbeatResp, '2', '1', r.term));
      expect(takeMsgs(r).map((m) => [m.type, m.index])).toEqual([[T.MsgApp, 2]]);
    });

    it('maxUncommittedEntriesSize drops proposals beyond the limit (one large entry always fits)', () => {
      const r = newRaft('1', ['1', '2'], { maxUncommittedEntriesSize: 10 });
      becomeLeader(r);
      expect(() => r.propose(new Uint8Array(20))).not.toThrow();
      expect(() => r.propose(new Uint8Array(1))).toThrow(ProposalDroppedError);
      expect(() => r.propose(new Uint8Array(0))).not.toThrow();
    });

    it('a reported unreachable follower goes back to probing', () => {
      const net = Net.of(2);
      net.campaign('1');
      net.propose('1');
      const r = net.get('1');
      expect(r.trk.progress.get('2')!.state).toBe('Replicate');
      r.reportUnreachable('2');
      expect(r.trk.progress.get('2')!.state).toBe('Probe');
    });
  });

  describe('pre-vote (thesis 9.6)', () => {
    it('a pre-candidate asks for term + 1 without changing its term or vote', () => {
      const r = newRaft('1', IDS3, { preVote: true });
      r.hup(CampaignType.PreElection);
      expect([r.state, r.term, r.vote]).toEqual([StateType.PreCandidate, 0, None]);
      expect(takeMsgs(r).map((m) => [m.type, m.term])).toEqual([
        [T.MsgPreVote, 1],
        [T.MsgPreVote, 1],
      ]);
    });

    it('a node that grants a pre-vote keeps its term and vote', () => {
      const r = raftWithLog('1', IDS3, [1], 1, { preVote: true });
      r.step(msg(T.MsgPreVote, '2', '1', 5, { index: 1, logTerm: 1 }));
      expect([r.term, r.vote, r.state]).toEqual([1, None, StateType.Follower]);
      expect(takeMsgs(r).map((m) => [m.type, m.term, m.reject])).toEqual([[T.MsgPreVoteResp, 5, false]]);
    });

    it('a pre-vote is refused to a candidate whose log is behind', () => {
      const r = raftWithLog('1', IDS3, [1, 2], 2, { preVote: true });
      r.step(msg(T.MsgPreVote, '2', '1', 3, { index: 1, logTerm: 1 }));
      expect(takeMsgs(r).map((m) => [m.type, m.reject])).toEqual([[T.MsgPreVoteResp, true]]);
    });

    it('winning the pre-vote starts the real election; losing it leaves no trace', () => {
      const net = Net.of(3, { preVote: true });
      net.campaign('1', CampaignType.PreElection);
      expect([net.get('1').state, net.get('1').term]).toEqual([StateType.Leader, 1]);

      const lone = Net.of(3, { preVote: true });
      lone.isolate('1');
      for (let i = 0; i < 5; i++) lone.campaign('1', CampaignType.PreElection);
      expect(lone.get('1').term).toBe(0);
    });

    it('a granted pre-vote response carrying the future term does not move the candidate to it', () => {
      const r = newRaft('1', ['1', '2', '3', '4', '5'], { preVote: true });
      r.hup(CampaignType.PreElection);
      r.step(msg(T.MsgPreVoteResp, '2', '1', 1));
      expect([r.state, r.term]).toEqual([StateType.PreCandidate, 0]);
    });

    it('with check-quorum, a node partitioned away rejoins without disrupting the leader', () => {
      const net = Net.of(3, { preVote: true, checkQuorum: true });
      net.campaign('1');
      net.propose('1');
      net.isolate('3');
      for (let i = 0; i < 5; i++) net.campaign('3', CampaignType.PreElection);
      expect(net.get('3').term).toBe(1);
      net.recover();
      net.campaign('3', CampaignType.PreElection);
      expect(net.get('1').state).toBe(StateType.Leader);
      expect(net.get('1').term).toBe(1);
    });
  });

  describe('check-quorum and leases (thesis 6.2, 4.2.3)', () => {
    it('a leader that hears from no quorum for an election timeout steps down', () => {
      const r = newRaft('1', IDS3, { checkQuorum: true });
      becomeLeader(r);
      for (let i = 0; i < 10; i++) r.tick();
      expect(r.state).toBe(StateType.Follower);
    });

    it('a leader that hears from a quorum stays', () => {
      const r = newRaft('1', IDS3, { checkQuorum: true });
      becomeLeader(r);
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 10; i++) {
          r.tick();
          r.step(msg(T.MsgHeartbeatResp, '2', '1', r.term));
        }
        expect(r.state).toBe(StateType.Leader);
      }
    });

    it('a follower that heard from its leader recently ignores vote requests of higher terms', () => {
      for (const type of [T.MsgVote, T.MsgPreVote]) {
        const r = newRaft('1', IDS3, { checkQuorum: true, preVote: true });
        r.becomeFollower(1, '2');
        r.step(msg(type, '3', '1', 2, { index: 5, logTerm: 2 }));
        expect([r.term, r.vote]).toEqual([1, None]);
        expect(takeMsgs(r)).toEqual([]);
        // A campaign forced by leadership transfer goes through.
        r.step(msg(type, '3', '1', 2, { index: 5, logTerm: 2, context: CAMPAIGN_TRANSFER }));
        expect(takeMsgs(r).map((m) => m.reject)).toEqual([false]);
      }
    });
  });

  describe('ReadIndex (thesis 6.4)', () => {
    it('reads on the leader and on followers get the commit index after a heartbeat round', () => {
      const net = Net.of(3);
      net.campaign('1');
      const { index } = net.propose('1');
      for (const id of IDS3) {
        const r = net.get(id);
        r.readIndex(`ctx-${id}`);
        net.flushFrom(id);
        expect(r.readStates).toEqual([{ index, requestCtx: `ctx-${id}` }]);
        r.readStates = [];
      }
    });

    it('the leader answers no read before a quorum acknowledged a heartbeat sent after the request', () => {
      const net = Net.of(3);
      net.campaign('1');
      net.propose('1');
      net.drop('2', '1');
      net.drop('3', '1');
      const r = net.get('1');
      r.readIndex('a');
      net.flushFrom('1');
      expect(r.readStates).toEqual([]);
      net.recover();
      net.tick('1');
      expect(r.readStates.map((s) => s.requestCtx)).toEqual(['a']);
    });

    it('a new leader holds reads until an entry of its own term is committed', () => {
      const net = Net.of(3);
      net.campaign('1');
      net.propose('1');
      // Leader 2 is elected, but its no-op is not acknowledged.
      net.drop('1', '2');
      net.drop('3', '2');
      net.get('2').hup(CampaignType.Election);
      const r = net.get('2');
      r.step(msg(T.MsgVoteResp, '3', '2', r.term));
      persist(r);
      expect(r.state).toBe(StateType.Leader);
      takeMsgs(r);
      r.readIndex('early');
      net.flushFrom('2');
      expect(r.readStates).toEqual([]);
      net.recover();
      net.tick('2');
      net.tick('2');
      expect(r.readStates.map((s) => s.requestCtx)).toEqual(['early']);
      expect(r.readStates[0].index).toBeGreaterThanOrEqual(r.raftLog.lastIndex() - 0);
    });

    it('a follower without a known leader refuses a read', () => {
      const r = newRaft('1', IDS3);
      expect(() => r.readIndex('x')).toThrow(ProposalDroppedError);
    });

    it('many reads share one heartbeat round', () => {
      const net = Net.of(3);
      net.campaign('1');
      net.propose('1');
      const r = net.get('1');
      for (let i = 0; i < 50; i++) r.readIndex(`r${i}`);
      const out = takeMsgs(r);
      expect(out.map((m) => m.type)).toEqual([T.MsgHeartbeat, T.MsgHeartbeat]);
      net.deliver(out);
      expect(r.readStates).toHaveLength(50);
    });
  });

  describe('leadership transfer (thesis 3.10)', () => {
    it('to an up-to-date follower: MsgTimeoutNow at once, and it wins', () => {
      const net = Net.of(3, { checkQuorum: true });
      net.campaign('1');
      net.propose('1');
      net.get('1').transferLeadership('2');
      net.flushFrom('1');
      expect(net.get('2').state).toBe(StateType.Leader);
      expect(net.get('1').state).toBe(StateType.Follower);
      expect(net.get('1').leadTransferee).toBe(None);
    });

    it('to a lagging follower: it is caught up first', () => {
      const net = Net.of(3);
      net.campaign('1');
      net.isolate('3');
      for (let i = 0; i < 5; i++) net.propose('1');
      net.recover();
      net.get('1').transferLeadership('3');
      net.flushFrom('1');
      // The catch-up MsgApp needs the probe answered: one heartbeat round.
      net.tick('1');
      expect(net.get('3').state).toBe(StateType.Leader);
      expect(logTerms(net.get('3')).slice(0, 7)).toEqual(logTerms(net.get('1')).slice(0, 7));
    });

    it('refuses proposals while in progress, and is abandoned after an election timeout', () => {
      const net = Net.of(3);
      net.campaign('1');
      net.propose('1');
      net.isolate('3');
      const r = net.get('1');
      r.transferLeadership('3');
      net.flushFrom('1');
      expect(r.leadTransferee).toBe('3');
      expect(() => r.propose(new Uint8Array([1]))).toThrow('leadership transfer');
      net.tick('1', 10);
      expect(r.leadTransferee).toBe(None);
      expect(r.state).toBe(StateType.Leader);
      expect(() => r.propose(new Uint8Array([1]))).not.toThrow();
    });

    it('to itself or to a non-member: ignored', () => {
      const net = Net.of(3);
      net.campaign('1');
      for (const to of ['1', '9']) {
        net.get('1').transferLeadership(to);
        expect(net.get('1').leadTransferee).toBe(None);
        expect(net.get('1').state).toBe(StateType.Leader);
      }
    });

    it('a follower forwards the request to the leader', () => {
      const net = Net.of(3);
      net.campaign('1');
      net.propose('1');
      net.get('2').transferLeadership('3');
      net.flushFrom('2');
      expect(net.get('3').state).toBe(StateType.Leader);
    });
  });

  it('messages are plain data: a JSON round trip keeps everything but the payload bytes', () => {
    const net = Net.of(3, { preVote: true, checkQuorum: true });
    net.campaign('1', CampaignType.PreElection);
    net.propose('1', 'payload');
    net.get('2').readIndex('r');
    net.flushFrom('2');
    for (const m of net.log) {
      const plain = JSON.parse(JSON.stringify({ ...m, entries: m.entries?.map((e: Entry) => ({ ...e, data: Array.from(e.data) })) }));
      expect(Object.getPrototypeOf(m)).toBe(Object.prototype);
      expect(plain.type).toBe(m.type);
      for (const v of Object.values(m)) expect(typeof v).not.toBe('function');
    }
  });
});

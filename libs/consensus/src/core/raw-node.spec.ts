/**
 * The RawNode contract: what a Ready contains and when, the ready()/advance() protocol, restarts from
 * storage, input validation, and costs that do not grow with the log's length.
 */
import { RaftConfig } from './config';
import { ProposalDroppedError, RaftConfigError, ReadyProtocolError, StepLocalMessageError } from './errors';
import { MemoryStorage } from './memory-storage';
import { canSendBeforePersist, newMessage } from './message';
import { RawNode } from './raw-node';
import { Storage } from './storage';
import { ents, it2, seededRandom } from '../../../../test/support/raft-test-util';
import { Entry, Message, MessageType as T, NodeId, Ready, StateType } from './types';

function node(id: NodeId, peers: NodeId[], opts: Partial<RaftConfig> = {}, storage: Storage = new MemoryStorage()): RawNode {
  return new RawNode({ id, peers, storage, electionTick: 10, heartbeatTick: 1, random: seededRandom(7), ...opts });
}

/** The strict driver's handling of one Ready against a MemoryStorage. */
function handle(rd: Ready, s: MemoryStorage): void {
  if (rd.hardState) s.setHardState(rd.hardState);
  s.append(rd.entries);
}

/** Runs a set of nodes (sharing nothing but messages) until none has a Ready. Returns applied entries. */
function drive(nodes: Map<NodeId, { n: RawNode; s: MemoryStorage }>, maxRounds = 100): Map<NodeId, Entry[]> {
  const applied = new Map<NodeId, Entry[]>();
  for (let round = 0; round < maxRounds; round++) {
    let busy = false;
    for (const [id, { n, s }] of nodes) {
      if (!n.hasReady()) continue;
      busy = true;
      const rd = n.ready();
      handle(rd, s);
      for (const m of rd.messages) nodes.get(m.to)?.n.step(m);
      applied.set(id, [...(applied.get(id) ?? []), ...rd.committedEntries]);
      n.advance();
    }
    if (!busy) return applied;
  }
  throw new Error('the nodes never went quiet');
}

function cluster(ids: NodeId[], opts: Partial<RaftConfig> = {}): Map<NodeId, { n: RawNode; s: MemoryStorage }> {
  return new Map(
    ids.map((id) => {
      const s = new MemoryStorage();
      return [id, { n: node(id, ids, opts, s), s }];
    }),
  );
}

describe('RawNode', () => {
  it('a fresh follower has nothing to do', () => {
    const n = node('1', ['1', '2', '3']);
    expect(n.hasReady()).toBe(false);
    expect(n.status()).toMatchObject({ id: '1', term: 0, raftState: StateType.Follower, lead: '', progress: {} });
  });

  it('a single node elects itself, and commits only after its entries are persisted (advance)', () => {
    const s = new MemoryStorage();
    const n = node('1', ['1'], {}, s);
    n.campaign();
    let rd = n.ready();
    expect(rd.softState).toEqual({ lead: '1', raftState: StateType.Leader });
    expect(rd.hardState).toEqual({ term: 1, vote: '1', commit: 0 });
    expect(it2(rd.entries)).toEqual([[1, 1]]);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.mustSync).toBe(true);
    handle(rd, s);
    n.advance();
    rd = n.ready();
    expect(rd.softState).toBeUndefined();
    expect(rd.hardState).toEqual({ term: 1, vote: '1', commit: 1 });
    expect(it2(rd.committedEntries)).toEqual([[1, 1]]);
    expect(rd.entries).toEqual([]);
    // A commit-only change need not be fsynced.
    expect(rd.mustSync).toBe(false);
    handle(rd, s);
    n.advance();
    expect(n.hasReady()).toBe(false);
    const at = n.propose(new Uint8Array([7]));
    expect(at).toEqual({ index: 2, term: 1 });
    rd = n.ready();
    expect(it2(rd.entries)).toEqual([[2, 1]]);
    expect(rd.hardState).toBeUndefined();
    handle(rd, s);
    n.advance();
    rd = n.ready();
    expect(it2(rd.committedEntries)).toEqual([[2, 1]]);
    expect(rd.committedEntries[0].data).toEqual(new Uint8Array([7]));
  });

  it('one Ready at a time: ready() twice or advance() without ready() is a protocol error', () => {
    const s = new MemoryStorage();
    const n = node('1', ['1'], {}, s);
    n.campaign();
    expect(() => n.advance()).toThrow(ReadyProtocolError);
    const rd = n.ready();
    expect(n.hasReady()).toBe(false);
    expect(() => n.ready()).toThrow(ReadyProtocolError);
    handle(rd, s);
    n.advance();
    expect(() => n.advance()).toThrow(ReadyProtocolError);
  });

  it('advance() refuses a Ready whose entries the driver did not append to storage', () => {
    const n = node('1', ['1']);
    n.campaign();
    n.ready();
    expect(() => n.advance()).toThrow('was not appended to storage');
  });

  it.each([
    // what changes -> mustSync
    ['a new term (with a vote)', (n: RawNode) => n.step({ ...newMessage(T.MsgVote, '1', '2', 3), index: 9, logTerm: 9 }), true],
    ['a vote in a term already persisted', (n: RawNode) => n.step({ ...newMessage(T.MsgVote, '1', '2', 2), index: 9, logTerm: 9 }), true],
    ['a rejected vote in a new term (term only)', (n: RawNode) => n.step({ ...newMessage(T.MsgVote, '1', '2', 3), index: 0, logTerm: 0 }), true],
    ['entries', (n: RawNode) => n.step({ ...newMessage(T.MsgApp, '1', '2', 2), entries: ents(2, [2]), index: 1, logTerm: 1 }), true],
    ['the commit index only', (n: RawNode) => n.step({ ...newMessage(T.MsgHeartbeat, '1', '2', 2), commit: 1 }), false],
  ])('mustSync for %s', (_n, input, want) => {
    const s = new MemoryStorage();
    s.append(ents(1, [1]));
    s.setHardState({ term: 2, vote: '', commit: 0 });
    const n = node('1', ['1', '2', '3'], {}, s);
    input(n);
    expect(n.ready().mustSync).toBe(want);
  });

  it('input between ready() and advance() goes into the next Ready', () => {
    const s = new MemoryStorage();
    const n = node('1', ['1'], {}, s);
    n.campaign();
    let rd = n.ready();
    handle(rd, s);
    n.advance();
    rd = n.ready();
    n.propose(new Uint8Array([1]));
    n.propose(new Uint8Array([2]));
    handle(rd, s);
    n.advance();
    rd = n.ready();
    expect(it2(rd.entries)).toEqual([
      [2, 1],
      [3, 1],
    ]);
  });

  it('entries handed out and then overwritten by a new leader before advance() are not marked stable', () => {
    const s = new MemoryStorage();
    const n = node('2', ['1', '2', '3'], {}, s);
    const app = (term: number, index: number, logTerm: number, es: Entry[], commit = 0): Message => ({
      ...newMessage(T.MsgApp, '2', '1', term),
      index,
      logTerm,
      entries: es,
      commit,
    });
    n.step(app(1, 0, 0, ents(1, [1, 1, 1])));
    const rd1 = n.ready();
    expect(it2(rd1.entries)).toEqual([[1, 1], [2, 1], [3, 1]]);
    // While rd1 is being persisted, the leader of term 2 overwrites from index 2.
    n.step({ ...app(2, 1, 1, ents(2, [2])), from: '3' });
    handle(rd1, s);
    n.advance();
    const rd2 = n.ready();
    expect(it2(rd2.entries)).toEqual([[2, 2]]);
    handle(rd2, s);
    n.advance();
    expect([s.lastIndex(), s.term(2)]).toEqual([2, 2]);
    expect(n.status().lastIndex).toBe(2);
  });

  it.each([
    // applied, want re-delivered [first, last] (log 1..5, commit 4)
    [0, [1, 4]],
    [2, [3, 4]],
    [4, null],
  ])('restarts from storage, re-delivering committed entries above applied=%d', (applied, want) => {
    const s = new MemoryStorage();
    s.append(ents(1, [1, 1, 2, 2, 2]));
    s.setHardState({ term: 2, vote: '1', commit: 4 });
    const n = node('1', ['1', '2', '3'], { applied }, s);
    expect(n.status()).toMatchObject({ term: 2, vote: '1', commit: 4, applied, lastIndex: 5 });
    if (want === null) {
      expect(n.hasReady()).toBe(false);
    } else {
      const rd = n.ready();
      expect(rd.hardState).toBeUndefined();
      expect(rd.entries).toEqual([]);
      expect(rd.committedEntries.map((e) => e.index)).toEqual(Array.from({ length: want[1] - want[0] + 1 }, (_, k) => want[0] + k));
    }
  });

  it('a state machine ahead of the durable commit index raises it (the commit index is not fsynced)', () => {
    const s = new MemoryStorage();
    s.append(ents(1, [1, 1, 1]));
    s.setHardState({ term: 1, vote: '', commit: 1 });
    const n = node('1', ['1', '2', '3'], { applied: 3 }, s);
    expect(n.status()).toMatchObject({ commit: 3, applied: 3 });
    expect(() => node('1', ['1', '2', '3'], { applied: 4 }, s)).toThrow(RaftConfigError);
  });

  it('refuses a storage whose commit index is beyond its log, and bad configurations', () => {
    const s = new MemoryStorage();
    s.append(ents(1, [1]));
    s.setHardState({ term: 1, vote: '', commit: 2 });
    expect(() => node('1', ['1'], {}, s)).toThrow(RaftConfigError);
    // Empty peers is a joining node (raft-confchange.spec); learners need voters, and may not be voters.
    expect(() => node('1', [], { learners: ['1'] })).toThrow(RaftConfigError);
    expect(() => node('1', ['1', '2'], { learners: ['2'] })).toThrow(RaftConfigError);
    expect(() => node('', ['1'])).toThrow(RaftConfigError);
    expect(() => node('1', ['1'], { electionTick: 1, heartbeatTick: 1 })).toThrow(RaftConfigError);
    expect(() => node('1', ['1'], { maxSizePerMsg: 0 })).toThrow(RaftConfigError);
  });

  it('uses the configuration in storage over `peers` once there is one', () => {
    const s = new MemoryStorage(['a', 'b', 'c']);
    const n = node('a', ['a'], {}, s);
    n.campaign();
    const rd = n.ready();
    expect(rd.messages.map((m) => m.to).sort()).toEqual(['b', 'c']);
  });

  it('paginates committed entries with maxCommittedSizePerReady', () => {
    const s = new MemoryStorage();
    s.append(ents(1, [1, 1, 1, 1]).map((e) => ({ ...e, data: new Uint8Array(10) })));
    s.setHardState({ term: 1, vote: '', commit: 4 });
    const n = node('1', ['1', '2', '3'], { maxCommittedSizePerReady: 25 }, s);
    const sizes: number[] = [];
    while (n.hasReady()) {
      sizes.push(n.ready().committedEntries.length);
      n.advance();
    }
    expect(sizes).toEqual([2, 2]);
  });

  it('step() rejects local message types; drops messages for others, responses from strangers, messages without a term', () => {
    const n = node('1', ['1', '2', '3']);
    for (const t of [T.MsgHup, T.MsgBeat, T.MsgProp, T.MsgCheckQuorum, T.MsgUnreachable, T.MsgSnapStatus]) {
      expect(() => n.step(newMessage(t, '1', '2', 1))).toThrow(StepLocalMessageError);
    }
    n.step(newMessage(T.MsgApp, '9', '2', 5));
    expect(n.status().term).toBe(0);
    n.step(newMessage(T.MsgVoteResp, '1', '9', 5));
    expect(n.status().term).toBe(0);
    n.step(newMessage(T.MsgApp, '1', '2', 0));
    expect(n.status()).toMatchObject({ term: 0, lead: '' });
    n.step(newMessage(T.MsgApp, '1', '2', 5));
    expect(n.status()).toMatchObject({ term: 5, lead: '2' });
  });

  it('propose, readIndex and transferLeadership on a follower', () => {
    const n = node('1', ['1', '2', '3']);
    expect(() => n.propose(new Uint8Array([1]))).toThrow(ProposalDroppedError);
    expect(() => n.readIndex('r')).toThrow(ProposalDroppedError);
    n.transferLeadership('2'); // no leader known: dropped
    expect(n.hasReady()).toBe(false);
    n.step({ ...newMessage(T.MsgHeartbeat, '1', '2', 1) });
    n.readIndex('r');
    n.transferLeadership('3');
    const rd = n.ready();
    expect(rd.messages.map((m) => [m.type, m.to])).toEqual([
      [T.MsgHeartbeatResp, '2'],
      [T.MsgReadIndex, '2'],
      [T.MsgTransferLeader, '2'],
    ]);
  });

  it('status() reports the progress of every member on the leader', () => {
    const c = cluster(['1', '2', '3']);
    c.get('1')!.n.campaign();
    drive(c);
    const st = c.get('1')!.n.status();
    expect(st.raftState).toBe(StateType.Leader);
    expect(Object.keys(st.progress).sort()).toEqual(['1', '2', '3']);
    expect(st.progress['2']).toMatchObject({ match: 1, next: 2, state: 'Replicate', inflight: 0 });
    expect(c.get('2')!.n.status().progress).toEqual({});
  });

  it('coalesces: 1000 proposals between two Readies are one MsgApp per follower', () => {
    const c = cluster(['1', '2', '3']);
    const leader = c.get('1')!;
    leader.n.campaign();
    drive(c);
    for (let i = 0; i < 1000; i++) leader.n.propose(new Uint8Array([i & 0xff]));
    const rd = leader.n.ready();
    expect(rd.messages.map((m) => [m.type, m.to, m.entries?.length])).toEqual([
      [T.MsgApp, '2', 1000],
      [T.MsgApp, '3', 1000],
    ]);
    handle(rd, leader.s);
    for (const m of rd.messages) c.get(m.to)!.n.step(m);
    leader.n.advance();
    const applied = drive(c);
    for (const id of ['1', '2', '3']) expect(applied.get(id)!.length).toBe(1000);
  });

  it('the early-send rule: only the leader\'s MsgApp, MsgHeartbeat and MsgSnap may precede persistence', () => {
    const early = new Set([T.MsgApp, T.MsgHeartbeat, T.MsgSnap]);
    for (const t of Object.values(T).filter((v): v is T => typeof v === 'number')) {
      expect([T[t], canSendBeforePersist(newMessage(t, '2', '1', 1))]).toEqual([T[t], early.has(t)]);
    }
  });

  it('ready(), advance() and propose() cost the same on a log of 200,000 entries as on an empty one', () => {
    const counts = { entries: 0, term: 0 };
    const big = new MemoryStorage();
    const N = 200_000;
    const e: Entry[] = [];
    for (let i = 1; i <= N; i++) e.push({ index: i, term: 1, type: 0, data: new Uint8Array(0) });
    big.append(e);
    big.setHardState({ term: 1, vote: '1', commit: N });
    // Count what the core reads from storage.
    const s: Storage & { append(es: Entry[]): void; setHardState: MemoryStorage['setHardState'] } = {
      initialState: () => big.initialState(),
      entries: (lo, hi, max) => {
        const out = big.entries(lo, hi, max);
        counts.entries += out.length;
        return out;
      },
      term: (i) => {
        counts.term++;
        return big.term(i);
      },
      firstIndex: () => big.firstIndex(),
      lastIndex: () => big.lastIndex(),
      snapshot: () => big.snapshot(),
      append: (es) => big.append(es),
      setHardState: (hs) => big.setHardState(hs),
    };
    const n = node('1', ['1'], { applied: N }, s);
    n.campaign();
    const cycle = () => {
      while (n.hasReady()) {
        const rd = n.ready();
        if (rd.hardState) s.setHardState(rd.hardState);
        s.append(rd.entries);
        n.advance();
      }
    };
    cycle();
    counts.entries = 0;
    counts.term = 0;
    for (let i = 0; i < 100; i++) {
      n.propose(new Uint8Array([1]));
      cycle();
    }
    // Per proposal: a few term lookups and the entry itself, never a scan of the log.
    expect(counts.entries).toBeLessThanOrEqual(100);
    expect(counts.term).toBeLessThanOrEqual(100 * 4);
    expect(n.status().commit).toBe(N + 101);
  });
});

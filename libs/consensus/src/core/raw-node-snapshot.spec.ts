/**
 * Snapshots through the RawNode contract: a Ready that carries a snapshot, advance(), restarts from a
 * storage that starts with a snapshot, and a cluster in which a follower cut off while the leader compacted
 * its log is brought back by a snapshot, then by appends.
 */
import { RaftConfig } from './config';
import { ReadyProtocolError } from './errors';
import { MemoryStorage } from './memory-storage';
import { newMessage } from './message';
import { RawNode } from './raw-node';
import { ents, it2, seededRandom } from '../../../../test/support/raft-test-util';
import { Entry, Message, MessageType as T, NodeId, Ready, Snapshot, StateType } from './types';

function node(id: NodeId, peers: NodeId[], storage: MemoryStorage, opts: Partial<RaftConfig> = {}): RawNode {
  return new RawNode({ id, peers, storage, electionTick: 10, heartbeatTick: 1, random: seededRandom(7), ...opts });
}

function snapshot(index: number, term: number, voters: NodeId[] = ['1', '2', '3']): Snapshot {
  // The content of an empty ListStateMachine (below).
  return { metadata: { index, term, confState: { voters } }, data: new TextEncoder().encode('[]') };
}

function fromLeader(type: T, term: number, fields: Partial<Message> = {}): Message {
  return { ...newMessage(type, '1', '2', term), ...fields };
}

/** Follower '1' of ['1', '2', '3'] at term 2 whose storage holds entries 1..3 (term 1), all committed. */
function follower(): { n: RawNode; s: MemoryStorage } {
  const s = new MemoryStorage();
  s.append(ents(1, [1, 1, 1]));
  s.setHardState({ term: 2, vote: '', commit: 3 });
  return { n: node('1', ['1', '2', '3'], s), s };
}

/** The strict driver's persistence, in the contract's order: snapshot, then hard state and entries. */
function persist(rd: Ready, s: MemoryStorage): void {
  if (rd.snapshot) s.applySnapshot(rd.snapshot);
  if (rd.hardState) s.setHardState(rd.hardState);
  s.append(rd.entries);
}

describe('RawNode with snapshots', () => {
  it('a Ready carries a received snapshot: mustSync, commit at its index, committed entries only after it', () => {
    const { n, s } = follower();
    // Entries 1..3 are committed and not applied yet (applied 0); the snapshot covers them.
    n.step(fromLeader(T.MsgSnap, 2, { snapshot: snapshot(10, 2) }));
    n.step(fromLeader(T.MsgApp, 2, { index: 10, logTerm: 2, commit: 12, entries: ents(11, [2, 2]) }));
    const rd = n.ready();
    expect(rd.snapshot?.metadata.index).toBe(10);
    expect(rd.mustSync).toBe(true);
    expect(rd.hardState).toEqual({ term: 2, vote: '', commit: 12 });
    expect(it2(rd.entries)).toEqual([[11, 2], [12, 2]]);
    expect(it2(rd.committedEntries)).toEqual([[11, 2], [12, 2]]);
    expect(rd.messages.map((m) => [T[m.type], m.index])).toEqual([
      ['MsgAppResp', 10],
      ['MsgAppResp', 12],
    ]);
    persist(rd, s);
    n.advance();
    expect(n.status()).toMatchObject({ commit: 12, applied: 12, lastIndex: 12 });
    expect(n.hasReady()).toBe(false);
    expect([s.firstIndex(), s.lastIndex(), s.snapshot().metadata.index]).toEqual([11, 12, 10]);
  });

  it('a snapshot alone: mustSync even though only the commit index of the hard state moved', () => {
    const { n, s } = follower();
    n.step(fromLeader(T.MsgSnap, 2, { snapshot: snapshot(10, 2) }));
    const rd = n.ready();
    expect([rd.mustSync, rd.hardState?.commit, rd.committedEntries.length, rd.entries.length]).toEqual([true, 10, 0, 0]);
    expect(n.status().applied).toBe(0);
    persist(rd, s);
    n.advance();
    expect(n.status()).toMatchObject({ commit: 10, applied: 10, lastIndex: 10 });
    // The snapshot was handed out once.
    expect(n.hasReady()).toBe(false);
  });

  it('advance() refuses a Ready whose snapshot the driver did not install', () => {
    const { n, s } = follower();
    n.step(fromLeader(T.MsgSnap, 2, { snapshot: snapshot(10, 2) }));
    const rd = n.ready();
    s.setHardState(rd.hardState!);
    expect(() => n.advance()).toThrow(ReadyProtocolError);
    expect(() => n.advance()).toThrow(ReadyProtocolError); // nothing outstanding any more
  });

  it('a newer snapshot received while one is being installed goes into the next Ready', () => {
    const { n, s } = follower();
    n.step(fromLeader(T.MsgSnap, 2, { snapshot: snapshot(10, 2) }));
    const rd1 = n.ready();
    n.step(fromLeader(T.MsgSnap, 3, { snapshot: snapshot(20, 3) }));
    persist(rd1, s);
    n.advance();
    expect(n.status()).toMatchObject({ applied: 10, commit: 20 });
    const rd2 = n.ready();
    expect(rd2.snapshot?.metadata.index).toBe(20);
    expect(rd2.committedEntries).toEqual([]);
    persist(rd2, s);
    n.advance();
    expect(n.status()).toMatchObject({ applied: 20, commit: 20, lastIndex: 20, term: 3 });
  });

  it('confState() reports the voters, and those of an installed snapshot', () => {
    const { n, s } = follower();
    expect(n.confState()).toEqual({ voters: ['1', '2', '3'] });
    n.step(fromLeader(T.MsgSnap, 2, { snapshot: snapshot(10, 2, ['1', '2', '4']) }));
    persist(n.ready(), s);
    n.advance();
    expect(n.confState()).toEqual({ voters: ['1', '2', '4'] });
  });

  describe('restart from a storage that starts with a snapshot', () => {
    /** Storage of a node that installed snapshot 10 (term 2), then appended 11 and 12 (term 2). */
    function installed(commit: number): MemoryStorage {
      const s = new MemoryStorage();
      s.applySnapshot(snapshot(10, 2));
      s.append(ents(11, [2, 2]));
      s.setHardState({ term: 2, vote: '', commit });
      return s;
    }

    it.each([
      // applied, want re-delivered
      [0, [11]],
      [10, [11]],
      [11, []],
    ])('applied=%d: the snapshot counts as applied, committed entries after it are delivered', (applied, want) => {
      const s = installed(11);
      const n = node('1', ['1'], s, { applied });
      expect(n.status()).toMatchObject({ commit: 11, applied: Math.max(applied, 10), lastIndex: 12, term: 2 });
      // The configuration comes from the snapshot, not from `peers`.
      expect(n.confState()).toEqual({ voters: ['1', '2', '3'] });
      if (want.length === 0) {
        expect(n.hasReady()).toBe(false);
      } else {
        expect(n.ready().committedEntries.map((e) => e.index)).toEqual(want);
      }
    });

    it('a durable commit index below the snapshot (a crash before the hard state was saved) starts at the snapshot', () => {
      const s = installed(3);
      const n = node('1', ['1', '2', '3'], s);
      expect(n.status()).toMatchObject({ commit: 10, applied: 10 });
      // The first Ready saves the commit index the node starts from.
      const rd = n.ready();
      expect([rd.hardState, rd.mustSync, rd.committedEntries]).toEqual([{ term: 2, vote: '', commit: 10 }, false, []]);
    });

    it("a durable term below the snapshot's is saved by the first Ready (fsynced)", () => {
      const s = installed(3);
      s.setHardState({ term: 1, vote: '2', commit: 3 });
      const rd = node('1', ['1', '2', '3'], s).ready();
      expect([rd.hardState, rd.mustSync]).toEqual([{ term: 2, vote: '', commit: 10 }, true]);
    });

    it("a durable term below the snapshot's (the same crash) resumes at the snapshot's term, without a vote", () => {
      const s = installed(3);
      s.setHardState({ term: 1, vote: '2', commit: 3 });
      const n = node('1', ['1', '2', '3'], s, { preVote: false });
      expect(n.status()).toMatchObject({ term: 2, vote: '', commit: 10 });
      // Its campaign is for a term none of whose entries it holds.
      n.campaign();
      const rd = n.ready();
      expect([rd.hardState, rd.mustSync]).toEqual([{ term: 3, vote: '1', commit: 10 }, true]);
      expect(rd.messages.map((m) => [T[m.type], m.term, m.logTerm, m.index])).toEqual([
        ['MsgVote', 3, 2, 12],
        ['MsgVote', 3, 2, 12],
      ]);
    });

    it('the restarted node campaigns with its last entry and replicates after the snapshot', () => {
      const c = new Cluster(['1', '2', '3']);
      c.get('1').storage = installed(12);
      for (const id of ['2', '3']) {
        const s = new MemoryStorage();
        s.applySnapshot(snapshot(10, 2));
        s.setHardState({ term: 2, vote: '', commit: 10 });
        c.get(id).storage = s;
      }
      c.restartAll();
      c.get('1').n.campaign();
      c.run();
      expect(c.get('1').n.status().raftState).toBe(StateType.Leader);
      // The followers probed at 12 reject, and are caught up from 11 on, no snapshot needed.
      expect(c.sent.filter((m) => m.type === T.MsgSnap)).toEqual([]);
      c.expectConverged();
    });
  });

  it('a follower cut off while the leader compacted its log is caught up by a snapshot, then by appends', () => {
    const c = new Cluster(['1', '2', '3']);
    c.restartAll();
    c.get('1').n.campaign();
    c.run();
    for (let i = 0; i < 3; i++) c.propose('1', `a${i}`);
    c.run();
    c.cut.add('3');
    for (let i = 0; i < 5; i++) c.propose('1', `b${i}`);
    c.run();
    // The leader snapshots what it applied and releases its log.
    const leader = c.get('1');
    const applied = leader.n.status().applied;
    expect(applied).toBe(9);
    leader.storage.createSnapshot(applied, leader.n.confState(), leader.sm.save());
    leader.storage.compact(applied);
    expect(c.get('3').n.status().lastIndex).toBe(4);
    c.cut.clear();
    for (let t = 0; t < 4; t++) c.tickAll();
    const snaps = c.sent.filter((m) => m.type === T.MsgSnap);
    expect(snaps.map((m) => [m.to, m.snapshot!.metadata.index])).toEqual([['3', 9]]);
    // Installed, and the entries after it replicated.
    const three = c.get('3');
    expect([three.storage.firstIndex(), three.storage.snapshot().metadata.index]).toEqual([10, 9]);
    expect(leader.n.status().progress['3']).toMatchObject({ state: 'Replicate', match: leader.n.status().lastIndex });
    c.propose('1', 'c0');
    c.run();
    c.expectConverged();
    expect(three.sm.applied).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'b3', 'b4', 'c0']);
    // Restarting the follower from its storage (snapshot, then entries) loses nothing.
    c.crash('3');
    c.restart('3');
    c.tickAll();
    c.expectConverged();
    expect(three.sm.applied).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'b3', 'b4', 'c0']);
  });

  it('a snapshot transfer that fails is retried at the next heartbeat answer', () => {
    const c = new Cluster(['1', '2', '3']);
    c.restartAll();
    c.get('1').n.campaign();
    c.run();
    c.cut.add('3');
    for (let i = 0; i < 4; i++) c.propose('1', `x${i}`);
    c.run();
    const leader = c.get('1');
    const applied = leader.n.status().applied;
    leader.storage.createSnapshot(applied, leader.n.confState(), leader.sm.save());
    leader.storage.compact(applied);
    c.cut.clear();
    c.failSnapshots = 1;
    for (let t = 0; t < 6; t++) c.tickAll();
    expect(c.sent.filter((m) => m.type === T.MsgSnap).map((m) => m.to)).toEqual(['3', '3']);
    c.expectConverged();
  });
});

/** A node's "state machine": the data of the entries applied, in order; its snapshot is that list. */
class ListStateMachine {
  applied: string[] = [];

  apply(e: Entry): void {
    if (e.data.length > 0) this.applied.push(new TextDecoder().decode(e.data));
  }

  save(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.applied));
  }

  restore(data: Uint8Array): void {
    this.applied = JSON.parse(new TextDecoder().decode(data)) as string[];
  }
}

interface Member {
  n: RawNode;
  storage: MemoryStorage;
  sm: ListStateMachine;
}

/**
 * RawNodes driven by the strict contract (install the snapshot, persist, send, restore, apply, advance),
 * with synchronous delivery. The transport reports each MsgSnap: delivered, or failed when the recipient is
 * cut off or `failSnapshots` says so.
 */
class Cluster {
  private readonly members = new Map<NodeId, Member>();
  readonly cut = new Set<NodeId>();
  readonly sent: Message[] = [];
  failSnapshots = 0;

  constructor(private readonly ids: NodeId[]) {
    for (const id of ids) this.members.set(id, { n: undefined as unknown as RawNode, storage: new MemoryStorage(), sm: new ListStateMachine() });
  }

  get(id: NodeId): Member {
    return this.members.get(id)!;
  }

  restartAll(): void {
    for (const id of this.ids) this.restart(id);
  }

  /** A new process on the node's storage: the state machine restarts from the stored snapshot. */
  restart(id: NodeId): void {
    const m = this.get(id);
    m.sm = new ListStateMachine();
    const snap = m.storage.snapshot();
    if (snap.metadata.index > 0) m.sm.restore(snap.data);
    m.n = node(id, this.ids, m.storage, { random: seededRandom(id.charCodeAt(0)), applied: snap.metadata.index });
  }

  crash(id: NodeId): void {
    this.get(id).n = undefined as unknown as RawNode;
  }

  propose(id: NodeId, data: string): void {
    this.get(id).n.propose(new TextEncoder().encode(data));
  }

  tickAll(): void {
    for (const m of this.members.values()) m.n?.tick();
    this.run();
  }

  /** Handles Readies and delivers messages until no node has anything to do. */
  run(): void {
    for (let round = 0; round < 1000; round++) {
      let busy = false;
      for (const [id, m] of this.members) {
        if (!m.n || !m.n.hasReady()) continue;
        busy = true;
        this.handle(id, m);
      }
      if (!busy) return;
    }
    throw new Error('the cluster never went quiet');
  }

  private handle(id: NodeId, m: Member): void {
    const rd = m.n.ready();
    persist(rd, m.storage);
    for (const msg of rd.messages) this.deliver(id, msg);
    if (rd.snapshot) m.sm.restore(rd.snapshot.data);
    for (const e of rd.committedEntries) m.sm.apply(e);
    m.n.advance();
  }

  private deliver(from: NodeId, msg: Message): void {
    this.sent.push(msg);
    const to = this.members.get(msg.to);
    const lost = this.cut.has(from) || this.cut.has(msg.to) || !to?.n;
    if (msg.type === T.MsgSnap) {
      const failed = lost || this.failSnapshots > 0;
      if (this.failSnapshots > 0) this.failSnapshots--;
      if (!failed) to!.n.step(msg);
      this.get(from).n.reportSnapshot(msg.to, failed);
      return;
    }
    if (!lost) to!.n.step(msg);
  }

  /** Every node holds the same log (from the highest first index on), commit index and applied data. */
  expectConverged(): void {
    const all = [...this.members.values()];
    const st = all.map((m) => m.n.status());
    expect(new Set(st.map((s) => `${s.lastIndex}/${s.commit}/${s.applied}`)).size).toBe(1);
    const from = Math.max(...all.map((m) => m.storage.firstIndex()));
    const tail = (s: MemoryStorage) => it2(s.entries(from, s.lastIndex() + 1));
    for (const m of all) expect(tail(m.storage)).toEqual(tail(all[0].storage));
    for (const m of all) expect(m.sm.applied).toEqual(all[0].sm.applied);
  }
}

/**
 * The Ready loop's contract, on a real RawNode and MemoryStorage, with a clock whose deferred turns and a
 * storage whose saves the test completes by hand:
 * - the leader's MsgApp/MsgHeartbeat leave before the save completes; everything else only after it;
 * - committed entries are applied, read states handed over and advance() called only after the save;
 * - one Ready at a time (no save starts while one is in flight);
 * - a commit-only Ready is not saved, and its hard state rides along with the next save;
 * - a failed save (or a throw) calls fail once and stops the loop; stop() ignores a save completing later.
 */
import { MemoryStorage } from './core/memory-storage';
import { newMessage } from './core/message';
import { RawNode } from './core/raw-node';
import { seededRandom } from '../../../test/support/raft-test-util';
import { ConfChangeType, Entry, HardState, Message, MessageType as T, NodeId, ReadState, Ready, Snapshot, SoftState } from './core/types';
import { Clock, RaftStorage, SaveCallback, Timer } from './ports';
import { ReadyHandler, ReadyLoop } from './ready-loop';

/** A clock whose deferred functions the test runs by hand. */
class ManualClock implements Clock {
  readonly deferred: Array<() => void> = [];
  now(): number {
    return 0;
  }
  every(): Timer {
    throw new Error('the loop sets no timers');
  }
  after(): Timer {
    throw new Error('the loop sets no timers');
  }
  defer(fn: () => void): void {
    this.deferred.push(fn);
  }
  /** Runs the deferred functions queued so far, and any they queue. */
  run(): void {
    while (this.deferred.length > 0) this.deferred.shift()!();
  }
}

interface SaveCall {
  hardState?: HardState;
  entries: Entry[];
  done: SaveCallback;
  completed: boolean;
}

/** A RaftStorage whose saves are recorded and completed by the test. */
class ManualStorage implements RaftStorage {
  readonly storage = new MemoryStorage();
  readonly meta = undefined;
  readonly saves: SaveCall[] = [];
  constructor(private readonly events: string[]) {}
  save(hardState: HardState | undefined, entries: Entry[], done: SaveCallback): void {
    this.saves.push({ hardState, entries, done, completed: false });
    this.events.push(`save ${entries.map((e) => e.index).join(',') || '-'}`);
  }
  async setMeta(): Promise<void> {}
  /** Installs complete when the test says (completeInstall). */
  readonly installs: Array<{ snapshot: Snapshot; done: SaveCallback }> = [];
  installSnapshot(snapshot: Snapshot, done: SaveCallback): void {
    this.installs.push({ snapshot, done });
    this.events.push(`install ${snapshot.metadata.index}`);
  }
  completeInstall(error?: Error): void {
    const i = this.installs.shift();
    if (!i) throw new Error('no install in flight');
    if (!error) this.storage.applySnapshot(i.snapshot);
    this.events.push(error ? `install failed ${error.message}` : 'installed');
    i.done(error);
  }
  createSnapshot(): void {
    throw new Error('the loop takes no snapshot');
  }
  compact(): void {
    throw new Error('the loop compacts nothing');
  }
  snapshotContent(): Iterable<Uint8Array> {
    return [];
  }
  get pending(): SaveCall[] {
    return this.saves.filter((s) => !s.completed);
  }
  /** Completes the oldest pending save: durable (appended to the MemoryStorage), or failed with `error`. */
  complete(error?: Error, { append = true } = {}): void {
    const s = this.pending[0];
    if (!s) throw new Error('no save in flight');
    s.completed = true;
    if (!error && append) {
      if (s.hardState) this.storage.setHardState(s.hardState);
      this.storage.append(s.entries);
    }
    this.events.push(error ? `failed ${error.message}` : 'durable');
    s.done(error);
  }
}

const types = (ms: Message[]) => ms.map((m) => T[m.type]).join(',');

interface Harness {
  node: RawNode;
  clock: ManualClock;
  storage: ManualStorage;
  loop: ReadyLoop;
  handler: ReadyHandler;
  events: string[];
  sent: Message[];
  applied: Entry[];
  readStates: ReadState[];
  readies: Ready[];
  failures: Error[];
  /** Restores the handler was asked for, completed by the test. */
  restores: Array<{ snapshot: Snapshot; done: (error?: Error) => void }>;
  /** Steps messages into the loop's node and schedules a turn, as the owner does. */
  deliver(ms: Message[]): void;
}

function harness(peers: NodeId[] = ['1']): Harness {
  const events: string[] = [];
  const clock = new ManualClock();
  const storage = new ManualStorage(events);
  const node = new RawNode({
    id: '1',
    peers,
    storage: storage.storage,
    electionTick: 10,
    heartbeatTick: 1,
    random: seededRandom(3),
    preVote: false,
    checkQuorum: false,
  });
  const advance = node.advance.bind(node);
  jest.spyOn(node, 'advance').mockImplementation(() => {
    events.push('advance');
    advance();
  });
  const sent: Message[] = [];
  const applied: Entry[] = [];
  const readStates: ReadState[] = [];
  const readies: Ready[] = [];
  const failures: Error[] = [];
  const restores: Harness['restores'] = [];
  const handler: ReadyHandler = {
    beforeReady: jest.fn(),
    onSoftState: (s: SoftState) => events.push(`soft ${s.raftState}`),
    send: (ms) => {
      sent.push(...ms);
      events.push(`send ${types(ms)}`);
    },
    apply: (es) => {
      applied.push(...es);
      events.push(`apply ${es.map((e) => e.index).join(',')}`);
    },
    restore: (snapshot, done) => {
      restores.push({ snapshot, done });
      events.push(`restore ${snapshot.metadata.index}`);
    },
    onReadStates: (rs) => {
      readStates.push(...rs);
      events.push(`read ${rs.map((r) => `${r.requestCtx}@${r.index}`).join(',')}`);
    },
    fail: (e) => {
      failures.push(e);
      events.push(`fail ${e.message}`);
    },
  };
  const loop = new ReadyLoop(node, storage, clock, handler, { onReady: (rd) => readies.push(rd) });
  const h: Harness = {
    node,
    clock,
    storage,
    loop,
    handler,
    events,
    sent,
    applied,
    readStates,
    readies,
    failures,
    restores,
    deliver(ms) {
      for (const m of ms) node.step(m);
      loop.schedule();
    },
  };
  return h;
}

/** Peer '2' of a two-node group, driven strictly (persist, then answer) outside the loop. */
function peer(): { deliver(ms: Message[]): Message[] } {
  const s = new MemoryStorage();
  const n = new RawNode({ id: '2', peers: ['1', '2'], storage: s, electionTick: 10, heartbeatTick: 1, random: seededRandom(9), preVote: false, checkQuorum: false });
  return {
    deliver(ms) {
      for (const m of ms) if (m.to === '2') n.step(m);
      const out: Message[] = [];
      while (n.hasReady()) {
        const rd = n.ready();
        if (rd.hardState) s.setHardState(rd.hardState);
        s.append(rd.entries);
        out.push(...rd.messages);
        n.advance();
      }
      return out;
    },
  };
}

/** A single-node group's loop after its election is durable and the no-op applied. */
function singleLeader(): Harness {
  const h = harness(['1']);
  h.node.campaign();
  h.loop.schedule();
  h.clock.run();
  h.storage.complete();
  expect(h.applied.map((e) => e.index)).toEqual([1]);
  h.events.length = 0;
  return h;
}

/** A two-node group's loop whose node '1' leads, with its first save (the no-op) still in flight. */
function twoNodeLeader(): Harness & { peer: ReturnType<typeof peer> } {
  const h = harness(['1', '2']);
  const p = peer();
  h.node.campaign();
  h.loop.schedule();
  h.clock.run();
  h.storage.complete(); // the candidate's term and vote
  h.deliver(p.deliver(h.sent.splice(0))); // the vote
  h.clock.run();
  expect(h.node.status().raftState).toBe('StateLeader');
  expect(h.storage.pending.map((s) => s.entries.map((e) => e.index))).toEqual([[1]]);
  h.events.length = 0;
  return Object.assign(h, { peer: p });
}

describe('ReadyLoop', () => {
  describe('what leaves before the save completes', () => {
    it("a candidate's MsgVote waits for its term and vote to be durable", () => {
      const h = harness(['1', '2']);
      h.node.campaign();
      h.loop.schedule();
      h.clock.run();
      expect(h.storage.saves.map((s) => s.hardState)).toEqual([{ term: 1, vote: '1', commit: 0 }]);
      expect(h.sent).toEqual([]);
      h.storage.complete();
      expect(types(h.sent)).toBe('MsgVote');
      expect(h.events).toEqual(['soft StateCandidate', 'save -', 'durable', 'send MsgVote', 'advance']);
    });

    it("the leader's MsgApp is sent before its entries are durable", () => {
      const h = harness(['1', '2']);
      const p = peer();
      h.node.campaign();
      h.loop.schedule();
      h.clock.run();
      h.storage.complete();
      h.events.length = 0;
      h.sent.length = 0;
      h.deliver(p.deliver([newMessage(T.MsgVote, '2', '1', 1)].map((m) => ({ ...m, index: 0, logTerm: 0 }))));
      h.clock.run();
      expect(types(h.sent)).toBe('MsgApp');
      expect(h.sent[0].entries?.map((e) => e.index)).toEqual([1]);
      expect(h.storage.pending).toHaveLength(1);
      expect(h.events).toEqual(['soft StateLeader', 'send MsgApp', 'save 1']);
      h.storage.complete();
      expect(h.events.slice(3)).toEqual(['durable', 'advance']);
    });

    it("the leader's MsgHeartbeat is sent before the save of the same Ready completes", () => {
      const h = twoNodeLeader();
      h.node.tick(); // heartbeat due
      h.node.propose(new Uint8Array([1]));
      h.loop.schedule();
      h.clock.run();
      h.storage.complete(); // the no-op; the next Ready holds entry 2 and the heartbeat
      expect(h.storage.pending.map((s) => s.entries.map((e) => e.index))).toEqual([[2]]);
      expect(h.events).toEqual(['durable', 'advance', 'send MsgHeartbeat', 'save 2']);
    });

    it.each([
      {
        name: 'a vote response',
        input: () => ({ ...newMessage(T.MsgVote, '1', '2', 1), index: 0, logTerm: 0 }),
        want: 'MsgVoteResp',
      },
      {
        name: 'an append response',
        input: () => ({
          ...newMessage(T.MsgApp, '1', '2', 1),
          index: 0,
          logTerm: 0,
          entries: [{ index: 1, term: 1, type: 0, data: new Uint8Array(0) }],
        }),
        want: 'MsgAppResp',
      },
    ])('$name is sent only after the save completes', ({ input, want }) => {
      const h = harness(['1', '2']);
      h.deliver([input() as Message]);
      h.clock.run();
      expect(h.storage.pending).toHaveLength(1);
      expect(h.sent).toEqual([]);
      h.storage.complete();
      expect(types(h.sent)).toBe(want);
      expect(h.sent[0].reject).toBe(false);
      expect(h.events.indexOf(`send ${want}`)).toBeGreaterThan(h.events.indexOf('durable'));
      expect(h.events.indexOf(`send ${want}`)).toBeLessThan(h.events.indexOf('advance'));
    });
  });

  it('committed entries are applied only after the save of their Ready completes, then advance()', () => {
    const h = twoNodeLeader();
    // While the no-op's save is in flight: the follower acknowledges it, and a new entry is proposed.
    h.deliver(h.peer.deliver(h.sent.splice(0)));
    h.node.propose(new Uint8Array([2]));
    h.loop.schedule();
    h.clock.run();
    expect(h.applied).toEqual([]);
    h.storage.complete(); // the no-op is durable here: it commits; the next Ready also holds entry 2
    const rd = h.readies[h.readies.length - 1];
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1]);
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(h.applied).toEqual([]);
    expect(h.storage.pending).toHaveLength(1);
    h.storage.complete();
    expect(h.applied.map((e) => e.index)).toEqual([1]);
    expect(h.events.slice(h.events.lastIndexOf('durable'))).toEqual(['durable', 'apply 1', 'advance']);
  });

  describe('a Ready carrying the leader snapshot (InstallSnapshot)', () => {
    const snapshot: Snapshot = { metadata: { index: 5, term: 1, confState: { voters: ['1', '2'] } }, data: new Uint8Array(0) };
    function installing(): Harness {
      const h = harness(['1', '2']);
      h.deliver([{ ...newMessage(T.MsgSnap, '1', '2', 1), snapshot }]);
      h.clock.run();
      return h;
    }

    it('installs, then saves, then answers, then restores the state machine, then advances; busy throughout', () => {
      const h = installing();
      expect(h.readies[0].snapshot?.metadata.index).toBe(5);
      expect(h.events).toEqual(['soft StateFollower', 'install 5']);
      h.loop.schedule();
      h.clock.run();
      expect(h.storage.saves).toHaveLength(0); // no save before the install is durable
      h.storage.completeInstall();
      expect(h.events.slice(-2)).toEqual(['installed', 'save -']);
      h.storage.complete();
      expect(h.events.slice(-3)).toEqual(['durable', 'send MsgAppResp', 'restore 5']);
      expect(h.loop.busy).toBe(true);
      h.loop.schedule();
      h.clock.run();
      expect(h.readies).toHaveLength(1); // nothing else until the state machine holds the snapshot
      h.restores[0].done();
      expect(h.events.slice(-1)).toEqual(['advance']);
      expect(h.loop.busy).toBe(false);
      expect(h.node.status().applied).toBe(5);
    });

    it('a failed install stops the loop before anything is saved or sent', () => {
      const h = installing();
      h.storage.completeInstall(new Error('no received file'));
      expect(h.failures.map((e) => e.message)).toEqual(['no received file']);
      expect(h.storage.saves).toHaveLength(0);
      expect(h.sent).toEqual([]);
    });

    it('a failed restore stops the loop without advancing', () => {
      const h = installing();
      h.storage.completeInstall();
      h.storage.complete();
      h.restores[0].done(new Error('bad chunk'));
      expect(h.failures.map((e) => e.message)).toEqual(['restoring snapshot 5: bad chunk']);
      expect(h.events).not.toContain('advance');
    });
  });

  it('takes no second Ready while a save is in flight, whatever arrives meanwhile', () => {
    const h = singleLeader();
    h.node.propose(new Uint8Array([1]));
    h.loop.schedule();
    h.clock.run();
    expect(h.storage.saves).toHaveLength(2);
    const readies = h.readies.length;
    const beforeReady = (h.handler.beforeReady as jest.Mock).mock.calls.length;
    for (let k = 0; k < 5; k++) {
      h.node.propose(new Uint8Array([10 + k]));
      h.node.tick();
      h.loop.schedule();
      h.clock.run();
    }
    expect(h.storage.saves).toHaveLength(2);
    expect(h.readies).toHaveLength(readies);
    expect((h.handler.beforeReady as jest.Mock).mock.calls.length).toBe(beforeReady);
    expect(h.loop.busy).toBe(true);
    // Once durable, everything that accumulated goes into one Ready and one save (group commit).
    h.storage.complete();
    expect(h.storage.saves).toHaveLength(3);
    expect(h.storage.saves[2].entries.map((e) => e.index)).toEqual([3, 4, 5, 6, 7]);
  });

  it('the Ready that commits the leader\'s configuration change is saved, and sends nothing before it is durable', () => {
    const h = twoNodeLeader();
    h.storage.complete(); // the no-op
    h.deliver(h.peer.deliver(h.sent.splice(0))); // acknowledged: committed (a commit-only Ready, not saved)
    h.clock.run();
    const at = h.node.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: '2' });
    h.loop.schedule();
    h.clock.run();
    h.storage.complete(); // the change's entry
    h.events.length = 0;
    h.deliver(h.peer.deliver(h.sent.splice(0))); // the peer's acknowledgement: the change commits
    h.clock.run();
    const committing = h.readies.find((rd) => rd.commitsConfChange);
    expect(committing?.hardState?.commit).toBe(at.index);
    expect(h.events[0]).toBe('save -');
    expect(h.events).not.toContain('durable');
    expect(h.sent).toEqual([]);
    h.storage.complete();
    expect(h.events.slice(1, 2)).toEqual(['durable']);
    expect(h.applied.map((e) => e.index)).toContain(at.index);
  });

  it("a commit-only Ready is not saved; its hard state rides along with the next save, and only that one", () => {
    const h = harness(['1']);
    h.node.campaign();
    h.loop.schedule();
    h.clock.run();
    h.storage.complete();
    // The Ready that commits the no-op is commit-only: applied without a save.
    expect(h.storage.saves).toHaveLength(1);
    expect(h.readies[1]).toMatchObject({ mustSync: false, hardState: { term: 1, vote: '1', commit: 1 } });
    expect(h.applied.map((e) => e.index)).toEqual([1]);
    expect(h.loop.busy).toBe(false);
    h.node.propose(new Uint8Array([1]));
    h.loop.schedule();
    h.clock.run();
    expect(h.readies[2].hardState).toBeUndefined();
    expect(h.storage.saves[1]).toMatchObject({ hardState: { term: 1, vote: '1', commit: 1 } });
    expect(h.storage.saves[1].entries.map((e) => e.index)).toEqual([2]);
    h.storage.complete();
    expect(h.applied.map((e) => e.index)).toEqual([1, 2]);
    expect(h.storage.saves).toHaveLength(2);
  });

  it('a save carries no hard state when nothing changed since the last one was saved', () => {
    const h = twoNodeLeader();
    h.deliver(h.peer.deliver(h.sent.splice(0)));
    h.clock.run();
    h.storage.complete(); // no-op durable: commit 1 is commit-only (not saved)
    expect(h.node.status().commit).toBe(1);
    expect(h.storage.saves).toHaveLength(2);
    h.node.propose(new Uint8Array([1]));
    h.loop.schedule();
    h.clock.run();
    expect(h.storage.saves[2]).toMatchObject({ hardState: { term: 1, vote: '1', commit: 1 } });
    h.storage.complete();
    h.node.propose(new Uint8Array([2]));
    h.loop.schedule();
    h.clock.run();
    expect(h.storage.saves).toHaveLength(4);
    expect(h.storage.saves[3].hardState).toBeUndefined();
    expect(h.storage.saves[3].entries.map((e) => e.index)).toEqual([3]);
  });

  it('read states are handed over after the Ready is durable and its entries applied', () => {
    const h = singleLeader();
    h.node.readIndex('r1');
    h.node.propose(new Uint8Array([1]));
    h.loop.schedule();
    h.clock.run();
    expect(h.readStates).toEqual([]);
    h.storage.complete();
    expect(h.readStates).toEqual([{ index: 1, requestCtx: 'r1' }]);
    expect(h.events).toEqual(['save 2', 'durable', 'read r1@1', 'advance', 'apply 2', 'advance']);
  });

  describe('failures', () => {
    it('a failed save calls fail once and nothing further runs', () => {
      const h = harness(['1']);
      h.node.campaign();
      h.loop.schedule();
      h.clock.run();
      const disk = new Error('disk on fire');
      h.storage.complete(disk);
      expect(h.failures).toEqual([disk]);
      expect(h.events).toEqual(['soft StateLeader', 'save 1', 'failed disk on fire', 'fail disk on fire']);
      h.node.propose(new Uint8Array([1]));
      h.loop.schedule();
      expect(h.clock.deferred).toHaveLength(0);
      h.clock.run();
      expect(h.storage.saves).toHaveLength(1);
      expect(h.failures).toHaveLength(1);
      expect(h.sent).toEqual([]);
      expect(h.applied).toEqual([]);
      expect(h.loop.busy).toBe(false);
    });

    it('an error thrown while finishing a Ready (entries not in storage at advance) calls fail once and stops', () => {
      const h = harness(['1']);
      h.node.campaign();
      h.loop.schedule();
      h.clock.run();
      h.storage.complete(undefined, { append: false });
      expect(h.failures).toHaveLength(1);
      expect(h.failures[0].name).toBe('ReadyProtocolError');
      h.loop.schedule();
      h.clock.run();
      expect(h.readies).toHaveLength(1);
      expect(h.failures).toHaveLength(1);
    });

    it('an error thrown by the handler in a turn calls fail once and stops', () => {
      const h = twoNodeLeader();
      h.storage.complete();
      h.handler.send = () => {
        throw new Error('transport broke');
      };
      h.node.tick();
      h.loop.schedule();
      h.clock.run();
      expect(h.failures.map((e) => e.message)).toEqual(['transport broke']);
      h.node.tick();
      h.loop.schedule();
      h.clock.run();
      expect(h.failures).toHaveLength(1);
    });
  });

  describe('stop', () => {
    it('a save completing after stop() does nothing', () => {
      const h = harness(['1']);
      h.node.campaign();
      h.loop.schedule();
      h.clock.run();
      h.loop.stop();
      expect(h.loop.busy).toBe(false);
      h.storage.complete();
      expect(h.events).toEqual(['soft StateLeader', 'save 1', 'durable']);
      expect(h.applied).toEqual([]);
      expect(h.failures).toEqual([]);
    });

    it('a failed save after stop() reports nothing', () => {
      const h = harness(['1']);
      h.node.campaign();
      h.loop.schedule();
      h.clock.run();
      h.loop.stop();
      h.storage.complete(new Error('late failure'));
      expect(h.failures).toEqual([]);
    });

    it('no turn runs after stop(), even one already deferred', () => {
      const h = harness(['1']);
      h.node.campaign();
      h.loop.schedule();
      h.loop.stop();
      h.loop.schedule();
      h.clock.run();
      expect(h.readies).toEqual([]);
      expect(h.storage.saves).toEqual([]);
    });
  });

  describe('whenIdle', () => {
    it('runs at once when no save is in flight', () => {
      const h = singleLeader();
      const fn = jest.fn();
      h.loop.whenIdle(fn);
      expect(fn).toHaveBeenCalledTimes(1);
    });

    it('waits for the save in flight, runs once, before the next turn', () => {
      const h = singleLeader();
      h.node.propose(new Uint8Array([1]));
      h.loop.schedule();
      h.clock.run();
      const order: string[] = [];
      h.loop.whenIdle(() => order.push(`idle (applied ${h.applied.length})`));
      h.loop.whenIdle(() => order.push('idle 2'));
      expect(order).toEqual([]);
      h.storage.complete();
      expect(order).toEqual(['idle (applied 1)', 'idle 2']);
      h.node.propose(new Uint8Array([2]));
      h.loop.schedule();
      h.clock.run();
      h.storage.complete();
      expect(order).toHaveLength(2);
    });

    it('runs when the loop stops instead', () => {
      const h = singleLeader();
      h.node.propose(new Uint8Array([1]));
      h.loop.schedule();
      h.clock.run();
      const fn = jest.fn();
      h.loop.whenIdle(fn);
      h.loop.stop();
      expect(fn).toHaveBeenCalledTimes(1);
      h.storage.complete();
      expect(fn).toHaveBeenCalledTimes(1);
    });
  });

  it('schedule() is idempotent until the deferred turn runs', () => {
    const h = harness(['1']);
    h.node.campaign();
    h.loop.schedule();
    h.loop.schedule();
    h.loop.schedule();
    expect(h.clock.deferred).toHaveLength(1);
    h.clock.run();
    expect(h.readies).toHaveLength(1);
    h.loop.schedule();
    h.loop.schedule();
    expect(h.clock.deferred).toHaveLength(1);
  });

  it('a turn with nothing to do asks the owner for batched input, takes no Ready', () => {
    const h = harness(['1', '2']);
    h.loop.schedule();
    h.clock.run();
    expect(h.handler.beforeReady).toHaveBeenCalledTimes(1);
    expect(h.readies).toEqual([]);
    expect(h.storage.saves).toEqual([]);
  });
});

/**
 * The Ready loop on a disk that refuses writes (StorageFullError: nothing kept, storage usable), on a real
 * RawNode and a storage that refuses a given number of writes before taking them:
 * - the Ready is held: nothing of it is sent (but what left before the save), applied or advanced, and no
 *   other Ready is taken, until the same save goes through;
 * - the save is made again on the clock after 100 ms, doubling up to 1 s;
 * - the handler hears onStorageFull once when the refusals start and onStorageRecovered once at the end;
 * - an install refused the same way is retried before the save;
 * - stop() cancels the retry; whenIdle does not wait for space; any other error is still fatal.
 */
import { MemoryStorage } from './core/memory-storage';
import { newMessage } from './core/message';
import { RawNode } from './core/raw-node';
import { seededRandom } from '../../../test/support/raft-test-util';
import { Entry, HardState, Message, MessageType as T, NodeId, Snapshot } from './core/types';
import { StorageFullError } from './errors';
import { Clock, RaftStorage, SaveCallback, Timer } from './ports';
import { ReadyHandler, ReadyLoop, STORAGE_RETRY_FIRST_MS, STORAGE_RETRY_MAX_MS } from './ready-loop';

/** Virtual time: deferred turns run at the current time, timers when time reaches them. */
class VirtualClock implements Clock {
  time = 0;
  private deferred: Array<() => void> = [];
  private timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  now(): number {
    return this.time;
  }
  every(): Timer {
    throw new Error('the loop sets no periodic timer');
  }
  after(ms: number, fn: () => void): Timer {
    const t = { at: this.time + ms, fn, cancelled: false };
    this.timers.push(t);
    return { cancel: () => (t.cancelled = true) };
  }
  defer(fn: () => void): void {
    this.deferred.push(fn);
  }
  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
  /** Runs the next timer at its time, and nothing it defers (a write's completion stays pending). */
  fireNextTimer(): void {
    const next = this.timers.filter((t) => !t.cancelled).sort((a, b) => a.at - b.at)[0];
    this.timers = this.timers.filter((t) => t !== next);
    this.time = next.at;
    next.fn();
  }
  /** Runs what is due now, then moves time forward `ms`, running timers (and what they defer) as they fall due. */
  advance(ms = 0): void {
    const end = this.time + ms;
    for (;;) {
      while (this.deferred.length > 0) this.deferred.shift()!();
      const due = this.timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.fn();
    }
    this.time = end;
  }
}

const full = () => new StorageFullError("ENOSPC: no space left on device, write '/data/wal/00000001.wal'", 'ENOSPC');

/** A storage that refuses the first `refuseSaves` saves and `refuseInstalls` installs, then takes them. */
class RefusingStorage implements RaftStorage {
  readonly storage = new MemoryStorage();
  readonly meta = undefined;
  readonly saves: Array<{ at: number; hardState?: HardState; entries: Entry[] }> = [];
  readonly installs: number[] = [];
  /** What the next completions report, in order (an error, or undefined: durable); then durable. */
  saveOutcomes: Array<Error | undefined> = [];
  installOutcomes: Array<Error | undefined> = [];
  constructor(private readonly clock: VirtualClock) {}
  save(hardState: HardState | undefined, entries: Entry[], done: SaveCallback): void {
    this.saves.push({ at: this.clock.now(), hardState, entries });
    const error = this.saveOutcomes.shift();
    this.clock.defer(() => {
      if (!error) {
        if (hardState) this.storage.setHardState(hardState);
        this.storage.append(entries);
      }
      done(error);
    });
  }
  installSnapshot(snapshot: Snapshot, done: SaveCallback): void {
    this.installs.push(this.clock.now());
    const error = this.installOutcomes.shift();
    this.clock.defer(() => {
      if (!error) this.storage.applySnapshot(snapshot);
      done(error);
    });
  }
  async setMeta(): Promise<void> {}
  createSnapshot(): void {
    throw new Error('the loop takes no snapshot');
  }
  compact(): void {
    throw new Error('the loop compacts nothing');
  }
  snapshotContent(): Iterable<Uint8Array> {
    return [];
  }
}

function harness(peers: NodeId[]) {
  const clock = new VirtualClock();
  const storage = new RefusingStorage(clock);
  const node = new RawNode({ id: '1', peers, storage: storage.storage, electionTick: 10, heartbeatTick: 1, random: seededRandom(3), preVote: false, checkQuorum: false });
  const events: string[] = [];
  const sent: Message[] = [];
  const applied: number[] = [];
  let readies = 0;
  const handler: ReadyHandler = {
    beforeReady: () => undefined,
    onSoftState: () => undefined,
    send: (ms) => {
      sent.push(...ms);
      events.push(`send ${ms.map((m) => T[m.type]).join(',')}`);
    },
    apply: (es) => {
      applied.push(...es.map((e) => e.index));
      events.push(`apply ${es.map((e) => e.index).join(',')}`);
    },
    restore: (snapshot, done) => {
      events.push(`restore ${snapshot.metadata.index}`);
      done();
    },
    onReadStates: () => undefined,
    onStorageFull: (error) => events.push(`full ${error.code}`),
    onStorageRecovered: () => events.push('recovered'),
    fail: (error) => events.push(`fail ${error.message}`),
  };
  const loop = new ReadyLoop(node, storage, clock, handler, { onReady: () => readies++ });
  return {
    clock,
    storage,
    node,
    loop,
    events,
    sent,
    applied,
    get readies() {
      return readies;
    },
  };
}

/** A single-node group whose election and no-op are durable and applied. */
function singleLeader() {
  const h = harness(['1']);
  h.node.campaign();
  h.loop.schedule();
  h.clock.advance();
  expect(h.applied).toEqual([1]);
  h.events.length = 0;
  h.storage.saves.length = 0;
  return h;
}

describe('ReadyLoop on a full disk', () => {
  it('holds the Ready, makes the same save again after 100 ms, 200 ms..., then applies and advances', () => {
    const h = singleLeader();
    h.storage.saveOutcomes = [full(), full(), full()];
    h.node.propose(new Uint8Array([7]));
    h.loop.schedule();
    h.clock.advance();
    expect(h.events).toEqual(['full ENOSPC']);
    expect(h.loop.storageFull).toBe(true);
    expect(h.loop.busy).toBe(true);

    // Input arriving meanwhile goes into the core, but no second Ready is taken while the first is held.
    const readies = h.readies;
    h.node.propose(new Uint8Array([8]));
    h.loop.schedule();
    h.clock.advance(STORAGE_RETRY_FIRST_MS - 1);
    expect(h.storage.saves).toHaveLength(1);
    expect(h.readies).toBe(readies);

    h.clock.advance(1000);
    // Four attempts of the held save, then at once the next Ready's.
    expect(h.storage.saves.map((s) => s.at)).toEqual([0, 100, 300, 700, 700]);
    // Each attempt is exactly the first save: the same hard state and entries.
    for (const s of h.storage.saves.slice(0, 4)) expect(s).toEqual({ ...h.storage.saves[0], at: s.at });
    expect(h.storage.saves[4].entries.map((e) => e.index)).toEqual([3]);
    expect(h.storage.saves[0].entries.map((e) => e.index)).toEqual([2]);
    // One onStorageFull for the whole episode, one onStorageRecovered, then the Ready goes on as usual
    // (entry 2 applied), and the next one (entry 3) is saved and applied at once.
    expect(h.events).toEqual(['full ENOSPC', 'recovered', 'apply 2', 'apply 3']);
    expect(h.applied).toEqual([1, 2, 3]);
    expect(h.loop.storageFull).toBe(false);
    expect(h.loop.busy).toBe(false);
  });

  it('waits at most 1 s between attempts', () => {
    const h = singleLeader();
    h.storage.saveOutcomes = Array.from({ length: 7 }, full);
    h.node.propose(new Uint8Array([7]));
    h.loop.schedule();
    h.clock.advance(10_000);
    const at = h.storage.saves.map((s) => s.at);
    expect(at.slice(1).map((t, k) => t - at[k])).toEqual([100, 200, 400, 800, STORAGE_RETRY_MAX_MS, STORAGE_RETRY_MAX_MS, STORAGE_RETRY_MAX_MS]);
    expect(h.events).toEqual(['full ENOSPC', 'recovered', 'apply 2']);
  });

  it("sends a candidate's MsgVote only once its term and vote were made durable at last", () => {
    const h = harness(['1', '2']);
    h.storage.saveOutcomes = [full()];
    h.node.campaign();
    h.loop.schedule();
    h.clock.advance(99);
    expect(h.sent).toEqual([]);
    expect(h.events).toEqual(['full ENOSPC']);
    h.clock.advance(1);
    expect(h.events).toEqual(['full ENOSPC', 'recovered', 'send MsgVote']);
    expect(h.storage.storage.initialState().hardState).toMatchObject({ term: 1, vote: '1' });
  });

  it("the leader's MsgApp left before the save: only what waits for durability is held", () => {
    const h = harness(['1', '2']);
    h.node.campaign();
    h.loop.schedule();
    h.clock.advance();
    h.node.step({ ...newMessage(T.MsgVoteResp, '1', '2', 1) });
    h.storage.saveOutcomes = [full()];
    h.loop.schedule();
    h.clock.advance();
    // Elected: the no-op's MsgApp went out before its save, which the disk refused.
    expect(h.events).toEqual(['send MsgVote', 'send MsgApp', 'full ENOSPC']);
    h.clock.advance(STORAGE_RETRY_FIRST_MS);
    expect(h.events.slice(3)).toEqual(['recovered']);
    expect(h.storage.storage.lastIndex()).toBe(1);
  });

  it('retries a refused install before saving, then restores and advances', () => {
    const h = harness(['1', '2']);
    const snapshot: Snapshot = { metadata: { index: 5, term: 1, confState: { voters: ['1', '2'] } }, data: new Uint8Array(0) };
    h.storage.installOutcomes = [full(), full()];
    h.node.step({ ...newMessage(T.MsgSnap, '1', '2', 1), snapshot });
    h.loop.schedule();
    h.clock.advance();
    expect(h.storage.installs).toEqual([0]);
    expect(h.storage.saves).toEqual([]);
    h.clock.advance(1000);
    expect(h.storage.installs).toEqual([0, 100, 300]);
    expect(h.storage.saves.map((s) => s.at)).toEqual([300]);
    expect(h.events).toEqual(['full ENOSPC', 'recovered', 'send MsgAppResp', 'restore 5']);
    expect(h.node.status().applied).toBe(5);
  });

  it('stop() cancels the retry; whenIdle does not wait for space to return', () => {
    const h = singleLeader();
    h.storage.saveOutcomes = [full()];
    h.node.propose(new Uint8Array([7]));
    h.loop.schedule();
    h.clock.advance();
    const idle = jest.fn();
    h.loop.whenIdle(idle);
    expect(idle).toHaveBeenCalledTimes(1);
    h.loop.stop();
    expect(h.clock.pendingTimers).toBe(0);
    h.clock.advance(10_000);
    expect(h.storage.saves).toHaveLength(1);
    expect(h.events).toEqual(['full ENOSPC']);
  });

  it('whenIdle called during a retry in flight runs when that attempt is refused again', () => {
    const h = singleLeader();
    h.storage.saveOutcomes = [full(), full()];
    h.node.propose(new Uint8Array([7]));
    h.loop.schedule();
    h.clock.advance();
    h.clock.fireNextTimer();
    const idle = jest.fn();
    expect(h.storage.saves).toHaveLength(2);
    h.loop.whenIdle(idle);
    expect(idle).not.toHaveBeenCalled();
    h.clock.advance();
    expect(idle).toHaveBeenCalledTimes(1);
  });

  it('any other error is still fatal, even after refusals', () => {
    const h = singleLeader();
    h.storage.saveOutcomes = [full(), new Error('fsync failed: EIO')];
    h.node.propose(new Uint8Array([7]));
    h.loop.schedule();
    h.clock.advance(1000);
    expect(h.events).toEqual(['full ENOSPC', 'fail fsync failed: EIO']);
    expect(h.storage.saves).toHaveLength(2);
    expect(h.clock.pendingTimers).toBe(0);
    expect(h.applied).toEqual([1]);
  });

  it('recognizes a StorageFullError from another copy of the module (by name and flag)', () => {
    const h = singleLeader();
    const foreign = Object.assign(new Error('ENOSPC'), { name: 'StorageFullError', retryable: true, code: 'EDQUOT' });
    h.storage.saveOutcomes = [foreign];
    h.node.propose(new Uint8Array([7]));
    h.loop.schedule();
    h.clock.advance(STORAGE_RETRY_FIRST_MS);
    expect(h.events).toEqual(['full EDQUOT', 'recovered', 'apply 2']);
  });
});

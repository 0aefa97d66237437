/**
 * Fakes for the node loop's unit tests (RaftNode, and what it is made of): a virtual clock (timers and
 * deferred turns run by the test, no real time), a MemoryStorage-backed RaftStorage whose saves complete on
 * a deferred turn (or fail, or wait, or are refused for a full disk), a transport that records what is sent,
 * and a state machine that records what it applies. Test code only: nothing in the library imports it.
 */
import { MemoryStorage } from '../core/memory-storage';
import { Storage } from '../core/storage';
import { Entry, HardState, Message, Snapshot, SnapshotMetadata } from '../core/types';
import { Clock, MessageReceiver, PeerTransport, RaftStorage, SaveCallback, StateMachine, StateMachineView, Timer } from '../ports';

export interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  period?: number;
}

/** Virtual time: timers fire when the test advances time; deferred functions run after each step. */
export class VirtualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Set<Scheduled>();
  private readonly deferred: Array<() => void> = [];

  now(): number {
    return this.t;
  }
  every(ms: number, fn: () => void): Timer {
    return this.add({ at: this.t + ms, seq: this.seq++, fn, period: ms });
  }
  after(ms: number, fn: () => void): Timer {
    return this.add({ at: this.t + ms, seq: this.seq++, fn });
  }
  defer(fn: () => void): void {
    this.deferred.push(fn);
  }
  get timerCount(): number {
    return this.timers.size;
  }
  /** Runs deferred functions (and those they defer) until none is left. */
  runDeferred(): void {
    for (let n = 0; this.deferred.length > 0; n++) {
      if (n > 100_000) throw new Error('deferred work never settles');
      this.deferred.shift()!();
    }
  }
  /** Moves time forward by `ms`, firing due timers in order, with deferred work run after each. */
  advance(ms: number): void {
    const end = this.t + ms;
    this.runDeferred();
    for (;;) {
      let next: Scheduled | undefined;
      for (const s of this.timers) if (s.at <= end && (!next || s.at < next.at || (s.at === next.at && s.seq < next.seq))) next = s;
      if (!next) break;
      this.t = next.at;
      if (next.period) {
        next.at += next.period;
        next.seq = this.seq++;
      } else {
        this.timers.delete(next);
      }
      next.fn();
      this.runDeferred();
    }
    this.t = end;
  }
  private add(s: Scheduled): Timer {
    this.timers.add(s);
    return { cancel: () => this.timers.delete(s) };
  }
}

/** A Storage whose reads can be made to fail, as a corrupt log would. */
export class CorruptibleStorage implements Storage {
  corruption?: Error;
  constructor(private readonly mem: MemoryStorage) {}
  private check(): void {
    if (this.corruption) throw this.corruption;
  }
  initialState() {
    this.check();
    return this.mem.initialState();
  }
  entries(lo: number, hi: number, maxBytes?: number) {
    this.check();
    return this.mem.entries(lo, hi, maxBytes);
  }
  term(i: number) {
    this.check();
    return this.mem.term(i);
  }
  firstIndex() {
    this.check();
    return this.mem.firstIndex();
  }
  lastIndex() {
    this.check();
    return this.mem.lastIndex();
  }
  snapshot() {
    this.check();
    return this.mem.snapshot();
  }
}

/**
 * Saves complete on a deferred turn of the clock; `failNext` fails the next one, `hold` keeps them pending,
 * and while `diskFull` is set every save and install is refused with it, keeping nothing (a full disk).
 */
export class FakeRaftStorage implements RaftStorage {
  readonly mem = new MemoryStorage();
  readonly storage = new CorruptibleStorage(this.mem);
  meta: Record<string, unknown> | undefined;
  saves = 0;
  failNext?: Error;
  hold = false;
  diskFull?: Error;
  private readonly held: Array<() => void> = [];
  constructor(private readonly clock: VirtualClock) {}
  save(hardState: HardState | undefined, entries: Entry[], done: SaveCallback): void {
    this.saves++;
    const error = this.failNext;
    this.failNext = undefined;
    const complete = () => {
      if (error) return done(error);
      if (this.diskFull) return done(this.diskFull);
      if (hardState) this.mem.setHardState(hardState);
      this.mem.append(entries);
      done();
    };
    if (this.hold) this.held.push(complete);
    else this.clock.defer(complete);
  }
  /** Completes the held saves on the next deferred turn. */
  release(): void {
    this.hold = false;
    for (const c of this.held.splice(0)) this.clock.defer(c);
  }
  async setMeta(meta: Record<string, unknown>): Promise<void> {
    this.meta = meta;
  }
  /** Snapshots written, in order (metadata and content read from the view). */
  readonly snapshots: Array<{ metadata: SnapshotMetadata; content: Uint8Array[] }> = [];
  readonly compactions: number[] = [];
  readonly installs: Snapshot[] = [];
  failNextSnapshot?: Error;
  createSnapshot(metadata: SnapshotMetadata, view: StateMachineView, done: SaveCallback): void {
    const content = [...view.chunks()];
    const error = this.failNextSnapshot;
    this.failNextSnapshot = undefined;
    this.clock.defer(() => {
      if (error) return done(error);
      this.mem.createSnapshot(metadata.index, metadata.confState, content[0] ?? new Uint8Array(0));
      this.snapshots.push({ metadata, content });
      done();
    });
  }
  compact(index: number): void {
    this.compactions.push(index);
    this.mem.compact(index);
  }
  installSnapshot(snapshot: Snapshot, done: SaveCallback): void {
    this.clock.defer(() => {
      if (this.diskFull) return done(this.diskFull);
      this.mem.applySnapshot(snapshot);
      this.installs.push(snapshot);
      done();
    });
  }
  snapshotContent(): Iterable<Uint8Array> {
    return [this.mem.snapshot().data];
  }
}

export class RecordingTransport implements PeerTransport {
  readonly sent: Message[] = [];
  receiver?: MessageReceiver;
  unreachable?: (peer: string) => void;
  /** What setPeers() was last given. */
  peers = new Map<string, string>();
  listen(receiver: MessageReceiver): void {
    this.receiver = receiver;
  }
  send(messages: Message[]): void {
    this.sent.push(...messages);
  }
  onUnreachable(callback: (peer: string) => void): void {
    this.unreachable = callback;
  }
  setPeers(peers: ReadonlyMap<string, string>): void {
    this.peers = new Map(peers);
  }
  snapshotStatus?: (peer: string, failed: boolean) => void;
  onSnapshotStatus(callback: (peer: string, failed: boolean) => void): void {
    this.snapshotStatus = callback;
  }
  /** Delivers messages to the node as if they came from peers. */
  deliver(...messages: Message[]): void {
    this.receiver!(messages);
  }
}

/** Records what it applies; its state is the list of applied entries' data, which snapshots carry as JSON. */
export class RecordingStateMachine implements StateMachine {
  readonly applied: Entry[] = [];
  state: string[] = [];
  restores = 0;
  apply(entry: Entry): unknown {
    this.applied.push(entry);
    this.state.push(new TextDecoder().decode(entry.data));
    return `applied ${new TextDecoder().decode(entry.data)}@${entry.index}`;
  }
  snapshot(): StateMachineView {
    const frozen = [...this.state];
    return { chunks: () => [new TextEncoder().encode(JSON.stringify(frozen))], release: () => undefined };
  }
  restore(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, done: (error?: Error) => void): void {
    const [chunk] = [...(chunks as Iterable<Uint8Array>)];
    this.state = JSON.parse(new TextDecoder().decode(chunk)) as string[];
    this.restores++;
    done();
  }
}

export type Outcome<V> = { value: V } | { error: Error };
/** Attaches handlers at once (no unhandled rejection), to be awaited later. */
export function outcome<V>(p: Promise<V>): Promise<Outcome<V>> {
  return p.then(
    (value) => ({ value }),
    (error: Error) => ({ error }),
  );
}

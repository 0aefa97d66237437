import { Injectable, Logger } from '@nestjs/common';
import { Entry, EntryType, StateMachine, StateMachineView } from '@app/consensus';
import { decodeCommand, KvCommand } from './kv-command';
import { encodeKvSnapshot, KvSnapshotDecoder } from './kv-snapshot-format';
import { KvChangeObserver } from './watch/kv-change';

/** What applying one command did, handed back to the client that proposed it. */
export interface ApplyResult {
  /** Whether the key existed before the command. */
  existed: boolean;
  /** False when the entry was not a command this version understands (it is skipped on every node alike). */
  valid: boolean;
}

/** Marks, in a delta, a key deleted since the base was frozen. */
const TOMBSTONE: unique symbol = Symbol('deleted');
type Delta = Map<string, string | typeof TOMBSTONE>;

/** A restored map and its dataBytes (counted while decoding, so that a restore never walks the map twice). */
interface Decoded {
  map: Map<string, string>;
  dataBytes: number;
}

/** The views taken of one base map; restore() starts a new generation, leaving older views their base. */
interface Generation {
  views: number;
}

/**
 * The replicated map. Every node applies the same committed commands in the same order, so every node's
 * map is the same at the same applied index. Applying is deterministic and never throws: a malformed entry
 * is skipped identically everywhere.
 *
 * Snapshots without a copy: while no view is alive, the state is one Map (`base`) and every call is one Map
 * operation on it. snapshot() freezes `base` and routes later writes into `delta` (key → value, or a
 * tombstone for a key of `base` deleted since); reads look in `delta`, then `base`. When the last view is
 * released, `delta` is folded into `base` (cost: the keys written meanwhile). A view taken while another is
 * alive and writes happened since shares the same `base` and freezes the current `delta` as its overlay; the
 * live state continues in a copy of it (cost: the keys written since the base was frozen, not the map).
 */
@Injectable()
export class KvStateMachine implements StateMachine {
  private readonly logger = new Logger('KvStateMachine');
  private base = new Map<string, string>();
  /** Writes since `base` was frozen; undefined exactly when no view of the current generation is alive. */
  private delta: Delta | undefined;
  /** The overlay of the newest view when `delta` has not been written since (it is then a copy of it). */
  private sharedOverlay: Delta | undefined;
  /** The live size while `delta` is defined (`base.size` otherwise). */
  private liveSize = 0;
  private generation: Generation = { views: 0 };
  /** Counts restore() calls: a restore finishing after a newer one started must not swap its map in. */
  private restores = 0;
  private liveDataBytes = 0;
  /** Told of every change applied and every restore (the watch hub); set before the first apply. */
  events?: KvChangeObserver;

  /** Applies a committed entry; a no-op (empty data, or not a Normal entry) changes nothing and returns undefined. */
  apply(entry: Entry): ApplyResult | undefined {
    if (entry.type !== EntryType.Normal || entry.data.length === 0) return undefined;
    const command = decodeCommand(entry.data);
    if (!command) {
      this.logger.warn(`skipping entry ${entry.index} (term ${entry.term}): not a KV command`);
      return { existed: false, valid: false };
    }
    const delta = this.delta;
    if (delta === undefined) {
      const previous = this.base.get(command.key);
      if (command.op === 'put') this.base.set(command.key, command.value);
      else this.base.delete(command.key);
      this.countData(command, previous);
      this.notify(command, entry.index, previous !== undefined);
      return { existed: previous !== undefined, valid: true };
    }
    const { key } = command;
    const previous = this.get(key);
    const existed = previous !== undefined;
    this.countData(command, previous);
    this.sharedOverlay = undefined;
    if (command.op === 'put') {
      delta.set(key, command.value);
      if (!existed) this.liveSize++;
    } else if (existed) {
      // A key only in the delta simply leaves it; a key of the base needs a tombstone to hide it.
      if (this.base.has(key)) delta.set(key, TOMBSTONE);
      else delta.delete(key);
      this.liveSize--;
    }
    this.notify(command, entry.index, existed);
    return { existed, valid: true };
  }

  get(key: string): string | undefined {
    const delta = this.delta;
    if (delta !== undefined) {
      const value = delta.get(key);
      if (value !== undefined) return value === TOMBSTONE ? undefined : value;
    }
    return this.base.get(key);
  }

  has(key: string): boolean {
    const delta = this.delta;
    if (delta !== undefined) {
      const value = delta.get(key);
      if (value !== undefined) return value !== TOMBSTONE;
    }
    return this.base.has(key);
  }

  get size(): number {
    return this.delta === undefined ? this.base.size : this.liveSize;
  }

  /**
   * The map's logical size: the UTF-8 bytes of every key plus its value, as of the last entry applied (or
   * snapshot restored). Kept up to date by apply() and restore(), so reading it costs nothing.
   */
  get dataBytes(): number {
    return this.liveDataBytes;
  }

  /**
   * How many bytes `put(key, value)` would add to dataBytes if applied now: positive for a new key or a
   * longer value, zero or negative otherwise. Costs a lookup and the two lengths, never a scan of the map.
   */
  putGrowth(key: string, value: string): number {
    const previous = this.get(key);
    const valueBytes = Buffer.byteLength(value, 'utf8');
    if (previous === undefined) return Buffer.byteLength(key, 'utf8') + valueBytes;
    return valueBytes - Buffer.byteLength(previous, 'utf8');
  }

  /** The live pairs (for tests and tools): iterate synchronously, without apply() or restore() in between. */
  entries(): Generator<[string, string], void, undefined> {
    return overlaid(this.base, this.delta, () => false);
  }

  /**
   * A point-in-time view of the map as of the last entry applied. O(1) with no other view alive, or with no
   * write since the newest view; otherwise O(keys written since the base was frozen, that is since views
   * have been alive without a break). The caller must release() it: until the last view is released, writes
   * go to the delta.
   */
  snapshot(): KvSnapshotView {
    let overlay: Delta | undefined;
    if (this.delta === undefined) {
      this.delta = new Map();
      this.liveSize = this.base.size;
    } else if (this.delta.size > 0) {
      overlay = this.sharedOverlay;
      if (overlay === undefined) {
        overlay = this.delta;
        this.delta = new Map(overlay);
        this.sharedOverlay = overlay;
      }
    }
    const generation = this.generation;
    generation.views++;
    return new KvSnapshotView(this.base, overlay, this.liveSize, () => this.release(generation));
  }

  /**
   * Replaces the map with a snapshot's content. A synchronous iterable is restored before this returns; an
   * async one is read a chunk per turn of the event loop. The new map is swapped in only once every chunk has
   * decoded; on any error (malformed content, a failing iterable, a newer restore started meanwhile) the map
   * is left as it was and `done(error)` is called. Views alive at the swap keep showing what they showed:
   * their frozen maps are no longer the machine's, so nothing writes to them, and releasing them later does
   * not touch the restored map. apply() must not be called while an async restore runs (its write would be
   * lost at the swap): the consensus loop does not.
   */
  restore(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, done: (error?: Error) => void): void {
    const restore = ++this.restores;
    if (Symbol.iterator in chunks) {
      let decoded: Decoded;
      try {
        const decoder = new KvSnapshotDecoder();
        for (const chunk of chunks) decoder.push(chunk);
        decoded = { map: decoder.finish(), dataBytes: decoder.dataBytes };
      } catch (error) {
        done(asError(error));
        return;
      }
      this.install(decoded);
      done();
      return;
    }
    void this.restoreAsync(chunks, restore).then(
      (decoded) => {
        if (decoded) this.install(decoded);
        done(decoded ? undefined : new Error('KV restore superseded by a newer restore; the map was left as it was'));
      },
      (error: unknown) => done(asError(error)),
    );
  }

  /** The decoded map, or undefined if a newer restore started meanwhile. */
  private async restoreAsync(chunks: AsyncIterable<Uint8Array>, restore: number): Promise<Decoded | undefined> {
    const decoder = new KvSnapshotDecoder();
    for await (const chunk of chunks) {
      decoder.push(chunk);
      // An async iterable over data already in memory never waits: yield so that a large map does not hold
      // the event loop (timers, peer traffic) for the whole restore.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (restore !== this.restores) return undefined;
    }
    const map = decoder.finish();
    return restore === this.restores ? { map, dataBytes: decoder.dataBytes } : undefined;
  }

  private install({ map, dataBytes }: Decoded): void {
    this.base = map;
    this.liveDataBytes = dataBytes;
    this.delta = undefined;
    this.sharedOverlay = undefined;
    this.generation = { views: 0 };
    this.events?.restored();
  }

  /** A delete of a missing key changed nothing: no event (as in etcd). */
  private notify(command: KvCommand, index: number, existed: boolean): void {
    if (command.op === 'put') this.events?.changed({ type: 'put', key: command.key, value: command.value, index });
    else if (existed) this.events?.changed({ type: 'delete', key: command.key, index });
  }

  /** Accounts for one applied command; `previous` is the key's value before it. */
  private countData(command: KvCommand, previous: string | undefined): void {
    const keyBytes = Buffer.byteLength(command.key, 'utf8');
    if (previous !== undefined) this.liveDataBytes -= keyBytes + Buffer.byteLength(previous, 'utf8');
    if (command.op === 'put') this.liveDataBytes += keyBytes + Buffer.byteLength(command.value, 'utf8');
  }

  private release(generation: Generation): void {
    if (--generation.views > 0 || generation !== this.generation || this.delta === undefined) return;
    const base = this.base;
    for (const [key, value] of this.delta) {
      if (value === TOMBSTONE) base.delete(key);
      else base.set(key, value);
    }
    this.delta = undefined;
    this.sharedOverlay = undefined;
  }
}

/**
 * A frozen view of the KV map (see KvStateMachine.snapshot). Reading it after release() throws: its maps may
 * be written again from then on.
 */
export class KvSnapshotView implements StateMachineView {
  private released = false;

  constructor(
    private readonly base: ReadonlyMap<string, string>,
    private readonly overlay: Delta | undefined,
    /** The number of keys in the view. */
    readonly size: number,
    private readonly onRelease: () => void,
  ) {}

  /** The content as snapshot chunks (see kv-snapshot-format.ts), encoded lazily as they are pulled. */
  chunks(): Iterable<Uint8Array> {
    return encodeKvSnapshot(this.entries());
  }

  /** The pairs of the view, lazily. */
  entries(): Generator<[string, string], void, undefined> {
    this.checkAlive();
    return overlaid(this.base, this.overlay, () => this.released);
  }

  get(key: string): string | undefined {
    this.checkAlive();
    const value = this.overlay?.get(key);
    if (value !== undefined) return value === TOMBSTONE ? undefined : value;
    return this.base.get(key);
  }

  /** Ends the view; a second call does nothing. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }

  private checkAlive(): void {
    if (this.released) throw new Error('KV snapshot view read after release()');
  }
}

/** The pairs of `base` under `overlay`; throws as soon as `released()` says the maps may have changed. */
function* overlaid(
  base: ReadonlyMap<string, string>,
  overlay: Delta | undefined,
  released: () => boolean,
): Generator<[string, string], void, undefined> {
  for (const pair of base) {
    if (released()) throw new Error('KV snapshot view read after release()');
    if (overlay === undefined || !overlay.has(pair[0])) yield pair;
  }
  if (overlay === undefined) return;
  for (const [key, value] of overlay) {
    if (released()) throw new Error('KV snapshot view read after release()');
    if (value !== TOMBSTONE) yield [key, value];
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

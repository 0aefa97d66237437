import { Injectable, Logger } from '@nestjs/common';
import { Entry, EntryType, StateMachine, StateMachineView } from '@app/consensus';
import { KeyIndex, KeyPage, KeyRange } from './key-index';
import { decodeCommand, KvCommand, KvCondition } from './kv-command';
import { encodeKvSnapshot, KV_SNAPSHOT_CHUNK_BYTES, KvRecord, KvSnapshotDecoder } from './kv-snapshot-format';
import { IdempotencyLimits, IdempotencySnapshot, IdempotencyTable } from './idempotency-table';
import { KvChangeObserver } from './watch/kv-change';

/** What applying one command did, handed back to the client that proposed it. */
export interface ApplyResult {
  /** Whether the key existed before the command. */
  existed: boolean;
  /** False when the entry was not a command this version understands (it is skipped on every node alike). */
  valid: boolean;
  /**
   * False when the command's condition did not hold when the entry was applied: nothing changed (the entry
   * still took its log index). True for a command without a condition.
   */
  conditionHeld: boolean;
  /** The key's createIndex and modIndex after the entry (on a failed condition: as they are); null when absent. */
  createIndex: number | null;
  modIndex: number | null;
  /**
   * With an Idempotency-Key already applied with the same request: the index of the entry that applied it.
   * Nothing was applied again; the other fields are that entry's outcome.
   */
  replayOf?: number;
  /** With an Idempotency-Key already applied for a different request: nothing was applied. */
  idempotencyMismatch?: boolean;
  /** For an expire command: how many of its keys it deleted (the others were rewritten, or already gone). */
  expired?: number;
}

/**
 * Told of every key that gets a deadline, in apply order, and of every restore (after which the deadlines are
 * those of the restored map): the leader's expiry scheduler keeps its heap with it (kv-expiry.ts).
 */
export interface ExpiryListener {
  scheduled(key: string, modIndex: number, expiresAt: number): void;
  restored(): void;
}

/** Marks, in a delta, a key deleted since the base was frozen. */
const TOMBSTONE: unique symbol = Symbol('deleted');
type Delta = Map<string, KvRecord | typeof TOMBSTONE>;

/** A restored map and its dataBytes (counted while decoding, so that a restore never walks the map twice). */
interface Decoded {
  map: Map<string, KvRecord>;
  dataBytes: number;
  expiring: number;
  idempotency: IdempotencySnapshot;
}

function decoded(decoder: KvSnapshotDecoder): Decoded {
  return { map: decoder.finish(), dataBytes: decoder.dataBytes, expiring: decoder.expiringKeys, idempotency: decoder.idempotency };
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
  private base = new Map<string, KvRecord>();
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
  /** The live keys in UTF-8 byte order, for listing (key-index.ts); views do not use it. */
  private readonly index = new KeyIndex();
  /** Told of every change applied and every restore (the watch hub); set before the first apply. */
  events?: KvChangeObserver;
  /** Where a snapshot of the previous format (keys without indexes) finds its own index; see useSnapshotIndex. */
  private snapshotIndex?: () => number;
  private idempotencyLimits?: IdempotencyLimits;
  private idempotency = new IdempotencyTable();
  private expiryListener?: ExpiryListener;
  /** How many live keys have an expiresAt: lets a new leader skip the scan when none does. */
  private expiring = 0;

  /**
   * IDEMPOTENCY_WINDOW_S and IDEMPOTENCY_MAX_KEYS (the defaults otherwise); call before the first apply. Every
   * replica must use the same (see IdempotencyTable).
   */
  useIdempotencyLimits(limits: IdempotencyLimits): void {
    this.idempotencyLimits = limits;
    this.idempotency = IdempotencyTable.restore(this.idempotency.snapshot(), limits);
  }

  /** Sets the one listener told of deadlines and restores (replacing any previous one). */
  setExpiryListener(listener: ExpiryListener | undefined): void {
    this.expiryListener = listener;
  }

  /** The remembered outcome of an Idempotency-Key, if any (the fast path for a retry; see IdempotencyTable). */
  idempotentOutcome(token: string): ReturnType<IdempotencyTable['lookup']> {
    return this.idempotency.lookup(token);
  }

  /** How many live keys expire. */
  get expiringKeys(): number {
    return this.expiring;
  }

  /**
   * Tells the machine how to learn the index of the snapshot that restore() is given (the storage's newest
   * snapshot, in a node): needed only to restore a snapshot of the previous format, whose keys then get that
   * index as createIndex and modIndex. Without it, such a snapshot is refused.
   */
  useSnapshotIndex(source: () => number): void {
    this.snapshotIndex = source;
  }

  /**
   * Applies a committed entry; a no-op (empty data, or not a Normal entry) changes nothing and returns
   * undefined. A command's condition is evaluated here, against the state as of the entry before: every
   * replica applies the same entries in the same order, so every one reaches the same outcome.
   */
  apply(entry: Entry): ApplyResult | undefined {
    if (entry.type !== EntryType.Normal || entry.data.length === 0) return undefined;
    const command = decodeCommand(entry.data);
    if (!command) {
      this.logger.warn(`skipping entry ${entry.index} (term ${entry.term}): not a KV command`);
      return { existed: false, valid: false, conditionHeld: false, createIndex: null, modIndex: null };
    }
    if (command.at !== undefined) this.idempotency.advance(command.at);
    if (command.op === 'expire') return this.expire(command, entry.index);
    const token = command.idempotency;
    if (token === undefined) return this.applyWrite(command, entry.index);
    const seen = this.idempotency.lookup(token.token);
    if (seen !== undefined) {
      const { index, ...outcome } = seen.outcome;
      if (seen.fingerprint.equals(token.fingerprint)) return { ...outcome, valid: true, replayOf: index };
      const current = this.getRecord(command.key);
      return {
        existed: current !== undefined,
        valid: true,
        conditionHeld: false,
        createIndex: current?.createIndex ?? null,
        modIndex: current?.modIndex ?? null,
        idempotencyMismatch: true,
      };
    }
    const result = this.applyWrite(command, entry.index);
    const { existed, conditionHeld, createIndex, modIndex } = result;
    this.idempotency.remember(token.token, {
      fingerprint: token.fingerprint,
      at: command.at!,
      outcome: { index: entry.index, existed, conditionHeld, createIndex, modIndex },
    });
    return result;
  }

  /** A put or delete, its condition evaluated against the state as of the entry before. */
  private applyWrite(command: Exclude<KvCommand, { op: 'expire' }>, index: number): ApplyResult {
    const { key } = command;
    const previous = this.getRecord(key);
    const existed = previous !== undefined;
    if (command.condition && !holds(command.condition, previous)) {
      return { existed, valid: true, conditionHeld: false, createIndex: previous?.createIndex ?? null, modIndex: previous?.modIndex ?? null };
    }
    let record: KvRecord | undefined;
    if (command.op === 'put') {
      record = { value: command.value, createIndex: previous?.createIndex ?? index, modIndex: index };
      if (command.ttl !== undefined) record.expiresAt = command.at! + command.ttl * 1000;
    }
    this.write(key, previous, record, index);
    if (record?.expiresAt !== undefined) this.expiryListener?.scheduled(key, index, record.expiresAt);
    return { existed, valid: true, conditionHeld: true, createIndex: record?.createIndex ?? null, modIndex: record?.modIndex ?? null };
  }

  /**
   * Deletes each listed key that still has the modIndex the leader saw and is due at the entry's `at`: a key
   * rewritten since (new modIndex; a put without a TTL clears it) or not yet due on this entry's clock stays.
   */
  private expire(command: Extract<KvCommand, { op: 'expire' }>, index: number): ApplyResult {
    let expired = 0;
    for (const { key, modIndex } of command.keys) {
      const previous = this.getRecord(key);
      if (previous === undefined || previous.modIndex !== modIndex || previous.expiresAt === undefined || previous.expiresAt > command.at) {
        continue;
      }
      this.write(key, previous, undefined, index);
      expired++;
    }
    return { existed: expired > 0, valid: true, conditionHeld: true, createIndex: null, modIndex: null, expired };
  }

  /**
   * The one place the map changes: sets `key` to `record` (undefined: deletes it) over `previous`, its record
   * before. Puts, deletes and expiries all come through here.
   */
  private write(key: string, previous: KvRecord | undefined, record: KvRecord | undefined, index: number): void {
    const existed = previous !== undefined;
    this.countData(key, previous?.value, record?.value);
    // The ordered key index (listing) and the watchers: a delete of a missing key changes nothing (no event, as in etcd).
    if (record && !existed) this.index.add(key);
    else if (!record && existed) this.index.delete(key);
    if (record) this.events?.changed({ type: 'put', key, value: record.value, index });
    else if (existed) this.events?.changed({ type: 'delete', key, index });
    if (previous?.expiresAt !== undefined) this.expiring--;
    if (record?.expiresAt !== undefined) this.expiring++;
    const delta = this.delta;
    if (delta === undefined) {
      if (record) this.base.set(key, record);
      else this.base.delete(key);
    } else {
      this.sharedOverlay = undefined;
      if (record) {
        delta.set(key, record);
        if (!existed) this.liveSize++;
      } else if (existed) {
        // A key only in the delta simply leaves it; a key of the base needs a tombstone to hide it.
        if (this.base.has(key)) delta.set(key, TOMBSTONE);
        else delta.delete(key);
        this.liveSize--;
      }
    }
  }

  get(key: string): string | undefined {
    return this.getRecord(key)?.value;
  }

  /**
   * One page of the live keys starting with `range.prefix`, after `range.after`, in UTF-8 byte order (see
   * KeyIndex.range): O(log n + limit). Read their records with getRecord() before the next apply().
   */
  keys(range: KeyRange): KeyPage {
    return this.index.range(range);
  }

  /** The key's value and indexes, as of the last entry applied. */
  getRecord(key: string): KvRecord | undefined {
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
    return values(overlaid(this.base, this.delta, () => false));
  }

  /** entries(), with each key's indexes. */
  records(): Generator<[string, KvRecord], void, undefined> {
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
    return new KvSnapshotView(this.base, overlay, this.liveSize, () => this.release(generation), this.idempotency.snapshot());
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
      let content: Decoded;
      try {
        const decoder = new KvSnapshotDecoder(this.snapshotIndex);
        for (const chunk of chunks) decoder.push(chunk);
        content = decoded(decoder);
      } catch (error) {
        done(asError(error));
        return;
      }
      this.install(content);
      done();
      return;
    }
    void this.restoreAsync(chunks, restore).then(
      (content) => {
        if (content) this.install(content);
        done(content ? undefined : new Error('KV restore superseded by a newer restore; the map was left as it was'));
      },
      (error: unknown) => done(asError(error)),
    );
  }

  /** The decoded map, or undefined if a newer restore started meanwhile. */
  private async restoreAsync(chunks: AsyncIterable<Uint8Array>, restore: number): Promise<Decoded | undefined> {
    const decoder = new KvSnapshotDecoder(this.snapshotIndex);
    for await (const chunk of chunks) {
      decoder.push(chunk);
      // An async iterable over data already in memory never waits: yield so that a large map does not hold
      // the event loop (timers, peer traffic) for the whole restore.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (restore !== this.restores) return undefined;
    }
    const content = decoded(decoder);
    return restore === this.restores ? content : undefined;
  }

  private install({ map, dataBytes, expiring, idempotency }: Decoded): void {
    this.base = map;
    this.index.rebuild(map.keys());
    this.liveDataBytes = dataBytes;
    this.expiring = expiring;
    this.idempotency = IdempotencyTable.restore(idempotency, this.idempotencyLimits);
    this.delta = undefined;
    this.sharedOverlay = undefined;
    this.generation = { views: 0 };
    this.expiryListener?.restored();
    this.events?.restored();
  }

  /** Accounts for one change of `key`: its value before and after (undefined: absent). */
  private countData(key: string, previous: string | undefined, next: string | undefined): void {
    const keyBytes = Buffer.byteLength(key, 'utf8');
    if (previous !== undefined) this.liveDataBytes -= keyBytes + Buffer.byteLength(previous, 'utf8');
    if (next !== undefined) this.liveDataBytes += keyBytes + Buffer.byteLength(next, 'utf8');
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
    private readonly base: ReadonlyMap<string, KvRecord>,
    private readonly overlay: Delta | undefined,
    /** The number of keys in the view. */
    readonly size: number,
    private readonly onRelease: () => void,
    /** The idempotency table as of the view (a copy: it is small, and bounded by IDEMPOTENCY_MAX_KEYS). */
    readonly idempotency: IdempotencySnapshot = { clock: 0, records: [] },
  ) {}

  /** The content as snapshot chunks (see kv-snapshot-format.ts), encoded lazily as they are pulled. */
  chunks(): Iterable<Uint8Array> {
    return encodeKvSnapshot(this.records(), KV_SNAPSHOT_CHUNK_BYTES, this.idempotency);
  }

  /** The pairs of the view, lazily. */
  entries(): Generator<[string, string], void, undefined> {
    return values(this.records());
  }

  /** entries(), with each key's indexes. */
  records(): Generator<[string, KvRecord], void, undefined> {
    this.checkAlive();
    return overlaid(this.base, this.overlay, () => this.released);
  }

  get(key: string): string | undefined {
    this.checkAlive();
    const value = this.overlay?.get(key);
    if (value !== undefined) return value === TOMBSTONE ? undefined : value.value;
    return this.base.get(key)?.value;
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
  base: ReadonlyMap<string, KvRecord>,
  overlay: Delta | undefined,
  released: () => boolean,
): Generator<[string, KvRecord], void, undefined> {
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

function* values(records: Iterable<[string, KvRecord]>): Generator<[string, string], void, undefined> {
  for (const [key, record] of records) yield [key, record.value];
}

/** Whether `condition` holds for a key whose record is `current` (undefined: the key does not exist). */
export function holds(condition: KvCondition, current: KvRecord | undefined): boolean {
  switch (condition.kind) {
    case 'exists':
      return current !== undefined;
    case 'absent':
      return current === undefined;
    case 'modIndex':
      return current !== undefined && current.modIndex === condition.modIndex;
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

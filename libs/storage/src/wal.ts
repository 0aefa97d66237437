import { ConfState, Entry, EntryType, HardState, SnapshotMetadata, Storage } from '@app/consensus/core';
import { Logger } from '@nestjs/common';
import { promises as fsp } from 'node:fs';
import { resolve } from 'node:path';
import { DirLock } from './dir-lock';
import { ensureDir, fsyncDir } from './durable-fs';
import { isStorageFull, StorageFullError, WalClosedError, WalFailedError } from './errors';
import { LogIndex } from './log-index';
import { readMeta, WalMeta, writeMeta } from './meta-file';
import { PayloadCache } from './payload-cache';
import { encodeRecord, HEADER_SIZE, MAX_PAYLOAD, RecordType, sealRecord } from './record';
import {
  encodeBatchEnd,
  encodeConfState,
  encodeHardState,
  encodeSegmentHeader,
  encodeSnapshotRecord,
  encodeTruncate,
  ENTRY_FIXED,
  entryRecordSize,
  SnapshotMode,
  writeEntryRecord,
} from './record-payloads';
import { compactionPoint, firstEntryFrom } from './wal-compaction';
import { recoverLog, SegmentLowRefs } from './wal-recovery';
import { SyncMethod, WalSegment } from './wal-segment';
import { DurableLog, WalStorage } from './wal-storage';

/** Where the WAL reports. Nest's Logger fits; the default is `new Logger('Wal')`. */
export interface WalLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface WalOptions {
  /** A segment is closed and a new one started once the next batch would take it past this size. 64 MiB. */
  segmentSize?: number;
  /**
   * The newest entries are kept in memory up to about this many bytes (data plus 160 bytes an entry); older
   * ones are re-read from disk. 64 MiB; 0 keeps none.
   */
  payloadCacheBytes?: number;
  logger?: WalLogger;
  /**
   * Called after each batch is durable with the time it took to write and fsync it (seconds) and the bytes
   * written. For metrics; must not throw (errors are ignored).
   */
  onFsync?: (seconds: number, bytes: number) => void;
  /**
   * Called when the disk refuses a write (`full` true, with the error: a save, a snapshot record, the
   * identity record), and with `full` false when the next batch after a refusal is durable. For metrics
   * (raftkv_storage_full); must not throw (errors are ignored). `Wal.refusedWrites` counts the refusals.
   */
  onStorageFull?: (full: boolean, error?: StorageFullError) => void;
  /** See DirLockOptions.staleAfterMs. 10 s. */
  lockStaleAfterMs?: number;
  /**
   * How a batch is made durable: `dsync` (default) writes through an O_DSYNC descriptor, `fdatasync` writes
   * then calls fdatasync(2). Same guarantee; `dsync` saves a system call per batch.
   */
  syncMethod?: SyncMethod;
}

const DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024;
const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
/** A Truncate record: header and u64 index. */
const TRUNCATE_RECORD_SIZE = HEADER_SIZE + 8;
/** A BatchEnd record: header and u32 count. */
const BATCH_END_SIZE = HEADER_SIZE + 4;

/** One save() or setConfState() waiting for the next batch. */
interface PendingWrite {
  /** Its records, back to back (undefined for a save with nothing to write, which only waits). */
  buf?: Buffer;
  records: number;
  /** Set when the save discards the log from this index on; its Truncate record then starts `buf`. */
  truncateFrom?: number;
  entries: Entry[];
  /** Offset of each entry's record inside `buf`. */
  offsets: number[];
  hardState?: HardState;
  confState?: ConfState;
  snapshot?: { metadata: SnapshotMetadata; mode: SnapshotMode };
  /** Runs before the batch holding this write is written; its failure fails the Wal (see saveSnapshot). */
  before?: () => Promise<void>;
  /** Undoes `before` when the disk refuses the batch (see saveSnapshot). */
  undo?: () => Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Options of Wal.saveSnapshot(). */
export interface SaveSnapshotOptions {
  /**
   * The snapshot was installed from the leader: if the log holds its entry with its term, the log is kept,
   * otherwise every entry is discarded and the log restarts right after it. Without this option (a
   * snapshot this node took), the log must hold that entry.
   */
  installed?: boolean;
  /**
   * Runs before the record's batch is written, after the batches ahead of it (installing moves the received
   * snapshot file into place there). Saves made after saveSnapshot() wait for it. If it fails, the Wal fails
   * like a failed write (WalFailedError): the saves queued behind were checked against the reset log;
   * unless it rejects with StorageFullError, which the Wal takes as a refused write (below).
   */
  before?: () => Promise<void>;
  /**
   * Undoes what `before` did, when the disk then refuses the batch (StorageFullError: nothing of it kept), so
   * that the snapshot may be saved again later. If it fails, the Wal fails (WalFailedError).
   */
  undo?: () => Promise<void>;
}

/**
 * The Raft log and hard state, durable on disk (docs/storage.md).
 *
 * An append-only, segmented write-ahead log: `save()` frames entries and hard state as checksummed records
 * and resolves once they are on disk. Saves that arrive while a batch is being written and fsynced are
 * written together in the next batch with a single fsync (group commit); they resolve in call order. A batch
 * is atomic on recovery: it takes effect whole or not at all.
 *
 * `storage` is the Raft core's synchronous read view; it shows only what is durable.
 *
 * Snapshots: saveSnapshot() records one in the log (its content lives in a snapshot file, written by the
 * caller first); compact() then deletes whole old segments the snapshot covers. Every segment's header batch
 * repeats the hard state, configuration and newest snapshot, so the segments left describe the state alone.
 *
 * Failure modes (docs/storage.md, "When the disk is full"):
 *
 * - The disk refuses a write (ENOSPC or EDQUOT from a write or from creating a segment file on roll-over;
 *   EIO from a write too with `syncMethod: 'fdatasync'`): retryable. The batch's saves and every write
 *   queued behind them reject with StorageFullError; the file is cut back (ftruncate, fdatasync) to its size
 *   before the batch, a segment created for the batch is deleted and the roll-over undone, and the log as
 *   later saves are checked against is the durable one again. Nothing of them shows in `storage`, and the
 *   same saves may be made again, as often as needed: a retry works exactly like a first attempt. Only the
 *   refused batch's own bytes were at stake: every earlier batch was fsynced before it was written.
 * - Anything else (a failed fsync, EIO from an O_DSYNC write, which may be its flush's, or the cut-back
 *   itself failing): the Wal fails for good, and the failed saves and every later one reject with
 *   WalFailedError. Retrying is unsafe: after a failed fsync Linux may have dropped the dirty pages and
 *   marked them clean, so a second fsync can "succeed" with the data lost. The process must restart and
 *   recover from what the disk really holds.
 */
export class Wal {
  /** The durable log as the Raft core reads it. */
  readonly storage: Storage;

  private readonly index = new LogIndex();
  private readonly cache: PayloadCache;
  private readonly segments = new Map<number, WalSegment>();
  private readonly segmentSize: number;
  private readonly cacheBytes: number;
  private readonly syncMethod: SyncMethod;
  private active!: WalSegment;
  /** End of the active segment's header batch: a segment with no more than that is never rolled. */
  private activeHeaderEnd = 0;
  private hardState: HardState = { term: 0, vote: '', commit: 0 };
  private confState: ConfState = { voters: [] };
  private snapshot: SnapshotMetadata | undefined;
  private readonly recorded: Array<{ index: number; term: number }> = [];
  /** Per segment, what compaction must know about its records (wal-compaction.ts). */
  private readonly lowRefs = new Map<number, SegmentLowRefs>();
  private metaValue: WalMeta | undefined;

  // The log as it will be once every queued write is durable: saves are checked against it.
  private tailFirst = 1;
  private tailLast = 0;
  private tailCommit = 0;
  private tailTerm = 0;
  private tailSnapshot: SnapshotMetadata | undefined;

  private queue: PendingWrite[] = [];
  /** The writes taken from `queue` and not yet durable (not yet in `index`, no longer in `queue`). */
  private inflight: PendingWrite[] = [];
  private compactChain: Promise<unknown> = Promise.resolve();
  private flushing = false;
  private readonly drainWaiters: Array<() => void> = [];
  private failure?: WalFailedError;
  private closed = false;
  private closing?: Promise<void>;
  private metaChain: Promise<void> = Promise.resolve();
  private refused = 0;
  /** A write was refused and no batch has been durable since (for onStorageFull(false)). */
  private full = false;

  private constructor(
    /** Absolute path of the WAL directory. */
    readonly dir: string,
    private readonly options: WalOptions,
    private readonly logger: WalLogger,
    private readonly lock: DirLock,
  ) {
    this.segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.cacheBytes = options.payloadCacheBytes ?? DEFAULT_CACHE_BYTES;
    this.syncMethod = options.syncMethod ?? 'dsync';
    this.cache = new PayloadCache(this.cacheBytes);
    const self = this;
    const log: DurableLog = {
      index: this.index,
      cache: this.cache,
      get hardState() {
        return self.hardState;
      },
      get confState() {
        return self.confState;
      },
      get snapshot() {
        return self.snapshot;
      },
      segment: (seq) => self.segmentFor(seq),
    };
    this.storage = new WalStorage(log);
  }

  /**
   * Opens (creating if needed) the WAL in `dir`: takes the directory's lock (WalLockedError if another
   * process or another Wal of this process has it), recovers the log (a torn final write is cut off with a
   * warning; other damage throws WalCorruptionError naming the file and offset) and reads the metadata.
   */
  static async open(dir: string, options: WalOptions = {}): Promise<Wal> {
    const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    if (!Number.isInteger(segmentSize) || segmentSize < 512 || segmentSize > 1024 * 1024 * 1024) {
      throw new RangeError(`segmentSize must be an integer in [512, 2^30], got ${segmentSize}`);
    }
    const cacheBytes = options.payloadCacheBytes ?? DEFAULT_CACHE_BYTES;
    if (!(cacheBytes >= 0)) throw new RangeError(`payloadCacheBytes must be >= 0, got ${cacheBytes}`);
    if (options.syncMethod !== undefined && options.syncMethod !== 'dsync' && options.syncMethod !== 'fdatasync') {
      throw new RangeError(`syncMethod must be 'dsync' or 'fdatasync', got ${String(options.syncMethod)}`);
    }

    const abs = resolve(dir);
    const logger = options.logger ?? new Logger('Wal');
    await ensureDir(abs);
    const lock = await DirLock.acquire(abs, { staleAfterMs: options.lockStaleAfterMs, warn: (m) => logger.warn(m) });
    const wal = new Wal(abs, options, logger, lock);
    try {
      await wal.recover();
    } catch (err) {
      wal.closeSegments();
      await lock.release();
      throw err;
    }
    return wal;
  }

  /** The newest snapshot the log records (durable), or undefined if none. */
  get snapshotMetadata(): SnapshotMetadata | undefined {
    return this.snapshot && copySnapshotMetadata(this.snapshot);
  }

  /**
   * Every snapshot the log records (durably), oldest first: those read from the segments still on disk, then
   * those recorded since.
   */
  get recordedSnapshots(): ReadonlyArray<{ index: number; term: number }> {
    return this.recorded;
  }

  /** True when the durable log holds entry `index` with `term` (index in [firstIndex - 1, lastIndex]). */
  holds(index: number, term: number): boolean {
    return index >= this.index.first - 1 && index <= this.index.last && this.index.term(index) === term;
  }

  /**
   * How many writes the disk refused since the Wal was opened: batches, setMeta calls, and snapshot files
   * when the Wal is part of a NodeStorage.
   */
  get refusedWrites(): number {
    return this.refused;
  }

  /** The metadata last written with setMeta(), or undefined if there is none. */
  get meta(): WalMeta | undefined {
    return this.metaValue;
  }

  /**
   * Appends `entries` and `hardState` (either may be absent) and resolves once they are durable; only then
   * do they show in `storage`. If entries[0].index is at or below the last index, the log's suffix from
   * there is discarded first: by a Truncate record, or, when that index is below the active segment's first
   * index, by starting a new segment there (a rebased segment, docs/storage.md). Nothing already written is
   * rewritten.
   *
   * Rejects, without writing anything, with a RangeError if the save would break the log: entries not
   * consecutive, a gap after the last index, overwriting a committed entry, the term or commit going
   * backwards, or a commit beyond the last index. Rejects with WalFailedError / WalClosedError as described
   * on the class. Calls are ordered: a later save is never durable before an earlier one.
   */
  save(hardState: HardState | undefined, entries: Entry[]): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    let write: Omit<PendingWrite, 'resolve' | 'reject'>;
    try {
      write = this.encodeSave(hardState, entries);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(write);
  }

  /**
   * Records the cluster configuration durably (in the log, ordered with the saves); initialState() returns
   * it from then on, and after restarts. The driver sets it when it bootstraps a new cluster.
   */
  setConfState(confState: ConfState): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    const copy: ConfState = { voters: [...confState.voters], ...(confState.learners?.length ? { learners: [...confState.learners] } : {}) };
    let buf: Buffer;
    try {
      buf = encodeRecord(RecordType.ConfState, encodeConfState(copy));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue({ buf, records: 1, entries: [], offsets: [], confState: copy });
  }

  /**
   * Records a snapshot in the log (a Snapshot record, ordered with the saves) and resolves once durable;
   * storage.snapshot() returns it from then on, and after restarts. The snapshot's content is not in the
   * log: the caller wrote it to its own file first.
   *
   * If the log holds entry metadata.index with metadata.term, the log is kept (storage.firstIndex() does not
   * move: compact() releases entries). Otherwise, which only an installed snapshot allows (options), the log
   * is reset: every entry is discarded, the log restarts at index + 1 with term(index) = term, the commit
   * index becomes index and the configuration the snapshot's. Later saves are checked against the reset log.
   *
   * Rejects with a RangeError, without writing anything, for a snapshot older than one already recorded, a
   * taken snapshot whose entry the log does not hold, or a reset that would discard committed entries.
   */
  saveSnapshot(metadata: SnapshotMetadata, options: SaveSnapshotOptions = {}): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    let write: Omit<PendingWrite, 'resolve' | 'reject'>;
    try {
      write = this.encodeSnapshot(metadata, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(write);
  }

  /**
   * Releases the log up to `index` (clamped to the newest recorded snapshot's index): deletes, oldest first,
   * whole segments whose live entries are all at or below it (never the active segment), fsyncing the
   * directory after each, and drops those entries from memory first. storage.firstIndex() moves up to at
   * most index + 1. A crash halfway leaves a shorter prefix deleted, which recovers as well. Calls run one at
   * a time. Resolves with the number of segments deleted.
   */
  compact(index: number): Promise<number> {
    if (this.closed) return Promise.reject(new WalClosedError(this.dir));
    const run = this.compactChain.then(() => this.compactNow(index));
    this.compactChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Replaces the metadata file durably and atomically (write `meta.json.tmp`, fsync, rename, fsync the
   * directory). Calls are applied in order. When the disk refuses it, rejects with StorageFullError: the
   * temporary file is removed and the old record stays.
   */
  setMeta(meta: WalMeta): Promise<void> {
    if (this.closed) return Promise.reject(new WalClosedError(this.dir));
    const copy = JSON.parse(JSON.stringify(meta)) as WalMeta;
    const run = this.metaChain
      .then(() => writeMeta(this.dir, copy))
      .then(
        () => {
          this.metaValue = copy;
        },
        (err: unknown) => {
          if (isStorageFull(err)) this.noteRefused(err);
          throw err;
        },
      );
    this.metaChain = run.catch(() => undefined);
    return run;
  }

  /** Writes what is queued, closes the files and releases the lock. Idempotent; later calls reject. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    if (this.flushing) await new Promise<void>((done) => this.drainWaiters.push(done));
    await this.metaChain;
    await this.compactChain;
    this.closeSegments();
    await this.lock.release();
  }

  private async recover(): Promise<void> {
    this.metaValue = await readMeta(this.dir);
    const result = await recoverLog(this.dir, this.index, this.logger);
    this.hardState = result.hardState;
    this.confState = result.confState;
    this.snapshot = result.snapshot;
    this.recorded.push(...result.recordedSnapshots);
    const { segments } = result;
    for (let k = 0; k < segments.length; k++) {
      const isLast = k === segments.length - 1;
      const segment = await WalSegment.open(this.dir, segments[k], segments[k].size, isLast ? this.syncMethod : undefined);
      this.segments.set(segment.seq, segment);
      this.lowRefs.set(segment.seq, { minTruncate: segments[k].minTruncate, hasReset: segments[k].hasReset });
      if (isLast) {
        this.active = segment;
        this.activeHeaderEnd = segments[k].headerEnd;
      }
    }
    if (segments.length === 0) {
      // A new log: its first segment, made durable (file and directory entry) before anyone relies on it.
      const segment = await WalSegment.create(this.dir, 1, this.index.last + 1, this.syncMethod);
      const header = this.headerBatch(segment, this.index.term(this.index.last));
      await segment.appendDurably([header], header.length);
      await fsyncDir(this.dir);
      this.segments.set(segment.seq, segment);
      this.lowRefs.set(segment.seq, { minTruncate: Infinity, hasReset: false });
      this.active = segment;
      this.activeHeaderEnd = header.length;
    }
    this.warmCache();
    this.tailFirst = this.index.first;
    this.tailLast = this.index.last;
    this.tailCommit = this.hardState.commit;
    this.tailTerm = this.hardState.term;
    this.tailSnapshot = this.snapshot;
    const snap = this.snapshot ? `, snapshot (${this.snapshot.index}, term ${this.snapshot.term})` : '';
    this.logger.log(
      `opened ${this.dir}: entries [${this.index.first}, ${this.index.last}], term ${this.hardState.term}, ` +
        `commit ${this.hardState.commit}${snap}, ${this.segments.size} segment(s)`,
    );
  }

  /**
   * Loads the newest entries that fit the payload cache, as if they had just been written: recovery only
   * rebuilds the index, so that it never holds payloads it would evict again at once.
   */
  private warmCache(): void {
    const { first, last } = this.index;
    let lo = last + 1;
    let bytes = 0;
    while (lo > first && (bytes += this.index.dataLength(lo - 1) + PayloadCache.ENTRY_OVERHEAD) <= this.cacheBytes) lo--;
    this.cache.clear(lo);
    for (let i = lo; i <= last; i += 4096) {
      for (const e of this.storage.entries(i, Math.min(last, i + 4095) + 1)) this.cache.append(e);
    }
  }

  /** Checks a save against the tail of the log and frames its records into one buffer. */
  private encodeSave(hardState: HardState | undefined, entries: Entry[]): Omit<PendingWrite, 'resolve' | 'reject'> {
    let truncateFrom: number | undefined;
    let newLast = this.tailLast;
    let size = 0;
    if (entries.length > 0) {
      const first = entries[0].index;
      for (let k = 0; k < entries.length; k++) {
        const e = entries[k];
        checkU64(e.index, 'entry index');
        checkU64(e.term, 'entry term');
        if (EntryType[e.type] === undefined) throw new RangeError(`entry ${e.index} has unknown type ${e.type}`);
        if (!(e.data instanceof Uint8Array)) throw new TypeError(`entry ${e.index}: data must be a Uint8Array`);
        if (e.data.length > MAX_PAYLOAD - ENTRY_FIXED) throw new RangeError(`entry ${e.index} is too large`);
        if (k > 0 && (e.index !== entries[k - 1].index + 1 || e.term < entries[k - 1].term)) {
          throw new RangeError(`entries are not consecutive with non-decreasing terms at index ${e.index}`);
        }
        size += entryRecordSize(e);
      }
      if (first < this.tailFirst || first > this.tailLast + 1) {
        throw new RangeError(`entries start at ${first}; the log holds [${this.tailFirst}, ${this.tailLast}]`);
      }
      if (first <= this.tailCommit) {
        throw new RangeError(`entry ${first} would overwrite a committed entry (commit ${this.tailCommit})`);
      }
      if (first <= this.tailLast) {
        truncateFrom = first;
        size += TRUNCATE_RECORD_SIZE;
      }
      newLast = entries[entries.length - 1].index;
    }
    let hsPayload: Buffer | undefined;
    if (hardState) {
      checkU64(hardState.term, 'term');
      checkU64(hardState.commit, 'commit');
      if (hardState.term < this.tailTerm) throw new RangeError(`term ${hardState.term} is below ${this.tailTerm}`);
      if (hardState.commit < this.tailCommit) {
        throw new RangeError(`commit ${hardState.commit} is below ${this.tailCommit}`);
      }
      if (hardState.commit > newLast) throw new RangeError(`commit ${hardState.commit} is beyond the last index ${newLast}`);
      hsPayload = encodeHardState(hardState);
      size += HEADER_SIZE + hsPayload.length;
    }

    const offsets: number[] = [];
    let buf: Buffer | undefined;
    let records = 0;
    if (size > 0) {
      buf = Buffer.allocUnsafe(size);
      let p = 0;
      if (truncateFrom !== undefined) {
        encodeTruncate(truncateFrom).copy(buf, p + HEADER_SIZE);
        p = sealRecord(buf, p, RecordType.Truncate, 8);
        records++;
      }
      for (const e of entries) {
        offsets.push(p);
        p = writeEntryRecord(buf, p, e);
        records++;
      }
      if (hsPayload) {
        hsPayload.copy(buf, p + HEADER_SIZE);
        p = sealRecord(buf, p, RecordType.HardState, hsPayload.length);
        records++;
      }
    }
    this.tailLast = newLast;
    if (hardState) {
      this.tailCommit = hardState.commit;
      this.tailTerm = hardState.term;
    }
    const hs = hardState ? { term: hardState.term, vote: hardState.vote, commit: hardState.commit } : undefined;
    return { buf, records, truncateFrom, entries, offsets, hardState: hs };
  }

  /** Checks a snapshot against the tail of the log and frames its record. */
  private encodeSnapshot(metadata: SnapshotMetadata, options: SaveSnapshotOptions): Omit<PendingWrite, 'resolve' | 'reject'> {
    const { index, term } = metadata;
    checkU64(index, 'snapshot index');
    checkU64(term, 'snapshot term');
    if (index < 1) throw new RangeError('a snapshot covers at least entry 1');
    const copy = copySnapshotMetadata(metadata);
    const prev = this.tailSnapshot;
    if (prev && (index < prev.index || (index === prev.index && term !== prev.term))) {
      throw new RangeError(`snapshot (${index}, term ${term}) is older than the snapshot (${prev.index}, term ${prev.term}) already recorded`);
    }
    const keep = this.tailTermAt(index) === term;
    if (!keep && !options.installed) {
      throw new RangeError(`snapshot (${index}, term ${term}): the log does not hold entry ${index} with term ${term}`);
    }
    if (!keep && this.tailCommit > index) {
      throw new RangeError(
        `snapshot (${index}, term ${term}) does not match the log, and resetting the log would discard committed entries (commit ${this.tailCommit})`,
      );
    }
    const mode = keep ? SnapshotMode.Keep : SnapshotMode.Reset;
    const buf = encodeRecord(RecordType.Snapshot, encodeSnapshotRecord({ metadata: copy, mode }));
    this.tailSnapshot = copy;
    if (!keep) {
      this.tailFirst = index + 1;
      this.tailLast = index;
      this.tailCommit = index;
    }
    return { buf, records: 1, entries: [], offsets: [], snapshot: { metadata: copy, mode }, before: options.before, undo: options.undo };
  }

  /**
   * Term of entry i in the log as it will be once every queued write is durable, or undefined where that log
   * does not hold it (outside [first - 1, last]). Looks at the queued and in-flight writes, newest first,
   * then at the durable index.
   */
  private tailTermAt(i: number): number | undefined {
    const writes = [...this.inflight, ...this.queue];
    for (let k = writes.length - 1; k >= 0; k--) {
      const w = writes[k];
      if (w.snapshot?.mode === SnapshotMode.Reset) return i === w.snapshot.metadata.index ? w.snapshot.metadata.term : undefined;
      if (w.entries.length > 0 && i >= w.entries[0].index) {
        const e = w.entries[i - w.entries[0].index];
        return e?.term;
      }
    }
    if (i < this.index.first - 1 || i > this.index.last) return undefined;
    return this.index.term(i);
  }

  private async compactNow(upTo: number): Promise<number> {
    if (this.failure) return 0;
    const limit = Math.min(upTo, this.snapshot?.index ?? 0);
    const ordered = [...this.segments.values()].sort((a, b) => a.seq - b.seq);
    const view = ordered.map((s) => ({ seq: s.seq, firstIndex: s.firstIndex, ...(this.lowRefs.get(s.seq) as SegmentLowRefs) }));
    const point = compactionPoint(view, limit);
    if (point === 0) return 0;
    // Out of memory first, so that nothing reads them while they go.
    const first = firstEntryFrom(this.index, ordered[point].seq);
    this.index.dropBefore(first);
    this.cache.dropBefore(first);
    this.tailFirst = Math.max(this.tailFirst, first);
    for (let k = 0; k < point; k++) {
      const segment = ordered[k];
      // One at a time, each deletion durable before the next: the segments left always follow each other.
      await fsp.unlink(segment.path);
      await fsyncDir(this.dir);
      segment.close();
      this.segments.delete(segment.seq);
      this.lowRefs.delete(segment.seq);
    }
    this.logger.log(
      `compacted ${this.dir} up to entry ${limit}: deleted ${point} segment(s); the log now holds [${this.index.first}, ${this.index.last}]`,
    );
    return point;
  }

  private enqueue(write: Omit<PendingWrite, 'resolve' | 'reject'>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...write, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // On the next tick, so saves made in the same turn of the event loop share the first fsync too.
        process.nextTick(() => void this.flushLoop());
      }
    });
  }

  /** Writes batches until the queue is empty; one runs at a time, so batches land in call order. */
  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      if (this.failure) {
        for (const w of batch) w.reject(this.failure);
        continue;
      }
      this.inflight = batch;
      try {
        while (this.inflight.length > 0) this.inflight = await this.writeBatch(this.inflight);
      } catch (err) {
        if (isStorageFull(err)) {
          this.refuse(err);
        } else {
          this.failure = new WalFailedError(err);
          this.logger.error(this.failure.message);
          for (const w of this.inflight) w.reject(this.failure);
        }
      }
      this.inflight = [];
    }
    this.flushing = false;
    for (const done of this.drainWaiters.splice(0)) done();
  }

  /**
   * The disk refused the batch in flight (writeBatch undid it): it and every write queued behind it reject,
   * and later saves are checked against the durable log again, so that the same saves can be made anew.
   */
  private refuse(error: StorageFullError): void {
    const rejected = [...this.inflight, ...this.queue];
    this.inflight = [];
    this.queue = [];
    this.tailFirst = this.index.first;
    this.tailLast = this.index.last;
    this.tailCommit = this.hardState.commit;
    this.tailTerm = this.hardState.term;
    this.tailSnapshot = this.snapshot;
    this.noteRefused(error);
    this.logger.warn(`${error.message} (${rejected.length} write(s) refused; the log stays at [${this.index.first}, ${this.index.last}])`);
    for (const w of rejected) w.reject(error);
  }

  /**
   * @internal Counts a write the disk refused (refusedWrites, onStorageFull), here or elsewhere in the
   * node's storage (snapshot files).
   */
  noteRefused(error: StorageFullError): void {
    this.refused++;
    this.full = true;
    this.reportFull(true, error);
  }

  private reportFull(full: boolean, error?: StorageFullError): void {
    try {
      this.options.onStorageFull?.(full, error);
    } catch {
      // metrics must never break durability
    }
  }

  /**
   * Where the next batch goes: the active segment, or a new one (`roll`) whose first index is `start`. A
   * write that truncates below `start` cannot join the batch (a Truncate record never goes below its
   * segment's first index, so that every segment is a valid start of the log: wal-compaction.ts): the batch
   * stops before it, and it leads the next one, which rolls over to a segment that starts at its truncation
   * point (`rebase`: the header stands for the lead's Truncate record, which is left out).
   */
  private planBatch(batch: PendingWrite[]): { count: number; roll: boolean; rebase: boolean; start: number } {
    const lead = batch[0].truncateFrom;
    /** How many writes, from the first, truncate nowhere below `start`. */
    const fitting = (start: number, max: number): number => {
      let count = 1;
      while (count < max && !((batch[count].truncateFrom ?? Infinity) < start)) count++;
      return count;
    };
    if (lead !== undefined && lead < this.active.firstIndex) {
      return { count: fitting(lead, batch.length), roll: true, rebase: true, start: lead };
    }
    const count = fitting(this.active.firstIndex, batch.length);
    let bytes = BATCH_END_SIZE;
    for (let k = 0; k < count; k++) bytes += batch[k].buf?.length ?? 0;
    if (this.active.size <= this.activeHeaderEnd || this.active.size + bytes <= this.segmentSize) {
      return { count, roll: false, rebase: false, start: this.active.firstIndex };
    }
    // Rolling over for size: a batch that starts with a truncation starts the new segment there.
    const rebase = lead !== undefined && lead <= this.index.last;
    const start = rebase ? lead : this.index.last + 1;
    return { count: fitting(start, count), roll: true, rebase, start };
  }

  /**
   * Writes the first writes of `batch` as one batch (planBatch) and makes them durable; returns the rest.
   * When the disk refuses it, undoes it (undoRefused) and rejects with StorageFullError.
   */
  private async writeBatch(batch: PendingWrite[]): Promise<PendingWrite[]> {
    const plan = this.planBatch(batch);
    const group = batch.slice(0, plan.count);
    const rest = batch.slice(plan.count);
    const done: PendingWrite[] = [];
    try {
      for (const w of group) {
        if (!w.before) continue;
        await w.before();
        done.push(w);
      }
    } catch (err) {
      if (!isStorageFull(err)) throw err;
      await this.undoBefore(done);
      throw err;
    }
    /** Bytes left out at the start of each write's buffer: the lead's Truncate record, when rebased. */
    const skip = (k: number): number => (k === 0 && plan.rebase ? TRUNCATE_RECORD_SIZE : 0);
    const buffers: Buffer[] = [];
    let bytes = 0;
    let records = 0;
    for (let k = 0; k < group.length; k++) {
      const w = group[k];
      if (!w.buf) continue;
      buffers.push(skip(k) > 0 ? w.buf.subarray(skip(k)) : w.buf);
      bytes += w.buf.length - skip(k);
      records += w.records - (skip(k) > 0 ? 1 : 0);
    }
    if (records === 0) {
      for (const w of group) w.resolve();
      return rest;
    }
    const batchEnd = encodeRecord(RecordType.BatchEnd, encodeBatchEnd(records));
    buffers.push(batchEnd);
    bytes += batchEnd.length;

    const started = process.hrtime.bigint();
    let segment = this.active;
    let headerEnd = this.activeHeaderEnd;
    const sizeBefore = segment.size;
    let created: WalSegment | undefined;
    try {
      if (plan.roll) {
        // Roll over: the new segment's header batch goes out with this batch, under the same fsync. Its
        // prevTerm is known: a rebase point is above the commit index, so entry start - 1 is at or after
        // first - 1. The segment becomes the active one only once durable, so a refused roll-over leaves
        // nothing to undo in memory.
        const prevTerm = this.index.term(plan.start - 1);
        segment = created = await WalSegment.create(this.dir, this.active.seq + 1, plan.start, this.syncMethod);
        const header = this.headerBatch(segment, prevTerm);
        buffers.unshift(header);
        bytes += header.length;
        headerEnd = header.length;
      }
      await segment.appendDurably(buffers, bytes);
    } catch (err) {
      if (!isStorageFull(err)) {
        created?.close(); // not registered yet: close() would not close it; the file is left for recovery
        throw err;
      }
      await this.undoRefused(plan.roll, created, sizeBefore, done);
      throw err;
    }
    if (plan.roll) {
      this.segments.set(segment.seq, segment);
      this.lowRefs.set(segment.seq, { minTruncate: Infinity, hasReset: false });
      this.active = segment;
      this.activeHeaderEnd = headerEnd;
      await fsyncDir(this.dir); // the new file's name must be durable too
    }
    this.reportFsync(Number(process.hrtime.bigint() - started) / 1e9, bytes);
    if (this.full) {
      this.full = false;
      this.reportFull(false);
    }
    let position = plan.roll ? headerEnd : sizeBefore;

    // Durable: make it visible, then tell the callers.
    const refs = this.lowRefs.get(segment.seq) as SegmentLowRefs;
    for (let k = 0; k < group.length; k++) {
      const w = group[k];
      if (!w.buf) continue;
      if (w.truncateFrom !== undefined) {
        this.index.truncateFrom(w.truncateFrom);
        this.cache.truncateFrom(w.truncateFrom);
        if (skip(k) === 0 && !refs.hasReset) refs.minTruncate = Math.min(refs.minTruncate, w.truncateFrom);
      }
      if (w.snapshot) this.applySnapshot(w.snapshot.metadata, w.snapshot.mode, refs);
      for (let e = 0; e < w.entries.length; e++) {
        const entry = w.entries[e];
        this.index.append(entry.index, entry.term, segment.seq, position + w.offsets[e] - skip(k), entry.data.length);
        // Cache a view of the bytes just written rather than the caller's array, which may be a view of a
        // much larger buffer (a network message) that the cache would otherwise keep alive.
        const at = w.offsets[e] + HEADER_SIZE + ENTRY_FIXED;
        this.cache.append({ index: entry.index, term: entry.term, type: entry.type, data: w.buf.subarray(at, at + entry.data.length) });
      }
      if (w.hardState) this.hardState = w.hardState;
      if (w.confState) this.confState = w.confState;
      position += w.buf.length - skip(k);
    }
    for (const w of group) w.resolve();
    return rest;
  }

  /**
   * Undoes a batch the disk refused (nothing of it was acknowledged): the active segment is cut back to
   * `sizeBefore`, or, on a roll-over, the segment created for it (if its creation got that far) is deleted
   * and the directory fsynced, so that it does not come back after a crash; then the writes' `before` steps
   * are undone. Any failure here is fatal: the log's end on disk would be unknown.
   */
  private async undoRefused(roll: boolean, created: WalSegment | undefined, sizeBefore: number, done: PendingWrite[]): Promise<void> {
    if (!roll) {
      await this.active.truncateTo(sizeBefore);
    } else if (created) {
      await created.discard();
      await fsyncDir(this.dir);
    }
    await this.undoBefore(done);
  }

  private async undoBefore(done: PendingWrite[]): Promise<void> {
    for (let k = done.length - 1; k >= 0; k--) await done[k].undo?.();
  }

  /** A durable Snapshot record takes effect (the same rules as recovery's). */
  private applySnapshot(metadata: SnapshotMetadata, mode: SnapshotMode, refs: SegmentLowRefs): void {
    if (mode === SnapshotMode.Reset) {
      this.index.reset(metadata.index + 1, metadata.term);
      this.cache.clear(metadata.index + 1);
      this.hardState = { ...this.hardState, commit: metadata.index };
      this.confState = metadata.confState;
      refs.hasReset = true;
    }
    this.snapshot = metadata;
    const last = this.recorded[this.recorded.length - 1];
    if (!last || last.index !== metadata.index || last.term !== metadata.term) {
      this.recorded.push({ index: metadata.index, term: metadata.term });
    }
  }

  /**
   * The first batch of every segment: header, then the current hard state, configuration and newest snapshot
   * (in Keep mode), so that the newest segments alone describe the state once older ones are deleted.
   * `prevTerm` is the term of entry segment.firstIndex - 1.
   */
  private headerBatch(segment: WalSegment, prevTerm: number): Buffer {
    const records = [
      encodeRecord(
        RecordType.SegmentHeader,
        encodeSegmentHeader({ seq: segment.seq, firstIndex: segment.firstIndex, prevTerm }),
      ),
      encodeRecord(RecordType.HardState, encodeHardState(this.hardState)),
      encodeRecord(RecordType.ConfState, encodeConfState(this.confState)),
    ];
    if (this.snapshot) {
      records.push(encodeRecord(RecordType.Snapshot, encodeSnapshotRecord({ metadata: this.snapshot, mode: SnapshotMode.Keep })));
    }
    records.push(encodeRecord(RecordType.BatchEnd, encodeBatchEnd(records.length)));
    return Buffer.concat(records);
  }

  private reportFsync(seconds: number, bytes: number): void {
    try {
      this.options.onFsync?.(seconds, bytes);
    } catch {
      // metrics must never break durability
    }
  }

  private refusal(): Error | undefined {
    if (this.closed) return new WalClosedError(this.dir);
    return this.failure;
  }

  private segmentFor(seq: number): WalSegment {
    if (this.closed) throw new WalClosedError(this.dir);
    const segment = this.segments.get(seq);
    if (!segment) throw new Error(`no segment ${seq} in ${this.dir}`);
    return segment;
  }

  private closeSegments(): void {
    for (const segment of this.segments.values()) segment.close();
  }
}

function copySnapshotMetadata(m: SnapshotMetadata): SnapshotMetadata {
  const cs = m.confState;
  return {
    index: m.index,
    term: m.term,
    confState: { voters: [...cs.voters], ...(cs.learners?.length ? { learners: [...cs.learners] } : {}) },
  };
}

function checkU64(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative safe integer, got ${value}`);
}

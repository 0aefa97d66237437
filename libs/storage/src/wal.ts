import { ConfState, Entry, EntryType, HardState, Storage } from '@app/consensus/core';
import { Logger } from '@nestjs/common';
import { resolve } from 'node:path';
import { DirLock } from './dir-lock';
import { ensureDir, fsyncDir } from './durable-fs';
import { WalClosedError, WalFailedError } from './errors';
import { LogIndex } from './log-index';
import { readMeta, WalMeta, writeMeta } from './meta-file';
import { PayloadCache } from './payload-cache';
import { encodeRecord, HEADER_SIZE, MAX_PAYLOAD, RecordType, sealRecord } from './record';
import {
  encodeBatchEnd,
  encodeConfState,
  encodeHardState,
  encodeSegmentHeader,
  encodeTruncate,
  ENTRY_FIXED,
  entryRecordSize,
  writeEntryRecord,
} from './record-payloads';
import { recoverLog } from './wal-recovery';
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

/** One save() or setConfState() waiting for the next batch. */
interface PendingWrite {
  /** Its records, back to back (undefined for a save with nothing to write, which only waits). */
  buf?: Buffer;
  records: number;
  truncateFrom?: number;
  entries: Entry[];
  /** Offset of each entry's record inside `buf`. */
  offsets: number[];
  hardState?: HardState;
  confState?: ConfState;
  resolve: () => void;
  reject: (err: unknown) => void;
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
 * Failure: a failed write or fsync puts the Wal in a failed state for good: the failed saves and every later
 * one reject with WalFailedError. Retrying is unsafe: after a failed fsync Linux may have dropped the dirty
 * pages and marked them clean, so a second fsync can "succeed" with the data lost. The process must restart
 * and recover from what the disk really holds.
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
  private metaValue: WalMeta | undefined;

  // The log as it will be once every queued write is durable: saves are checked against it.
  private tailLast = 0;
  private tailCommit = 0;
  private tailTerm = 0;

  private queue: PendingWrite[] = [];
  private flushing = false;
  private readonly drainWaiters: Array<() => void> = [];
  private failure?: WalFailedError;
  private closed = false;
  private closing?: Promise<void>;
  private metaChain: Promise<void> = Promise.resolve();

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

  /** The metadata last written with setMeta(), or undefined if there is none. */
  get meta(): WalMeta | undefined {
    return this.metaValue;
  }

  /**
   * Appends `entries` and `hardState` (either may be absent) and resolves once they are durable; only then
   * do they show in `storage`. If entries[0].index is at or below the last index, the log's suffix from
   * there is discarded first (a Truncate record: nothing already written is rewritten).
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
   * Replaces the metadata file durably and atomically (write `meta.json.tmp`, fsync, rename, fsync the
   * directory). Calls are applied in order.
   */
  setMeta(meta: WalMeta): Promise<void> {
    if (this.closed) return Promise.reject(new WalClosedError(this.dir));
    const copy = JSON.parse(JSON.stringify(meta)) as WalMeta;
    const run = this.metaChain.then(() => writeMeta(this.dir, copy)).then(() => {
      this.metaValue = copy;
    });
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
    this.closeSegments();
    await this.lock.release();
  }

  private async recover(): Promise<void> {
    this.metaValue = await readMeta(this.dir);
    const result = await recoverLog(this.dir, this.index, this.logger);
    this.hardState = result.hardState;
    this.confState = result.confState;
    const { segments } = result;
    for (let k = 0; k < segments.length; k++) {
      const isLast = k === segments.length - 1;
      const segment = await WalSegment.open(this.dir, segments[k], segments[k].size, isLast ? this.syncMethod : undefined);
      this.segments.set(segment.seq, segment);
      if (isLast) {
        this.active = segment;
        this.activeHeaderEnd = segments[k].headerEnd;
      }
    }
    if (segments.length === 0) {
      // A new log: its first segment, made durable (file and directory entry) before anyone relies on it.
      const segment = await WalSegment.create(this.dir, 1, this.index.last + 1, this.syncMethod);
      const header = this.headerBatch(segment);
      await segment.appendDurably([header], header.length);
      await fsyncDir(this.dir);
      this.segments.set(segment.seq, segment);
      this.active = segment;
      this.activeHeaderEnd = header.length;
    }
    this.warmCache();
    this.tailLast = this.index.last;
    this.tailCommit = this.hardState.commit;
    this.tailTerm = this.hardState.term;
    this.logger.log(
      `opened ${this.dir}: entries [${this.index.first}, ${this.index.last}], term ${this.hardState.term}, ` +
        `commit ${this.hardState.commit}, ${this.segments.size} segment(s)`,
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
      if (first < this.index.first || first > this.tailLast + 1) {
        throw new RangeError(`entries start at ${first}; the log holds [${this.index.first}, ${this.tailLast}]`);
      }
      if (first <= this.tailCommit) {
        throw new RangeError(`entry ${first} would overwrite a committed entry (commit ${this.tailCommit})`);
      }
      if (first <= this.tailLast) {
        truncateFrom = first;
        size += HEADER_SIZE + 8;
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
      try {
        await this.writeBatch(batch);
      } catch (err) {
        this.failure = new WalFailedError(err);
        this.logger.error(this.failure.message);
        for (const w of batch) w.reject(this.failure);
      }
    }
    this.flushing = false;
    for (const done of this.drainWaiters.splice(0)) done();
  }

  private async writeBatch(batch: PendingWrite[]): Promise<void> {
    const buffers: Buffer[] = [];
    let bytes = 0;
    let records = 0;
    for (const w of batch) {
      if (!w.buf) continue;
      buffers.push(w.buf);
      bytes += w.buf.length;
      records += w.records;
    }
    if (records === 0) {
      for (const w of batch) w.resolve();
      return;
    }
    const batchEnd = encodeRecord(RecordType.BatchEnd, encodeBatchEnd(records));
    buffers.push(batchEnd);
    bytes += batchEnd.length;

    const started = process.hrtime.bigint();
    let rolled = false;
    if (this.active.size > this.activeHeaderEnd && this.active.size + bytes > this.segmentSize) {
      // Roll over: the new segment's header batch goes out with this batch, under the same fsync.
      const segment = await WalSegment.create(this.dir, this.active.seq + 1, this.index.last + 1, this.syncMethod);
      this.segments.set(segment.seq, segment);
      this.active = segment;
      const header = this.headerBatch(segment);
      buffers.unshift(header);
      bytes += header.length;
      this.activeHeaderEnd = header.length;
      rolled = true;
    }
    const segment = this.active;
    let position = segment.size + (rolled ? this.activeHeaderEnd : 0);
    await segment.appendDurably(buffers, bytes);
    if (rolled) await fsyncDir(this.dir); // the new file's name must be durable too
    this.reportFsync(Number(process.hrtime.bigint() - started) / 1e9, bytes);

    // Durable: make it visible, then tell the callers.
    for (const w of batch) {
      if (!w.buf) continue;
      if (w.truncateFrom !== undefined) {
        this.index.truncateFrom(w.truncateFrom);
        this.cache.truncateFrom(w.truncateFrom);
      }
      for (let k = 0; k < w.entries.length; k++) {
        const e = w.entries[k];
        this.index.append(e.index, e.term, segment.seq, position + w.offsets[k], e.data.length);
        // Cache a view of the bytes just written rather than the caller's array, which may be a view of a
        // much larger buffer (a network message) that the cache would otherwise keep alive.
        const at = w.offsets[k] + HEADER_SIZE + ENTRY_FIXED;
        this.cache.append({ index: e.index, term: e.term, type: e.type, data: w.buf.subarray(at, at + e.data.length) });
      }
      if (w.hardState) this.hardState = w.hardState;
      if (w.confState) this.confState = w.confState;
      position += w.buf.length;
    }
    for (const w of batch) w.resolve();
  }

  /** The first batch of every segment: header, then the current hard state and configuration. */
  private headerBatch(segment: WalSegment): Buffer {
    const last = this.index.last;
    return Buffer.concat([
      encodeRecord(
        RecordType.SegmentHeader,
        encodeSegmentHeader({ seq: segment.seq, firstIndex: segment.firstIndex, prevTerm: this.index.term(last) }),
      ),
      encodeRecord(RecordType.HardState, encodeHardState(this.hardState)),
      encodeRecord(RecordType.ConfState, encodeConfState(this.confState)),
      encodeRecord(RecordType.BatchEnd, encodeBatchEnd(3)),
    ]);
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

function checkU64(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative safe integer, got ${value}`);
}

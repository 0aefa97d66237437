import type { ConfState, HardState, SnapshotMetadata } from '@app/consensus/core';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileIo, fsyncDir } from './durable-fs';
import { WalCorruptionError } from './errors';
import { LogIndex } from './log-index';
import { decodeRecord, findNextRecord, RecordType } from './record';
import {
  decodeBatchEnd,
  decodeConfState,
  decodeEntryHeader,
  decodeHardState,
  decodeSegmentHeader,
  decodeSnapshotRecord,
  decodeTruncate,
  PayloadError,
  SegmentHeader,
  SnapshotMode,
  SnapshotRecord,
} from './record-payloads';
import { listSegments, SegmentName, segmentFileName } from './wal-segment';

/**
 * What compaction needs to know about a segment's records, besides its name (wal-compaction.ts): whether a
 * reader starting at this segment could meet a record that refers to entries before the segment's start.
 */
export interface SegmentLowRefs {
  /** Lowest index of a Truncate record written before the segment's first Reset snapshot (Infinity: none). */
  minTruncate: number;
  /** The segment holds a Snapshot record in Reset mode (everything before it was discarded). */
  hasReset: boolean;
}

export interface RecoveredSegment extends SegmentName, SegmentLowRefs {
  /** Bytes of intact, complete batches: the file's length after recovery. */
  size: number;
  /** End of the segment's first batch (its header batch). */
  headerEnd: number;
}

export interface RecoveryResult {
  /** The surviving segments, in order; the last is the one to append to. Empty for a new log. */
  segments: RecoveredSegment[];
  hardState: HardState;
  confState: ConfState;
  /** The newest snapshot the log records, if any. */
  snapshot: SnapshotMetadata | undefined;
  /** Every snapshot the surviving segments record (index and term), oldest first. */
  recordedSnapshots: Array<{ index: number; term: number }>;
}

/** The subset of a logger recovery uses. */
export interface RecoveryLogger {
  warn(message: string): void;
}

type Staged =
  | { type: RecordType.SegmentHeader; offset: number; value: SegmentHeader }
  | { type: RecordType.Entry; offset: number; value: { index: number; term: number; dataLength: number } }
  | { type: RecordType.HardState; offset: number; value: HardState }
  | { type: RecordType.ConfState; offset: number; value: ConfState }
  | { type: RecordType.Truncate; offset: number; value: number }
  | { type: RecordType.Snapshot; offset: number; value: SnapshotRecord };

/**
 * Rebuilds the durable state from the segments in `dir` into `index` (docs/storage.md,
 * "Recovery"). Each segment is read whole and replayed batch by batch: a batch takes effect at its BatchEnd
 * record, all of it at once.
 *
 * The one damage a crash explains is at the end of the last segment: an incomplete or invalid record, or
 * records without their BatchEnd, with no intact record after them. That torn tail is cut off (file
 * truncated to the last complete batch and fsynced; a last segment left with no complete batch is deleted)
 * and reported through `logger.warn`. Any other damage, and any logical inconsistency, throws
 * WalCorruptionError naming the file and the offset.
 */
export async function recoverLog(
  dir: string,
  index: LogIndex,
  logger: RecoveryLogger,
): Promise<RecoveryResult> {
  const names = await listSegments(dir);
  for (let k = 1; k < names.length; k++) {
    if (names[k].seq !== names[k - 1].seq + 1) {
      throw new WalCorruptionError(
        join(dir, names[k].name),
        0,
        `segment ${names[k - 1].seq + 1} is missing: ${names[k - 1].name} is followed by ${names[k].name}`,
      );
    }
  }
  const replay = new Replay(index);
  const segments: RecoveredSegment[] = [];
  for (let k = 0; k < names.length; k++) {
    const name = names[k];
    const path = join(dir, name.name);
    const isLast = k === names.length - 1;
    const buf = await fs.promises.readFile(path);
    const scan = replay.segment(buf, name, path, isLast);
    if (scan.tornAt !== undefined) {
      const discarded = buf.length - scan.size;
      if (scan.size === 0) {
        await fs.promises.unlink(path);
        await fsyncDir(dir);
        logger.warn(
          `torn write at the end of the write-ahead log: ${path} holds no complete batch (${scan.reason} at offset ` +
            `${scan.tornAt}); deleted it (${discarded} bytes). Expected after a crash while a segment was being created.`,
        );
        continue;
      }
      await truncateFile(path, scan.size);
      logger.warn(
        `torn write at the end of the write-ahead log: ${path}: ${scan.reason} at offset ${scan.tornAt}; ` +
          `discarded ${discarded} bytes after the last complete batch, which ends at offset ${scan.size}. ` +
          'Expected after a crash: that batch was never reported durable.',
      );
    }
    segments.push({ ...name, size: scan.size, headerEnd: scan.headerEnd, ...scan.lowRefs });
  }
  const { snapshot } = replay;
  if (index.first > 1 && (!snapshot || snapshot.index < index.first - 1)) {
    throw new WalCorruptionError(
      join(dir, segments[0].name),
      0,
      `the log starts at entry ${index.first} but ${snapshot ? `the newest snapshot it records is at ${snapshot.index}` : 'it records no snapshot'}: ` +
        `entries before ${index.first} are missing`,
    );
  }
  return {
    segments,
    hardState: replay.hardState,
    confState: replay.confState,
    snapshot,
    recordedSnapshots: replay.recorded,
  };
}

interface SegmentScan {
  size: number;
  headerEnd: number;
  lowRefs: SegmentLowRefs;
  /** Set when the segment ends with a torn write, cut at `size`. */
  tornAt?: number;
  reason?: string;
}

class Replay {
  hardState: HardState = { term: 0, vote: '', commit: 0 };
  confState: ConfState = { voters: [] };
  snapshot: SnapshotMetadata | undefined;
  readonly recorded: Array<{ index: number; term: number }> = [];
  private started = false;
  private lowRefs: SegmentLowRefs = { minTruncate: Infinity, hasReset: false };

  constructor(private readonly index: LogIndex) {}

  segment(buf: Buffer, name: SegmentName, path: string, isLast: boolean): SegmentScan {
    const corrupt = (offset: number, reason: string): WalCorruptionError => new WalCorruptionError(path, offset, reason);
    let p = 0;
    let committed = 0;
    let headerEnd = 0;
    let staged: Staged[] = [];
    let damage: string | undefined;
    const lowRefs: SegmentLowRefs = { minTruncate: Infinity, hasReset: false };
    this.lowRefs = lowRefs;
    while (p < buf.length) {
      const rec = decodeRecord(buf, p);
      if (!rec.ok) {
        damage = rec.reason;
        break;
      }
      if ((p === 0) !== (rec.type === RecordType.SegmentHeader)) {
        throw corrupt(p, p === 0 ? 'segment does not start with a segment header' : 'segment header in mid-segment');
      }
      try {
        if (rec.type === RecordType.BatchEnd) {
          const count = decodeBatchEnd(rec.payload);
          if (count !== staged.length) {
            throw corrupt(p, `batch end counts ${count} records, the batch has ${staged.length}`);
          }
          this.apply(staged, name, corrupt);
          staged = [];
          committed = rec.end;
          if (headerEnd === 0) headerEnd = committed;
        } else {
          staged.push(decodeStaged(rec.type, rec.payload, p));
        }
      } catch (err) {
        if (err instanceof PayloadError) throw corrupt(p, err.message);
        throw err;
      }
      p = rec.end;
    }

    if (damage === undefined && staged.length === 0 && committed > 0) return { size: committed, headerEnd, lowRefs };
    const at = damage !== undefined ? p : staged.length > 0 ? staged[0].offset : 0;
    const reason = damage ?? (staged.length > 0 ? 'batch without its batch end record' : 'empty segment');
    if (!isLast) throw corrupt(at, `${reason}; only the last segment can end with a torn write`);
    if (damage !== undefined) {
      const later = laterBatchAfter(buf, p, staged.length + 1);
      if (later >= 0) {
        throw corrupt(p, `${reason}, yet a later batch follows (intact record at offset ${later}), so this is not a torn final write`);
      }
    }
    return { size: committed, headerEnd, lowRefs, tornAt: at, reason };
  }

  /** Applies one complete batch, checking it against the log so far. */
  private apply(batch: Staged[], name: SegmentName, corrupt: (o: number, r: string) => WalCorruptionError): void {
    const { index } = this;
    for (const rec of batch) {
      switch (rec.type) {
        case RecordType.SegmentHeader: {
          const h = rec.value;
          if (h.seq !== name.seq || h.firstIndex !== name.firstIndex) {
            throw corrupt(rec.offset, `header says ${segmentFileName(h.seq, h.firstIndex)}, the file is ${name.name}`);
          }
          if (!this.started) {
            index.reset(h.firstIndex, h.prevTerm);
            this.started = true;
          } else {
            this.continueAt(h, rec.offset, corrupt);
          }
          break;
        }
        case RecordType.Entry: {
          const e = rec.value;
          if (e.index !== index.last + 1) {
            throw corrupt(rec.offset, `entry ${e.index} does not follow the last index ${index.last}`);
          }
          if (e.term < index.term(index.last)) {
            throw corrupt(rec.offset, `entry ${e.index} has term ${e.term}, lower than its predecessor's`);
          }
          index.append(e.index, e.term, name.seq, rec.offset, e.dataLength);
          break;
        }
        case RecordType.Truncate: {
          const from = rec.value;
          if (from < index.first || from > index.last + 1) {
            throw corrupt(rec.offset, `truncation at ${from} outside the log [${index.first}, ${index.last}]`);
          }
          if (from <= this.hardState.commit) {
            throw corrupt(rec.offset, `truncation at ${from} would discard committed entries (commit ${this.hardState.commit})`);
          }
          index.truncateFrom(from);
          if (!this.lowRefs.hasReset) this.lowRefs.minTruncate = Math.min(this.lowRefs.minTruncate, from);
          break;
        }
        case RecordType.Snapshot:
          this.applySnapshot(rec.value, rec.offset, corrupt);
          break;
        case RecordType.HardState:
          this.hardState = rec.value;
          break;
        case RecordType.ConfState:
          this.confState = rec.value;
          break;
      }
    }
    if (this.hardState.commit > index.last) {
      throw corrupt(batch[batch.length - 1]?.offset ?? 0, `commit ${this.hardState.commit} beyond the last index ${index.last}`);
    }
  }

  /**
   * The header of a segment after the first one read. Its first index F says where the log continues: right
   * after the last entry (F = last + 1), or, for a rebased segment (written when a save discarded entries
   * below the active segment's start), lower: the entries from F on are discarded, as by a Truncate record.
   * Where the log holds entry F - 1, its term must be the header's prevTerm. F below the first index happens
   * when reading starts after deleted segments (compaction): the segment read first held entries that this
   * one discards, and the log restarts at F after prevTerm, as from a first segment.
   */
  private continueAt(h: SegmentHeader, offset: number, corrupt: (o: number, r: string) => WalCorruptionError): void {
    const { index } = this;
    const from = h.firstIndex;
    if (from > index.last + 1) {
      throw corrupt(
        offset,
        `segment continues the log at index ${from}, but the previous segments end at index ${index.last}: ` +
          `entries ${index.last + 1} to ${from - 1} are missing`,
      );
    }
    if (from <= index.last && from <= this.hardState.commit) {
      throw corrupt(offset, `segment restarts the log at index ${from}, which would discard committed entries (commit ${this.hardState.commit})`);
    }
    if (from < index.first) {
      index.reset(from, h.prevTerm);
      return;
    }
    if (h.prevTerm !== index.term(from - 1)) {
      throw corrupt(
        offset,
        `segment continues the log at index ${from} after an entry of term ${h.prevTerm}, but entry ${from - 1} ` +
          `has term ${index.term(from - 1)}`,
      );
    }
    index.truncateFrom(from);
  }

  /**
   * A Snapshot record. Keep: the log is untouched, and the entry it names must have its term wherever the log
   * still holds it (below the log's start it was compacted: nothing to check). Reset: every entry is
   * discarded and the log restarts right after the snapshot, which becomes committed.
   */
  private applySnapshot(r: SnapshotRecord, offset: number, corrupt: (o: number, r: string) => WalCorruptionError): void {
    const { index } = this;
    const { index: s, term: t } = r.metadata;
    const prev = this.snapshot;
    if (prev && (s < prev.index || (s === prev.index && t !== prev.term))) {
      throw corrupt(offset, `snapshot (${s}, term ${t}) recorded after the newer snapshot (${prev.index}, term ${prev.term})`);
    }
    if (r.mode === SnapshotMode.Keep) {
      if (s > index.last) throw corrupt(offset, `snapshot of entry ${s}, beyond the last index ${index.last}`);
      if (s >= index.first - 1 && index.term(s) !== t) {
        throw corrupt(offset, `snapshot (${s}, term ${t}), but entry ${s} has term ${index.term(s)}`);
      }
    } else {
      if (this.hardState.commit > s) {
        throw corrupt(offset, `installed snapshot at ${s} would discard committed entries (commit ${this.hardState.commit})`);
      }
      index.reset(s + 1, t);
      this.hardState = { ...this.hardState, commit: s };
      this.confState = r.metadata.confState;
      this.lowRefs.hasReset = true;
    }
    this.snapshot = r.metadata;
    const last = this.recorded[this.recorded.length - 1];
    if (!last || last.index !== s || last.term !== t) this.recorded.push({ index: s, term: t });
  }
}

/**
 * After damage at `p` in the last segment, looks for proof that a later batch was written: then the damaged
 * batch had been fsynced before it (batches are written one after the other, each after the previous one's
 * fsync), so the damage is not a torn write. The proof is an intact record after the first intact BatchEnd
 * following `p`, or that BatchEnd itself when it counts fewer records than the damaged batch already has
 * (`seen`: its records before `p`, the damaged one, and the intact ones between). Returns the offset of the
 * proof, or -1 when everything after `p` may belong to the damaged (final, torn) batch.
 */
function laterBatchAfter(buf: Buffer, p: number, seen: number): number {
  let q = findNextRecord(buf, p + 1);
  while (q >= 0) {
    const rec = decodeRecord(buf, q);
    if (!rec.ok) return q; // cannot happen: findNextRecord returns intact records only
    if (rec.type === RecordType.BatchEnd) {
      let count = -1;
      try {
        count = decodeBatchEnd(rec.payload);
      } catch {
        // an intact record with a malformed payload: not something a torn write produces
      }
      if (count < seen) return q;
      return findNextRecord(buf, rec.end);
    }
    seen++;
    q = findNextRecord(buf, rec.end);
  }
  return -1;
}

function decodeStaged(type: RecordType, payload: Buffer, offset: number): Staged {
  switch (type) {
    case RecordType.SegmentHeader:
      return { type, offset, value: decodeSegmentHeader(payload) };
    case RecordType.Entry:
      return { type, offset, value: decodeEntryHeader(payload) };
    case RecordType.HardState:
      return { type, offset, value: decodeHardState(payload) };
    case RecordType.ConfState:
      return { type, offset, value: decodeConfState(payload) };
    case RecordType.Truncate:
      return { type, offset, value: decodeTruncate(payload) };
    case RecordType.Snapshot:
      return { type, offset, value: decodeSnapshotRecord(payload) };
    default:
      throw new PayloadError(`unexpected record type ${type}`);
  }
}

async function truncateFile(path: string, size: number): Promise<void> {
  const handle = await fs.promises.open(path, 'r+');
  try {
    await handle.truncate(size);
    await fileIo.fsync(handle.fd);
  } finally {
    await handle.close();
  }
}

import {
  CompactedError,
  ConfState,
  Entry,
  HardState,
  Snapshot,
  SnapshotMetadata,
  Storage,
  UnavailableError,
} from '@app/consensus/core';
import { WalCorruptionError } from './errors';
import { LogIndex } from './log-index';
import { PayloadCache } from './payload-cache';
import { decodeRecord, HEADER_SIZE, RecordType } from './record';
import { decodeEntry, ENTRY_FIXED, PayloadError } from './record-payloads';
import { WalSegment } from './wal-segment';

/** Entry record size beyond its data: record header + index, term, type. */
const ENTRY_RECORD_OVERHEAD = HEADER_SIZE + ENTRY_FIXED;
/** Consecutive records of one segment are read with one pread up to this span. */
const MAX_READ_SPAN = 4 * 1024 * 1024;

/** What the WAL has made durable, as WalStorage reads it. The Wal updates it only after an fsync. */
export interface DurableLog {
  readonly index: LogIndex;
  readonly cache: PayloadCache;
  readonly hardState: HardState;
  readonly confState: ConfState;
  /** The newest snapshot recorded in the log, if any. */
  readonly snapshot: SnapshotMetadata | undefined;
  /** The segment with sequence `seq`; throws WalClosedError once the Wal is closed. */
  segment(seq: number): WalSegment;
}

/**
 * The Raft core's synchronous view of the durable log (the `Storage` contract of @app/consensus). Recent
 * entries come from the payload cache; older ones are re-read from their segment with a positional read and
 * their checksum verified again (damage found then throws WalCorruptionError).
 *
 * Returned entries and their data are shared, not copied: callers must not modify them.
 */
export class WalStorage implements Storage {
  constructor(private readonly log: DurableLog) {}

  initialState(): { hardState: HardState; confState: ConfState } {
    const { hardState, confState } = this.log;
    return { hardState: { ...hardState }, confState: copyConfState(confState) };
  }

  firstIndex(): number {
    return this.log.index.first;
  }

  lastIndex(): number {
    return this.log.index.last;
  }

  term(i: number): number {
    const { index } = this.log;
    if (i < index.first - 1) throw new CompactedError(i);
    if (i > index.last) throw new UnavailableError(i);
    return index.term(i);
  }

  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    const { index, cache } = this.log;
    if (lo < index.first) throw new CompactedError(lo);
    if (hi > index.last + 1) throw new UnavailableError(hi - 1);
    if (lo >= hi) return [];

    // The size limit first, from the index alone: at least one entry, then while the data fits.
    let end = lo + 1;
    if (maxBytes === undefined || maxBytes === Infinity) {
      end = hi;
    } else {
      let size = index.dataLength(lo);
      while (end < hi && size + index.dataLength(end) <= maxBytes) size += index.dataLength(end++);
    }

    const out: Entry[] = [];
    let i = lo;
    while (i < end) {
      const cached = cache.get(i);
      if (cached) {
        out.push(cached);
        i++;
        continue;
      }
      let j = i + 1;
      while (j < end && !cache.get(j)) j++;
      this.readFromDisk(i, j, out);
      i = j;
    }
    return out;
  }

  /**
   * The newest snapshot recorded in the log (its metadata; the content is in its snapshot file, so `data` is
   * empty), or index 0 when there is none. Compaction is by whole segments, so firstIndex() - 1 may be below
   * its index: the log may still hold entries the snapshot covers.
   */
  snapshot(): Snapshot {
    const snap = this.log.snapshot;
    const metadata = snap
      ? { index: snap.index, term: snap.term, confState: copyConfState(snap.confState) }
      : { index: 0, term: 0, confState: this.initialState().confState };
    return { metadata, data: new Uint8Array(0) };
  }

  /** Reads entries [lo, hi), grouping neighbours of one segment into a single read. */
  private readFromDisk(lo: number, hi: number, out: Entry[]): void {
    const { index } = this.log;
    const recordEnd = (k: number): number => index.offset(k) + ENTRY_RECORD_OVERHEAD + index.dataLength(k);
    let i = lo;
    while (i < hi) {
      const seq = index.seq(i);
      const start = index.offset(i);
      let j = i + 1;
      while (j < hi && index.seq(j) === seq && index.offset(j) > index.offset(j - 1) && recordEnd(j) - start <= MAX_READ_SPAN) {
        j++;
      }
      const segment = this.log.segment(seq);
      const buf = segment.readSync(start, recordEnd(j - 1) - start);
      for (let k = i; k < j; k++) out.push(this.decodeAt(segment, buf, index.offset(k) - start, start, k));
      i = j;
    }
  }

  private decodeAt(segment: WalSegment, buf: Buffer, at: number, base: number, expectedIndex: number): Entry {
    const offset = base + at;
    const rec = decodeRecord(buf, at);
    if (!rec.ok) throw new WalCorruptionError(segment.path, offset, `on re-read: ${rec.reason}`);
    if (rec.type !== RecordType.Entry) {
      throw new WalCorruptionError(segment.path, offset, `on re-read: expected an entry record, found type ${rec.type}`);
    }
    let entry: Entry;
    try {
      entry = decodeEntry(rec.payload);
    } catch (err) {
      if (err instanceof PayloadError) throw new WalCorruptionError(segment.path, offset, `on re-read: ${err.message}`);
      throw err;
    }
    if (entry.index !== expectedIndex || entry.term !== this.log.index.term(expectedIndex)) {
      throw new WalCorruptionError(
        segment.path,
        offset,
        `on re-read: expected entry ${expectedIndex}, found entry ${entry.index} of term ${entry.term}`,
      );
    }
    // Copy the data out of the read buffer, which holds neighbours the caller may not keep.
    return { ...entry, data: Buffer.from(entry.data) };
  }
}

function copyConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], ...(cs.learners ? { learners: [...cs.learners] } : {}) };
}

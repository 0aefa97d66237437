import { Entry, Snapshot } from './types';

/**
 * The tail of the log not yet known to be durable: a snapshot received from the leader (if any) and the
 * entries the driver has not persisted. ready() hands them out ("in progress"); advance() moves them to
 * stable storage.
 *
 * Entries live in `buf` from `head` on, so dropping the persisted prefix is O(1) amortized rather than a
 * copy of the remaining tail. `offset` is the index of the first unstable entry; entries below
 * `offsetInProgress` were handed out in a Ready that is not acknowledged yet.
 */
export class Unstable {
  snapshot: Snapshot | undefined;
  snapshotInProgress = false;
  offset: number;
  offsetInProgress: number;
  private buf: Entry[] = [];
  private head = 0;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  get length(): number {
    return this.buf.length - this.head;
  }

  /** Index of the first entry if it is known from the unstable snapshot. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  /** Last index if there is at least one unstable entry or a snapshot. */
  maybeLastIndex(): number | undefined {
    const n = this.length;
    if (n > 0) return this.offset + n - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  /** Term of entry i if this tail knows it. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const k = i - this.offset;
    if (k >= this.length) return undefined;
    return this.buf[this.head + k].term;
  }

  /** Entries not yet handed out in a Ready. */
  nextEntries(): Entry[] {
    const from = this.offsetInProgress - this.offset;
    if (from >= this.length) return [];
    return this.buf.slice(this.head + from);
  }

  hasNextEntries(): boolean {
    return this.offsetInProgress - this.offset < this.length;
  }

  nextSnapshot(): Snapshot | undefined {
    return this.snapshot && !this.snapshotInProgress ? this.snapshot : undefined;
  }

  /** Marks everything currently unstable as handed out (called when a Ready is built). */
  acceptInProgress(): void {
    if (this.length > 0) this.offsetInProgress = this.offset + this.length;
    if (this.snapshot) this.snapshotInProgress = true;
  }

  /**
   * Entries up to (index, term) are durable. Ignored when the entry was meanwhile overwritten (its term
   * differs) or is already stable: a Ready's entries may be replaced by a newer leader before advance().
   */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    if (t === undefined || index < this.offset || t !== term) return;
    const n = index + 1 - this.offset;
    this.head += n;
    this.offset = index + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
    if (this.head === this.buf.length) {
      this.buf = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.buf.length) {
      this.buf = this.buf.slice(this.head);
      this.head = 0;
    }
  }

  /** The snapshot at `index` is durable. Ignored when it was meanwhile replaced by a newer one. */
  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.metadata.index === index) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  /**
   * Replaces the tail with a snapshot (InstallSnapshot): the log now ends at its index, entries follow from
   * index + 1 on, and the snapshot is to be handed out in the next Ready.
   */
  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.buf = [];
    this.head = 0;
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  /**
   * Appends consecutive entries, first discarding any unstable entries at or after ents[0].index. The
   * caller (RaftLog) guarantees ents[0].index <= lastIndex + 1 and that nothing committed is discarded.
   */
  truncateAndAppend(ents: readonly Entry[]): void {
    const from = ents[0].index;
    const n = this.length;
    if (from === this.offset + n) {
      // The common case: a plain append.
    } else if (from <= this.offset) {
      // Everything unstable is replaced; entries below `from` are in storage (or overwritten there).
      this.buf = [];
      this.head = 0;
      this.offset = from;
      this.offsetInProgress = from;
    } else {
      this.buf.length = this.head + (from - this.offset);
      if (this.offsetInProgress > from) this.offsetInProgress = from;
    }
    for (let i = 0; i < ents.length; i++) this.buf.push(ents[i]);
  }

  /** Entries [lo, hi) with offset <= lo <= hi <= offset + length. */
  slice(lo: number, hi: number): Entry[] {
    if (lo > hi) throw new Error(`invalid unstable.slice ${lo} > ${hi}`);
    const upper = this.offset + this.length;
    if (lo < this.offset || hi > upper) {
      throw new Error(`unstable.slice[${lo},${hi}) out of bound [${this.offset},${upper}]`);
    }
    return this.buf.slice(this.head + lo - this.offset, this.head + hi - this.offset);
  }
}

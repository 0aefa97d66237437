/**
 * Where each entry of the log lives: term, segment and byte offset of its record, and its data length. One
 * slot per entry in typed arrays (about 24 bytes an entry, whatever the payload size), so finding entry i
 * is O(1) and the memory is bounded by the entry count, not by the payloads.
 *
 * Covers the entries [first, last]; `prevTerm` is the term of entry first - 1 (0 on a log that starts at 1).
 * Entry i lives in slot `head + i - first`: compaction drops a prefix by moving `head`, and the live slots are
 * moved back to the start only once `head` passes half the capacity, so dropping costs O(1) amortised per
 * entry, not a copy of the whole arrays each time.
 */
export class LogIndex {
  private firstIndex = 1;
  private lastIndex = 0;
  private prev = 0;
  private head = 0;
  private capacity = 0;
  private terms = new Float64Array(0);
  private offsets = new Float64Array(0);
  private seqs = new Uint32Array(0);
  private lengths = new Uint32Array(0);

  get first(): number {
    return this.firstIndex;
  }

  get last(): number {
    return this.lastIndex;
  }

  get prevTerm(): number {
    return this.prev;
  }

  /** Empties the index; the next entry appended must be `firstIndex`. */
  reset(firstIndex: number, prevTerm: number): void {
    this.firstIndex = firstIndex;
    this.lastIndex = firstIndex - 1;
    this.prev = prevTerm;
    this.head = 0;
  }

  /** Appends entry `index`, which must be last + 1. */
  append(index: number, term: number, seq: number, offset: number, dataLength: number): void {
    if (index !== this.lastIndex + 1) throw new RangeError(`index ${index} does not follow last index ${this.lastIndex}`);
    let slot = this.head + index - this.firstIndex;
    if (slot >= this.capacity) {
      this.grow(index - this.firstIndex + 1);
      slot = index - this.firstIndex;
    }
    this.terms[slot] = term;
    this.offsets[slot] = offset;
    this.seqs[slot] = seq;
    this.lengths[slot] = dataLength;
    this.lastIndex = index;
  }

  /** Forgets the entries from `index` on (index in [first, last + 1]). */
  truncateFrom(index: number): void {
    if (index < this.firstIndex || index > this.lastIndex + 1) {
      throw new RangeError(`cannot truncate at ${index}: the index holds [${this.firstIndex}, ${this.lastIndex}]`);
    }
    this.lastIndex = index - 1;
  }

  /**
   * Forgets the entries before `index` (index in [first, last + 1]): the index then covers [index, last] and
   * remembers the term of entry index - 1 as prevTerm.
   */
  dropBefore(index: number): void {
    if (index < this.firstIndex || index > this.lastIndex + 1) {
      throw new RangeError(`cannot drop before ${index}: the index holds [${this.firstIndex}, ${this.lastIndex}]`);
    }
    if (index === this.firstIndex) return;
    this.prev = this.term(index - 1);
    this.head += index - this.firstIndex;
    this.firstIndex = index;
    if (this.head * 2 > this.capacity) {
      // At least capacity / 2 entries were dropped since the last move and at most capacity / 2 are live.
      const live = this.lastIndex - this.firstIndex + 1;
      const from = this.head;
      this.terms.copyWithin(0, from, from + live);
      this.offsets.copyWithin(0, from, from + live);
      this.seqs.copyWithin(0, from, from + live);
      this.lengths.copyWithin(0, from, from + live);
      this.head = 0;
    }
  }

  /** Term of entry i, for i in [first - 1, last]. */
  term(i: number): number {
    return i === this.firstIndex - 1 ? this.prev : this.terms[this.slot(i)];
  }

  seq(i: number): number {
    return this.seqs[this.slot(i)];
  }

  offset(i: number): number {
    return this.offsets[this.slot(i)];
  }

  dataLength(i: number): number {
    return this.lengths[this.slot(i)];
  }

  private slot(i: number): number {
    if (i < this.firstIndex || i > this.lastIndex) {
      throw new RangeError(`index ${i} outside [${this.firstIndex}, ${this.lastIndex}]`);
    }
    return this.head + i - this.firstIndex;
  }

  private grow(min: number): void {
    const capacity = Math.max(min, this.capacity * 2, 1024);
    const grow = <T extends Float64Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old.subarray(this.head, this.head + this.lastIndex - this.firstIndex + 1) as never);
      return next;
    };
    this.terms = grow(this.terms, (n) => new Float64Array(n));
    this.offsets = grow(this.offsets, (n) => new Float64Array(n));
    this.seqs = grow(this.seqs, (n) => new Uint32Array(n));
    this.lengths = grow(this.lengths, (n) => new Uint32Array(n));
    this.capacity = capacity;
    this.head = 0;
  }
}

/**
 * The memo of the Wing-Gong/Lowe search: the set of configurations (which operations are linearized,
 * model state) already explored. A configuration reached twice has the same future, so the search
 * explores it once.
 *
 * A configuration's linearized set arrives as a key of 32-bit words in a canonical compact form that the
 * search builds (see search.ts); keys of all entries live in one growing Uint32Array (no object per
 * entry), beside their 32-bit hashes, offsets and states, and an open-addressing table with linear
 * probing maps hashes to entries. The caller supplies the hash.
 */
export class ConfigCache<S> {
  private words = new Uint32Array(256);
  private used = 0;
  private offsets = new Int32Array(64 + 1); // entry e's key is words[offsets[e], offsets[e + 1])
  private hashes = new Int32Array(64);
  private readonly states: S[] = [];
  private table = new Int32Array(128); // entry index + 1; 0 = empty
  private mask = 127;
  private count = 0;

  constructor(private readonly equal: (a: S, b: S) => boolean) {}

  get size(): number {
    return this.count;
  }

  /** Bytes held by the typed arrays (the states array is not counted). */
  get bytes(): number {
    return this.words.byteLength + this.offsets.byteLength + this.hashes.byteLength + this.table.byteLength;
  }

  /** Adds (key[0, length), state) unless present; returns true if it was new. The key is copied. */
  add(key: Uint32Array, length: number, hash: number, state: S): boolean {
    const words = this.words;
    const offsets = this.offsets;
    const table = this.table;
    const mask = this.mask;
    let slot = (hash ^ (hash >>> 16)) & mask;
    for (let e = table[slot]; e !== 0; e = table[slot]) {
      const entry = e - 1;
      const off = offsets[entry];
      if (this.hashes[entry] === hash && offsets[entry + 1] - off === length && this.equal(this.states[entry], state)) {
        let same = true;
        for (let w = 0; w < length; w++) {
          if (words[off + w] !== key[w]) {
            same = false;
            break;
          }
        }
        if (same) return false;
      }
      slot = (slot + 1) & mask;
    }

    const entry = this.count;
    if (entry + 1 === this.hashes.length) this.growEntries();
    if (this.used + length > this.words.length) this.growWords(this.used + length);
    this.words.set(key.subarray(0, length), this.used);
    this.used += length;
    this.offsets[entry + 1] = this.used;
    this.hashes[entry] = hash;
    this.states.push(state);
    table[slot] = entry + 1;
    this.count++;
    if (this.count * 2 > table.length) this.rehash();
    return true;
  }

  private growWords(needed: number): void {
    let size = this.words.length * 2;
    while (size < needed) size *= 2;
    const words = new Uint32Array(size);
    words.set(this.words.subarray(0, this.used));
    this.words = words;
  }

  private growEntries(): void {
    const capacity = this.hashes.length * 2;
    const offsets = new Int32Array(capacity + 1);
    offsets.set(this.offsets);
    this.offsets = offsets;
    const hashes = new Int32Array(capacity);
    hashes.set(this.hashes);
    this.hashes = hashes;
  }

  private rehash(): void {
    const table = new Int32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let entry = 0; entry < this.count; entry++) {
      const hash = this.hashes[entry];
      let slot = (hash ^ (hash >>> 16)) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = entry + 1;
    }
    this.table = table;
    this.mask = mask;
  }
}

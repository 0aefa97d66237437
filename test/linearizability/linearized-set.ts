/**
 * The set of linearized operations of a search configuration, with an O(1) hash and a compact canonical
 * key for the memo.
 *
 * Operations are numbered by the search: 0..required-1 are those of known outcome in call order, then
 * required..n-1 those of unknown outcome. One extra bit, the flag, belongs to the configuration too
 * (search rule 4). The hash is Zobrist's: a fixed random word per bit, xor-ed in and out.
 *
 * The key exploits the shape of these sets: the known-outcome operations linearized so far are all
 * those called before some point, plus a few called after it (bounded by how many operations run
 * concurrently), so their bits are a run of full words, a short mixed stretch, then zeros. The key is
 * [number of full words, the mixed stretch, every word of the unknown-outcome part]: a few words however
 * long the history, where a plain bitset costs n / 32 per configuration.
 */
export class LinearizedSet {
  hash = 0;
  /** The flag bit (see the search's rule 4). */
  flag = 0;
  private readonly words: Uint32Array;
  /** Words [0, requiredWords) hold the known-outcome part, the rest the unknown-outcome part and the flag. */
  private readonly requiredWords: number;
  private readonly lastRequiredMask: number;
  private readonly flagBit: number;
  private readonly zobrist: Int32Array;
  /** First known-outcome word that is not full. */
  private low = 0;
  /** Last known-outcome word that is not zero (-1 if none). */
  private high = -1;

  constructor(
    private readonly required: number,
    unknown: number,
  ) {
    this.requiredWords = Math.ceil(required / 32);
    const rest = required % 32;
    this.lastRequiredMask = rest === 0 ? 0xffffffff : 2 ** rest - 1;
    this.flagBit = this.requiredWords * 32 + unknown;
    this.words = new Uint32Array(this.requiredWords + Math.ceil((unknown + 1) / 32));
    this.zobrist = new Int32Array(this.flagBit + 1);
    let seed = 0x9e3779b9;
    for (let i = 0; i < this.zobrist.length; i++) {
      seed = (seed + 0x6d2b79f5) | 0; // mulberry32: deterministic runs
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
      this.zobrist[i] = t ^ (t >>> 14);
    }
  }

  /** Words a key can need: size the caller's buffer for `key()` with it. */
  get maxKeyWords(): number {
    return 1 + this.words.length;
  }

  has(op: number): boolean {
    const bit = this.bitOf(op);
    return (this.words[bit >>> 5] & (1 << (bit & 31))) !== 0;
  }

  add(op: number): void {
    const bit = this.bitOf(op);
    const w = bit >>> 5;
    this.words[w] |= 1 << (bit & 31);
    this.hash ^= this.zobrist[bit];
    if (op < this.required) {
      if (w > this.high) this.high = w;
      while (this.low < this.requiredWords && this.words[this.low] === this.fullWord(this.low)) this.low++;
    }
  }

  remove(op: number): void {
    const bit = this.bitOf(op);
    const w = bit >>> 5;
    this.words[w] &= ~(1 << (bit & 31));
    this.hash ^= this.zobrist[bit];
    if (op < this.required) {
      if (w < this.low) this.low = w;
      while (this.high >= 0 && this.words[this.high] === 0) this.high--;
    }
  }

  setFlag(value: number): void {
    if (value === this.flag) return;
    this.flag = value;
    this.words[this.flagBit >>> 5] ^= 1 << (this.flagBit & 31);
    this.hash ^= this.zobrist[this.flagBit];
  }

  /** Writes the canonical key into `out` and returns its length: equal sets give equal keys. */
  key(out: Uint32Array): number {
    let length = 0;
    out[length++] = this.low;
    for (let w = this.low; w <= this.high; w++) out[length++] = this.words[w];
    for (let w = this.requiredWords; w < this.words.length; w++) out[length++] = this.words[w];
    return length;
  }

  private bitOf(op: number): number {
    return op < this.required ? op : this.requiredWords * 32 + (op - this.required);
  }

  private fullWord(w: number): number {
    return w === this.requiredWords - 1 ? this.lastRequiredMask : 0xffffffff;
  }
}

import type { Entry } from '@app/consensus/core';


/**
 * The most recent entries, whole, up to `maxBytes`: the Raft core mostly reads the tail of the log
 * (replicating to followers, applying what just committed), so those reads never touch the disk. Older
 * entries are evicted first and re-read from their segment when asked for.
 *
 * The cached entries always form one contiguous window [lo, lo + count) that ends at the log's last index.
 */
export class PayloadCache {
  /**
   * Accounted per cached entry besides its data (roughly the entry object, its Buffer and the array slot),
   * so a log of empty entries is bounded too.
   */
  static readonly ENTRY_OVERHEAD = 160;

  private items: Array<Entry | undefined> = [];
  private head = 0;
  private lo = 1;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get size(): number {
    return this.items.length - this.head;
  }

  get byteSize(): number {
    return this.bytes;
  }

  get(index: number): Entry | undefined {
    const i = index - this.lo;
    return i >= 0 && i < this.size ? this.items[this.head + i] : undefined;
  }

  /** Adds the entry that follows the window (or starts a new window when it does not follow). */
  append(entry: Entry): void {
    if (entry.index !== this.lo + this.size) this.clear(entry.index);
    this.items.push(entry);
    this.bytes += entry.data.length + PayloadCache.ENTRY_OVERHEAD;
    while (this.bytes > this.maxBytes && this.size > 0) this.evictOldest();
  }

  /** Drops the cached entries from `index` on. */
  truncateFrom(index: number): void {
    while (this.size > 0 && this.lo + this.size - 1 >= index) {
      const e = this.items.pop() as Entry;
      this.bytes -= e.data.length + PayloadCache.ENTRY_OVERHEAD;
    }
    if (this.size === 0) this.clear(index);
  }

  /** Drops the cached entries before `index` (compaction released them). */
  dropBefore(index: number): void {
    while (this.size > 0 && this.lo < index) this.evictOldest();
    if (this.size === 0 && this.lo < index) this.clear(index);
  }

  clear(nextIndex: number): void {
    this.items = [];
    this.head = 0;
    this.lo = nextIndex;
    this.bytes = 0;
  }

  private evictOldest(): void {
    const e = this.items[this.head] as Entry;
    this.items[this.head] = undefined;
    this.head++;
    this.lo++;
    this.bytes -= e.data.length + PayloadCache.ENTRY_OVERHEAD;
    // Drop the evicted prefix now and then, so eviction stays O(1) amortised.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

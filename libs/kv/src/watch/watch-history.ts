import { KvChange } from './kv-change';
import { formatChange } from './sse';

/**
 * A change kept in the history: its SSE frame (encoded once, shared by every watcher), and what dispatch needs
 * of it. The value lives in the frame only, so that the bytes bound counts what is held.
 */
export interface HistoryEntry {
  change: Pick<KvChange, 'type' | 'key' | 'index'>;
  frame: Buffer;
}

export interface WatchHistoryLimits {
  /** WATCH_HISTORY_ENTRIES: at most this many changes are kept. */
  maxEntries: number;
  /**
   * WATCH_HISTORY_BYTES: at most this many bytes of frames are kept (the newest change is always kept). The
   * key is held once more as a string, and each entry has a few dozen bytes of overhead.
   */
  maxBytes: number;
}

/**
 * The newest applied changes, oldest first, bounded in entries and bytes. `oldestIndex` is the smallest
 * fromIndex a watch can start at without a gap: every change with an index at or above it is still here.
 * Below it, changes were trimmed, or happened before the node's restore point (a restart from a snapshot or a
 * snapshot install), which this history never saw.
 *
 * Entries live in an array with a moving head (trimmed entries are dropped from the front in batches), so that
 * append and trim are O(1) amortized and a lookup by index is a binary search.
 */
export class WatchHistory {
  private entries: HistoryEntry[] = [];
  private head = 0;
  private bytes = 0;
  /** Every change at an index above `floor` is kept (or was trimmed, which raises floor). */
  private floor: number;

  constructor(
    private readonly limits: WatchHistoryLimits,
    /** The index the history starts after: 0 for a state machine that applied nothing yet. */
    floor = 0,
    /** Called with each entry dropped to make room (watchers still reading it must be told). */
    private readonly onTrim: (entry: HistoryEntry) => void = () => undefined,
  ) {
    this.floor = floor;
  }

  /** The smallest fromIndex answered without a gap. */
  get oldestIndex(): number {
    return this.floor + 1;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** The index of the newest change kept, or the floor when none. */
  get lastIndex(): number {
    return this.size > 0 ? this.entries[this.entries.length - 1].change.index : this.floor;
  }

  /** Appends a change (indexes must increase); trims the oldest ones past the limits. */
  append(change: KvChange): HistoryEntry {
    const entry: HistoryEntry = {
      change: { type: change.type, key: change.key, index: change.index },
      frame: Buffer.from(formatChange(change), 'utf8'),
    };
    this.entries.push(entry);
    this.bytes += entry.frame.length;
    while (this.size > 1 && (this.size > this.limits.maxEntries || this.bytes > this.limits.maxBytes)) this.trimOldest();
    return entry;
  }

  /**
   * Forgets everything: the state jumped to a restore point at `floor` (changes up to it are unknown here).
   * Nothing is reported to onTrim: the caller ends its watchers itself.
   */
  reset(floor: number): void {
    this.entries = [];
    this.head = 0;
    this.bytes = 0;
    this.floor = floor;
  }

  /** Whether changes from `fromIndex` on are all available (otherwise a watch answers 410 with oldestIndex). */
  covers(fromIndex: number): boolean {
    return fromIndex >= this.oldestIndex;
  }

  /** The position of the first entry with index >= `index` (size when none), for at(). */
  positionOf(index: number): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid].change.index < index) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.head;
  }

  /** The entry at `position` (0 = oldest kept), or undefined past the newest. */
  at(position: number): HistoryEntry | undefined {
    return this.entries[this.head + position];
  }

  private trimOldest(): void {
    const entry = this.entries[this.head];
    this.head++;
    this.bytes -= entry.frame.length;
    this.floor = entry.change.index;
    // Drop the trimmed prefix once it is half the array: amortized O(1) per trim, memory at most doubled.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    this.onTrim(entry);
  }
}

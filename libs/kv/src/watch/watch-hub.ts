import { KvChange, KvChangeObserver } from './kv-change';
import { formatClosed, formatCompacted, formatStart, HEARTBEAT } from './sse';
import { HistoryEntry, WatchHistory, WatchHistoryLimits } from './watch-history';

/** What a watcher follows: one key, or every key starting with a prefix (the empty prefix: every key). */
export type WatchFilter = { key: string } | { prefix: string };

/** Where a watcher's frames go (an HTTP response in production). */
export interface WatchSink {
  /**
   * Writes a frame. False: the sink holds as much as it may (its buffer bound); the hub writes nothing more
   * until the sink calls Watcher.resume() (once drained).
   */
  write(chunk: Buffer | string): boolean;
  /** Ends the stream after what was written. Called once. */
  end(): void;
}

/** A watch that asked for changes older than the history: answered 410 before the stream starts. */
export class WatchIndexCompactedError extends Error {
  constructor(
    readonly fromIndex: number,
    /** The smallest fromIndex this node can serve now. */
    readonly oldestIndex: number,
  ) {
    super(`fromIndex ${fromIndex} is older than this node's watch history, which starts at index ${oldestIndex}; re-read and watch from there`);
    this.name = 'WatchIndexCompactedError';
  }
}

export interface WatchHubOptions extends WatchHistoryLimits {
  /** The reconnection delay suggested to clients (the SSE retry field). */
  retryMs: number;
}

export const DEFAULT_WATCH_OPTIONS: WatchHubOptions = { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, retryMs: 1000 };

/** One open watch. */
export class Watcher {
  /** While lagging: the index of the next change to look for in the history. Undefined: live. */
  cursor: number | undefined;
  closed = false;

  constructor(
    /** The first index it may be sent (a fromIndex ahead of the applied index skips what comes before). */
    readonly start: number,
    readonly filter: WatchFilter,
    readonly sink: WatchSink,
    private readonly hub: WatchHub,
  ) {}

  matches(key: string): boolean {
    return 'key' in this.filter ? key === this.filter.key : key.startsWith(this.filter.prefix);
  }

  /** The sink drained: go on from the history where it stopped. */
  resume(): void {
    this.hub.pump(this);
  }

  /** The client went away. */
  close(): void {
    this.hub.remove(this);
  }
}

/**
 * The watchers of one node and the history that feeds them. Every applied change is appended to the history
 * once (its frame encoded once) and handed to the watchers that follow its key: an exact-key map, and a map per
 * prefix looked up with the key's own prefixes of the lengths in use, so the cost of a change does not grow with
 * the number of watchers that do not follow it.
 *
 * A live watcher is written each matching change at once. When its sink is full it becomes lagging: it keeps a
 * cursor into the history instead of a queue, and reads on from there once drained. A lagging watcher whose
 * next matching change is trimmed from the history is sent `event: compacted` and closed: it never skips a
 * change silently and never buffers without bound.
 */
export class WatchHub implements KvChangeObserver {
  private readonly history: WatchHistory;
  private readonly all = new Set<Watcher>();
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly byPrefix = new Map<string, Set<Watcher>>();
  /** Prefix length → how many prefixes of that length are watched. */
  private readonly prefixLengths = new Map<number, number>();
  private readonly lagging = new Set<Watcher>();
  /** False after a restore until the restore point is known (from appliedIndex()). */
  private floorKnown = true;
  private appliedIndex: () => number;

  private readonly options: WatchHubOptions;

  constructor(options: Partial<WatchHubOptions> = {}) {
    // One object shared with the history, so that configure() reaches its limits too.
    this.options = { ...DEFAULT_WATCH_OPTIONS };
    this.configure(options);
    this.history = new WatchHistory(this.options, 0, (entry) => this.trimmed(entry));
    this.appliedIndex = () => this.history.lastIndex;
  }

  /** Changes the bounds (at start, from the configuration); a smaller bound applies from the next change on. */
  configure(options: Partial<WatchHubOptions>): void {
    for (const name of ['maxEntries', 'maxBytes', 'retryMs'] as const) {
      const value = options[name];
      if (value !== undefined) this.options[name] = value;
    }
  }

  /** Tells the hub where the node's applied index is read (RaftNode.applied): the restore point after a restore. */
  bind(appliedIndex: () => number): void {
    this.appliedIndex = appliedIndex;
  }

  get watcherCount(): number {
    return this.all.size;
  }

  /** The smallest fromIndex served now. */
  get oldestIndex(): number {
    this.knowFloor();
    return this.history.oldestIndex;
  }

  get historySize(): { entries: number; bytes: number } {
    return { entries: this.history.size, bytes: this.history.byteSize };
  }

  /**
   * The index a watch starts at: `fromIndex`, or without one the next index applied here. Throws
   * WatchIndexCompactedError when changes from `fromIndex` on are no longer all in the history.
   */
  startIndex(fromIndex: number | undefined): number {
    this.knowFloor();
    if (fromIndex === undefined) return Math.max(this.appliedIndex(), this.history.lastIndex) + 1;
    if (!this.history.covers(fromIndex)) throw new WatchIndexCompactedError(fromIndex, this.history.oldestIndex);
    return fromIndex;
  }

  /**
   * Opens a watch from `start` (from startIndex(), in the same synchronous turn: nothing is applied between).
   * Writes the start frame, then every kept change from `start` on that matches, then follows live.
   */
  subscribe(filter: WatchFilter, start: number, sink: WatchSink): Watcher {
    const watcher = new Watcher(start, filter, sink, this);
    this.all.add(watcher);
    if ('key' in filter) addTo(this.byKey, filter.key, watcher);
    else {
      addTo(this.byPrefix, filter.prefix, watcher);
      this.prefixLengths.set(filter.prefix.length, (this.prefixLengths.get(filter.prefix.length) ?? 0) + 1);
    }
    watcher.cursor = start;
    this.lagging.add(watcher);
    if (sink.write(formatStart(start, this.options.retryMs))) this.pump(watcher);
    return watcher;
  }

  changed(change: KvChange): void {
    // The first change after a restore: nothing between the restore point and it changed the map.
    this.knowFloor(change.index - 1);
    const entry = this.history.append(change);
    const key = change.key;
    const exact = this.byKey.get(key);
    if (exact) for (const watcher of exact) this.deliver(watcher, entry);
    for (const length of this.prefixLengths.keys()) {
      if (length > key.length) continue;
      const watchers = this.byPrefix.get(key.slice(0, length));
      if (watchers) for (const watcher of watchers) this.deliver(watcher, entry);
    }
  }

  /**
   * The map jumped to a snapshot: the history starts again at the restore point, and every open watch is ended
   * with `event: compacted` (the changes between it and the snapshot are not known here). The watchers are
   * detached at once (changes applied right after the restore must not reach them); they are told once the
   * restore point is known (RaftNode updates its applied index right after restore() returns).
   */
  restored(): void {
    this.floorKnown = false;
    const watchers = [...this.all];
    for (const watcher of watchers) this.detach(watcher);
    queueMicrotask(() => {
      const oldest = this.oldestIndex;
      for (const watcher of watchers) this.finish(watcher, formatCompacted(oldest, 'this node restored a snapshot; re-read and watch from oldestIndex'));
    });
  }

  /** A comment on every live stream, so that idle connections are not cut by proxies. */
  heartbeat(): void {
    for (const watcher of this.all) if (watcher.cursor === undefined) this.write(watcher, HEARTBEAT);
  }

  /** Ends every stream with `event: closed` (the node shuts down or was removed). */
  closeAll(reason: string): void {
    for (const watcher of [...this.all]) {
      this.detach(watcher);
      this.finish(watcher, formatClosed(reason));
    }
  }

  /** Writes the kept changes from the watcher's cursor on until the sink is full or the watcher is live. */
  pump(watcher: Watcher): void {
    if (watcher.closed || watcher.cursor === undefined) return;
    for (let position = this.history.positionOf(watcher.cursor); ; position++) {
      const entry = this.history.at(position);
      if (entry === undefined) break;
      if (!watcher.matches(entry.change.key)) continue;
      watcher.cursor = entry.change.index + 1;
      if (!this.write(watcher, entry.frame)) return;
    }
    if (watcher.closed) return;
    watcher.cursor = undefined;
    this.lagging.delete(watcher);
  }

  remove(watcher: Watcher): void {
    if (watcher.closed) return;
    this.detach(watcher);
    watcher.closed = true;
  }

  private deliver(watcher: Watcher, entry: HistoryEntry): void {
    // A lagging watcher reads the change from the history once its sink drains.
    if (watcher.cursor !== undefined || entry.change.index < watcher.start) return;
    if (this.write(watcher, entry.frame)) return;
    watcher.cursor = entry.change.index + 1;
    this.lagging.add(watcher);
  }

  /** False when the watcher must wait (full sink, or closed). */
  private write(watcher: Watcher, chunk: Buffer | string): boolean {
    if (watcher.closed) return false;
    return watcher.sink.write(chunk);
  }

  private trimmed(entry: HistoryEntry): void {
    if (this.lagging.size === 0) return;
    const { index, key } = entry.change;
    for (const watcher of this.lagging) {
      if (watcher.cursor === undefined || watcher.cursor > index) continue;
      if (watcher.matches(key)) {
        this.detach(watcher);
        this.finish(watcher, formatCompacted(index + 1, 'this watcher fell behind the watch history (a slow consumer); re-read and watch from oldestIndex'));
      } else {
        // Nothing it follows is lost: its next change, if any, is still kept.
        watcher.cursor = index + 1;
      }
    }
  }

  /** After a restore: the history starts after `floor` (default: the node's applied index, the restore point or later). */
  private knowFloor(floor?: number): void {
    if (this.floorKnown) return;
    this.floorKnown = true;
    this.history.reset(floor ?? this.appliedIndex());
  }

  private detach(watcher: Watcher): void {
    if (!this.all.delete(watcher)) return;
    this.lagging.delete(watcher);
    const filter = watcher.filter;
    if ('key' in filter) removeFrom(this.byKey, filter.key, watcher);
    else {
      removeFrom(this.byPrefix, filter.prefix, watcher);
      const count = (this.prefixLengths.get(filter.prefix.length) ?? 1) - 1;
      if (count === 0) this.prefixLengths.delete(filter.prefix.length);
      else this.prefixLengths.set(filter.prefix.length, count);
    }
  }

  /** Writes a last frame (even to a full sink: it is small) and ends the stream. */
  private finish(watcher: Watcher, frame: string): void {
    if (watcher.closed) return;
    watcher.closed = true;
    watcher.sink.write(frame);
    watcher.sink.end();
  }
}

function addTo(map: Map<string, Set<Watcher>>, name: string, watcher: Watcher): void {
  let set = map.get(name);
  if (!set) map.set(name, (set = new Set()));
  set.add(watcher);
}

function removeFrom(map: Map<string, Set<Watcher>>, name: string, watcher: Watcher): void {
  const set = map.get(name);
  if (!set) return;
  set.delete(watcher);
  if (set.size === 0) map.delete(name);
}

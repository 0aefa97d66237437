import { countWithinLimit } from './entries';
import { CompactedError, Storage, UnavailableError } from './storage';
import { ConfState, Entry, EntryType, HardState, None, Snapshot } from './types';

/** applySnapshot() was given a snapshot older than the one the storage already holds. */
export class SnapshotOutOfDateError extends Error {
  constructor(index: number, current: number) {
    super(`requested snapshot at index ${index} is older than the existing snapshot at ${current}`);
    this.name = 'SnapshotOutOfDateError';
  }
}

/**
 * An in-memory Storage: what a node's disk would hold, kept in an array. Used by tests, the simulator and
 * the benchmark, and as the stable log of a driver that keeps its WAL elsewhere.
 *
 * Layout: ents[0] is a dummy entry standing for the snapshot (its index and term are the snapshot's);
 * ents[k] has index ents[0].index + k. All operations cost O(1) or O(entries touched), never O(log).
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: None, commit: 0 };
  private snap: Snapshot;
  private ents: Entry[];

  /** `voters` is the bootstrap configuration reported by initialState(); leave empty to use RaftConfig.peers. */
  constructor(voters: string[] = []) {
    this.snap = { metadata: { index: 0, term: 0, confState: { voters: [...voters] } }, data: new Uint8Array(0) };
    this.ents = [{ index: 0, term: 0, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState };
  }

  /** Records the durable hard state. */
  setHardState(hs: HardState): void {
    this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    if (lo >= hi) return [];
    const from = lo - offset;
    const n = countWithinLimit(this.ents, from, hi - offset, maxBytes);
    return this.ents.slice(from, from + n);
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw new CompactedError(i);
    if (i - offset >= this.ents.length) throw new UnavailableError(i);
    return this.ents[i - offset].term;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Appends consecutive entries. Stored entries from entries[0].index on are discarded first (a new leader
   * overwrote an uncommitted suffix); entries at or below the snapshot index are ignored. Throws if the
   * entries would leave a gap after lastIndex().
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return;
    let from = 0;
    if (first > entries[0].index) from = first - entries[0].index;
    const start = entries[from].index;
    const offset = this.ents[0].index;
    if (start > this.lastIndex() + 1) {
      throw new Error(`missing log entry [last: ${this.lastIndex()}, append at: ${start}]`);
    }
    this.ents.length = start - offset; // truncate the conflicting suffix (no-op when appending at the end)
    for (let i = from; i < entries.length; i++) this.ents.push(entries[i]);
  }

  /**
   * Replaces the storage's content with a snapshot (InstallSnapshot on a follower; later work in the
   * core). Entries are discarded. Throws SnapshotOutOfDateError for a snapshot older than the current one.
   */
  applySnapshot(snap: Snapshot): void {
    const cur = this.snap.metadata.index;
    if (snap.metadata.index <= cur && cur > 0) throw new SnapshotOutOfDateError(snap.metadata.index, cur);
    this.snap = snap;
    this.ents = [{ index: snap.metadata.index, term: snap.metadata.term, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  /**
   * Discards entries up to and including compactIndex (log compaction, later work in the core); the
   * caller must have saved a snapshot covering them. Throws CompactedError if already compacted.
   */
  compact(compactIndex: number): void {
    const offset = this.ents[0].index;
    if (compactIndex <= offset) throw new CompactedError(compactIndex);
    if (compactIndex > this.lastIndex()) throw new Error(`compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    const k = compactIndex - offset;
    const dummy: Entry = { index: compactIndex, term: this.ents[k].term, type: EntryType.Normal, data: new Uint8Array(0) };
    this.ents = [dummy, ...this.ents.slice(k + 1)];
  }
}

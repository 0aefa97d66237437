import { countWithinLimit } from './entries';
import { CompactedError, SnapshotTemporarilyUnavailableError, Storage, UnavailableError } from './storage';
import { ConfState, Entry, EntryType, HardState, None, Snapshot } from './types';

/** applySnapshot() or createSnapshot() was given a snapshot older than the one the storage already holds. */
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
 * Layout: ents[0] is a dummy entry standing for the compaction point (its index and term are those of the
 * last compacted entry: the snapshot's after applySnapshot(), the compact() index after compact());
 * ents[k] has index ents[0].index + k. All operations but compact() cost O(1) or O(entries touched),
 * never O(log).
 *
 * Snapshots and compaction follow etcd-io/raft's MemoryStorage: any node's driver records the state
 * machine as of applied entry i with createSnapshot(i), which keeps the log, then releases entries up to
 * j <= i with compact(j). A follower installs a snapshot received from the leader (Ready.snapshot) with
 * applySnapshot().
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: None, commit: 0 };
  private snap: Snapshot;
  private ents: Entry[];
  private snapshotUnavailable = false;

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

  /** The newest snapshot. Throws SnapshotTemporarilyUnavailableError while a test asked it to. */
  snapshot(): Snapshot {
    if (this.snapshotUnavailable) throw new SnapshotTemporarilyUnavailableError();
    return this.snap;
  }

  /** For tests: while `unavailable`, snapshot() throws SnapshotTemporarilyUnavailableError. */
  setSnapshotTemporarilyUnavailable(unavailable: boolean): void {
    this.snapshotUnavailable = unavailable;
  }

  /**
   * Records a snapshot of the state machine as of entry `index` (applied by the caller, at most
   * lastIndex()), with the configuration at that point and the state machine's content. The log is kept:
   * call compact() to release it. Returns the snapshot. Throws SnapshotOutOfDateError when `index` is not
   * above the current snapshot's, and CompactedError when entry `index` was compacted.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const cur = this.snap.metadata.index;
    if (index <= cur) throw new SnapshotOutOfDateError(index, cur);
    if (index > this.lastIndex()) throw new Error(`snapshot ${index} is out of bound lastindex(${this.lastIndex()})`);
    const term = this.term(index);
    this.snap = { metadata: { index, term, confState: { ...confState, voters: [...confState.voters] } }, data };
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
   * Replaces the storage's content with a snapshot received from the leader (Ready.snapshot): it becomes
   * the newest snapshot and every entry is discarded (the log restarts right after it). Throws
   * SnapshotOutOfDateError for a snapshot not newer than the current one.
   */
  applySnapshot(snap: Snapshot): void {
    const cur = this.snap.metadata.index;
    if (snap.metadata.index <= cur && cur > 0) throw new SnapshotOutOfDateError(snap.metadata.index, cur);
    this.snap = snap;
    this.ents = [{ index: snap.metadata.index, term: snap.metadata.term, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  /**
   * Discards entries up to and including compactIndex (at most lastIndex()). A leader sends its snapshot
   * to a follower whose next entry was compacted, so the snapshot must cover them: compact at or below the
   * index of createSnapshot(). Throws CompactedError if already compacted.
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

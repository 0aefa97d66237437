import { ConfState, Entry, HardState, Snapshot } from './types';

/**
 * The requested entry was compacted into a snapshot. The leader then sends the follower a snapshot instead
 * of entries (MsgSnap).
 */
export class CompactedError extends Error {
  constructor(index: number) {
    super(`requested index ${index} is unavailable due to compaction`);
    this.name = 'CompactedError';
  }
}

/** The requested entry is beyond the last index of the storage. */
export class UnavailableError extends Error {
  constructor(index: number) {
    super(`requested entry at index ${index} is unavailable`);
    this.name = 'UnavailableError';
  }
}

/**
 * snapshot() cannot return a snapshot right now (one is being written, say). The leader skips this follower
 * for now and asks again later (at the next heartbeat response); nothing is wrong with the storage.
 */
export class SnapshotTemporarilyUnavailableError extends Error {
  constructor() {
    super('snapshot is temporarily unavailable');
    this.name = 'SnapshotTemporarilyUnavailableError';
  }
}

/**
 * Read access to the stable (already persisted) part of the Raft log, as the core sees it. Calls are
 * synchronous: the core is a pure state machine and never waits. The driver appends to the storage only
 * what it has made durable, before it calls advance().
 *
 * Contract (as etcd-io/raft's Storage):
 * - initialState() returns the persisted hard state and configuration (on first boot: zero hard state and
 *   the bootstrap voters).
 * - entries(lo, hi, maxBytes) returns consecutive entries in [lo, hi), at least one if lo < hi, and no more
 *   than maxBytes of entry data beyond the first; throws CompactedError if lo <= the snapshot index and
 *   UnavailableError if hi > lastIndex() + 1.
 * - term(i) returns the term of entry i for i in [firstIndex() - 1, lastIndex()] (firstIndex() - 1 being the
 *   snapshot index, whose term the storage remembers); throws CompactedError below and UnavailableError above.
 * - firstIndex() is the index of the first entry still available (1 on a log never compacted);
 *   lastIndex() is the index of the last one (0 on an empty log).
 * - snapshot() returns the most recent snapshot (index 0 when there is none), whose index must be at least
 *   firstIndex() - 1: the leader sends it to a follower whose next entry was compacted, so a log compacted
 *   beyond its snapshot cannot catch such a follower up (and a compacted log without any snapshot makes
 *   the leader throw). May throw SnapshotTemporarilyUnavailableError.
 * - After a restart, firstIndex() - 1 is where the node starts committed and applied: the driver restores
 *   its state machine from the snapshot at that index.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

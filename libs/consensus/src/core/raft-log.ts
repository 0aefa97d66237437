import { countWithinLimit, payloadSize } from './entries';
import { CompactedError, Storage, UnavailableError } from './storage';
import { Entry, Snapshot } from './types';
import { Unstable } from './unstable';

/**
 * The log as the state machine sees it: the stable part in Storage, followed by the unstable tail.
 *
 * Indices: firstIndex() - 1 <= applied <= applying <= committed <= lastIndex(), except while a snapshot
 * received from the leader waits in the unstable tail (firstIndex() - 1 is its index, applied is below it
 * until the driver restored it). `applying` is how far committed entries (or a snapshot) have been handed
 * out in a Ready; `applied` how far the driver confirmed them.
 * Every operation reads only the entries it returns (the cost never grows with the log's length).
 */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  committed: number;
  applying: number;
  applied: number;

  constructor(storage: Storage) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Index of the last entry known durable (everything below the unstable tail). */
  stableIndex(): number {
    return this.unstable.offset - 1;
  }

  /** Term of entry i. Throws CompactedError below firstIndex() - 1 and UnavailableError above lastIndex(). */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i >= this.unstable.offset) throw new UnavailableError(i); // beyond the last index
    // An unstable snapshot replaced the log: what storage still holds below it is no longer ours.
    const snap = this.unstable.snapshot;
    if (snap && i < snap.metadata.index) throw new CompactedError(i);
    return this.storage.term(i);
  }

  /** Term of entry i, or 0 when i is beyond the last index. Throws CompactedError below the log. */
  termOrZero(i: number): number {
    if (i > this.lastIndex()) return 0;
    return this.term(i);
  }

  matchTerm(i: number, term: number): boolean {
    try {
      return this.termOrZero(i) === term;
    } catch (e) {
      if (e instanceof CompactedError) return false;
      throw e;
    }
  }

  /**
   * Log Matching on a follower: if the entry at `index` has `logTerm`, appends `ents` (which follow it),
   * discarding any conflicting suffix, commits up to min(committed, last new index) and returns the last
   * new index. Returns undefined when the entry at `index` does not match.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      }
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries after discarding a suffix; returns the new last index. Never discards committed entries. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    if (after < this.committed) {
      throw new Error(`after(${after}) is out of range [committed(${this.committed})]`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry of `ents` whose term differs from ours (or that we lack), 0 when all match.
   * Costs O(ents.length).
   */
  findConflict(ents: readonly Entry[]): number {
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k];
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`, with that term. Used on both
   * sides of a rejected MsgApp: it skips a whole run of conflicting entries of one term per round trip.
   * Returns term 0 when `index` is beyond the log.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    if (index > this.lastIndex()) return { index, term: 0 };
    for (;;) {
      let t: number;
      try {
        t = this.term(index);
      } catch (e) {
        if (e instanceof CompactedError) return { index, term: 0 };
        throw e;
      }
      if (t <= term) return { index, term: t };
      index--;
    }
  }

  /** True if a log ending with (lastTerm: term, lastIndex: index) is at least as up-to-date as ours (§5.4.1). */
  isUpToDate(index: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && index >= this.lastIndex());
  }

  commitTo(toCommit: number): void {
    if (this.committed >= toCommit) return;
    if (this.lastIndex() < toCommit) {
      throw new Error(`toCommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`);
    }
    this.committed = toCommit;
  }

  /** Advances the commit index to maxIndex if that entry is from `term` (the leader's rule, Figure 8). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i > this.committed || i < this.applied) {
      throw new Error(`applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    }
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  /** Committed entries are handed out up to i (they are in the Ready being built). */
  acceptApplying(i: number): void {
    this.applying = i;
  }

  hasNextCommittedEnts(): boolean {
    return this.committed > this.applying;
  }

  /**
   * The next committed entries to apply, at most maxBytes of data (at least one entry): after `applying`,
   * and after the unstable snapshot if there is one (the state machine gets those entries from the
   * snapshot). They may include entries of the same Ready's `entries`: the driver persists before it applies.
   */
  nextCommittedEnts(maxBytes: number): Entry[] {
    const from = Math.max(this.applying, this.unstable.snapshot?.metadata.index ?? 0) + 1;
    if (from > this.committed) return [];
    return this.slice(from, this.committed + 1, maxBytes);
  }

  nextUnstableEnts(): Entry[] {
    return this.unstable.nextEntries();
  }

  hasNextUnstableEnts(): boolean {
    return this.unstable.hasNextEntries();
  }

  /** Entries from i on, at most maxBytes of data and maxCount entries (at least one if i <= lastIndex). */
  entries(i: number, maxBytes: number, maxCount: number): Entry[] {
    const last = this.lastIndex();
    if (i > last) return [];
    return this.slice(i, Math.min(last + 1, i + maxCount), maxBytes);
  }

  /** Entries [lo, hi), limited to maxBytes of data (at least one). Throws CompactedError below the log. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo > hi) throw new Error(`invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new CompactedError(lo);
    const length = this.lastIndex() + 1 - fi;
    if (hi > fi + length) throw new Error(`slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
    if (lo === hi) return [];
    const uo = this.unstable.offset;
    let out: Entry[];
    if (lo < uo) {
      out = this.storage.entries(lo, Math.min(hi, uo), maxBytes);
      // Storage stopped early because of the size limit: the unstable tail cannot add anything.
      if (out.length < Math.min(hi, uo) - lo || hi <= uo) return out;
      const tail = this.unstable.slice(uo, hi);
      const room = maxBytes - payloadSize(out);
      const n = room < 0 ? 0 : countWithinLimitAfter(tail, room);
      for (let k = 0; k < n; k++) out.push(tail[k]);
      return out;
    }
    out = this.unstable.slice(lo, hi);
    const n = countWithinLimit(out, 0, out.length, maxBytes);
    if (n < out.length) out.length = n;
    return out;
  }

  /**
   * The newest snapshot: the one being installed (unstable) if any, else the storage's. May throw
   * SnapshotTemporarilyUnavailableError (from the storage).
   */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /**
   * InstallSnapshot: the log becomes the snapshot alone (its index is the last and the committed index),
   * held in the unstable tail until the driver persists it. The caller checked that the snapshot is ahead
   * of the commit index and that the log does not hold its last entry. `applied` does not move until the
   * driver restored the state machine (advance()).
   */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}

/** How many leading entries of `ents` fit in `room` bytes when appended after others (no minimum of one). */
function countWithinLimitAfter(ents: readonly Entry[], room: number): number {
  let size = 0;
  let i = 0;
  for (; i < ents.length; i++) {
    size += ents[i].data.byteLength;
    if (size > room) break;
  }
  return i;
}

import { LogIndex } from './log-index';
import { SegmentLowRefs } from './wal-recovery';

/** A segment as compaction sees it. */
export interface CompactionSegment extends SegmentLowRefs {
  seq: number;
  firstIndex: number;
}

/**
 * Which segment can become the first one, deleting every segment before it, when entries up to `limit` (at
 * most the newest recorded snapshot's index) may be released. Returns its position in `segments` (in seq
 * order, the last one being the active segment, which is never deleted): 0 when nothing can go.
 *
 * Segments are deleted oldest first, one at a time, so after a crash halfway any of them may be the first:
 * each one up to the returned one must be a valid start on its own. Recovery reading from segment j starts
 * the log at j's first index, and each later header moves that start down to its own first index when it is
 * lower (a rebased segment restarts the log there: wal-recovery.ts). Reading from j therefore rebuilds the
 * live log from M on, M being the lowest first index of the segments from j on, and j is a valid start when:
 *
 * - from j on, up to the first Reset snapshot, no Truncate record goes below the start recovery has reached
 *   (the lowest first index from j to the truncating segment): every record then acts on entries the reader
 *   has read, exactly as in a full recovery. The writer never puts a Truncate below its own segment's first
 *   index (it starts a rebased segment instead), so this only fails on logs written before that rule
 *   ("deep" truncations, docs/storage.md): such a segment is kept, with every one before it. (Keep snapshots
 *   below the start are only remembered, never checked, so they need nothing.)
 * - and then either a Reset follows (it discards everything before it anyway, in both readings), or
 *   M - 1 <= limit: the only live entries lost, those below M, are all covered by the snapshot.
 *
 * The live entries held in segment j or later are then exactly [M, last], which is where compact() moves the
 * log's first index (firstEntryFrom). A Truncate or a rebase written later cannot break this: both are above
 * the commit index, itself at or above `limit`.
 */
export function compactionPoint(segments: readonly CompactionSegment[], limit: number): number {
  let point = 0;
  for (let j = 1; j < segments.length; j++) {
    if (!canStartLog(segments, j, limit)) break;
    point = j;
  }
  return point;
}

/** Whether recovery reading from segment j alone rebuilds the live log, minus entries at or below `limit`. */
function canStartLog(segments: readonly CompactionSegment[], j: number, limit: number): boolean {
  let start = segments[j].firstIndex;
  for (let k = j; k < segments.length; k++) {
    start = Math.min(start, segments[k].firstIndex);
    if (segments[k].minTruncate < start) return false;
    if (segments[k].hasReset) return true;
  }
  return start - 1 <= limit;
}

/** The first live entry held in segment `seq` or later (last + 1 when there is none). */
export function firstEntryFrom(index: LogIndex, seq: number): number {
  let i = index.first;
  while (i <= index.last && index.seq(i) < seq) i++;
  return i;
}

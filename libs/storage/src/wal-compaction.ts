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
 * each one up to the returned one must be a valid start on its own. Segment j (first index F) is one when
 * recovery reading from j alone rebuilds exactly the live log, minus entries at or below `limit`:
 *
 * - from j on, up to the first Reset snapshot, no Truncate record goes below F: recovery from j starts with
 *   the log ending at F - 1 (term from j's header), and every record after that then acts on entries it has
 *   read, exactly as in a full recovery. (Keep snapshots below F are only remembered, never checked, so
 *   they need nothing.)
 * - and then either a Reset follows (which discards everything before it anyway), or F - 1 <= limit: the
 *   only live entries held before j are then [first, F - 1], all covered by the snapshot.
 *
 * A Truncate written later cannot break this: it is above the commit index, itself at or above `limit`.
 */
export function compactionPoint(segments: readonly CompactionSegment[], limit: number): number {
  let point = 0;
  for (let j = 1; j < segments.length; j++) {
    if (!canStartLog(segments, j, limit)) break;
    point = j;
  }
  return point;
}

function canStartLog(segments: readonly CompactionSegment[], j: number, limit: number): boolean {
  const { firstIndex } = segments[j];
  let reset = false;
  for (let k = j; k < segments.length && !reset; k++) {
    if (segments[k].minTruncate < firstIndex) return false;
    reset = segments[k].hasReset;
  }
  return reset || firstIndex - 1 <= limit;
}

/** The first live entry held in segment `seq` or later (last + 1 when there is none). */
export function firstEntryFrom(index: LogIndex, seq: number): number {
  let i = index.first;
  while (i <= index.last && index.seq(i) < seq) i++;
  return i;
}

/**
 * Snapshots and log compaction in a chaos run. The nodes run with small SNAPSHOT_ENTRIES and
 * WAL_SEGMENT_BYTES (CHAOS_SNAPSHOTS), so that during a run they take snapshots, compact their logs, and
 * followers that fell behind a compacted log (killed, paused, cut off) catch up by InstallSnapshot. What
 * happened is read back from the node logs, which survive kills (every incarnation appends to the same
 * file), and from the data directories at the end.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** The snapshot settings of a chaos run's nodes (environment variables, README "Configuration"). */
export interface SnapshotSettings {
  /** SNAPSHOT_ENTRIES: a snapshot every this many applied entries (0: never). */
  entries: number;
  /** SNAPSHOT_CATCHUP_ENTRIES. */
  catchUpEntries: number;
  /** WAL_SEGMENT_BYTES. */
  segmentBytes: number;
}

/**
 * The chaos default: a snapshot every 100 entries in 4 KiB segments. A CI run commits a few thousand
 * entries, so every node snapshots dozens of times, and a follower down or cut off for a second or two
 * falls behind the leader's log (which keeps about two snapshots' worth) and needs a snapshot.
 */
export const CHAOS_SNAPSHOTS: SnapshotSettings = { entries: 50, catchUpEntries: 10, segmentBytes: 4096 };

export function snapshotEnv(s: SnapshotSettings): Record<string, string> {
  return {
    SNAPSHOT_ENTRIES: String(s.entries),
    SNAPSHOT_CATCHUP_ENTRIES: String(s.catchUpEntries),
    WAL_SEGMENT_BYTES: String(s.segmentBytes),
  };
}

export interface NodeSnapshotCounts {
  /** Snapshots this node took ("snapshot taken at index"). */
  taken: number;
  /** Snapshots it installed from the leader ("installed the leader's snapshot"). */
  installed: number;
  /** Starts that restored the state from a snapshot ("state restored from the snapshot"). */
  restored: number;
  /** Compactions that deleted segments, and how many segments they deleted ("compacted ... deleted N segment(s)"). */
  compactions: number;
  segmentsDeleted: number;
  /** WAL segment files in its data directory at the end (undefined when it was not there to count). */
  segmentsAtEnd?: number;
}

export interface SnapshotCounts {
  settings: SnapshotSettings;
  taken: number;
  installed: number;
  restored: number;
  compactions: number;
  byNode: Record<string, NodeSnapshotCounts>;
}

const count = (text: string, re: RegExp): number => text.match(re)?.length ?? 0;

/** What one node's log says about its snapshots (every incarnation). */
export function countInLog(text: string): Omit<NodeSnapshotCounts, 'segmentsAtEnd'> {
  let segmentsDeleted = 0;
  let compactions = 0;
  for (const m of text.matchAll(/compacted \S+ up to entry \d+: deleted (\d+) segment/g)) {
    compactions++;
    segmentsDeleted += Number(m[1]);
  }
  return {
    taken: count(text, /snapshot taken at index \d+/g),
    installed: count(text, /installed the leader's snapshot at index \d+/g),
    restored: count(text, /state restored from the snapshot at \d+/g),
    compactions,
    segmentsDeleted,
  };
}

/** Counts for every node, from its log file and (if still there) its data directory. */
export function countSnapshots(settings: SnapshotSettings, nodes: readonly { name: string; logPath: string; dir: string }[]): SnapshotCounts {
  const byNode: Record<string, NodeSnapshotCounts> = {};
  for (const n of nodes) {
    const counts: NodeSnapshotCounts = countInLog(existsSync(n.logPath) ? readFileSync(n.logPath, 'utf8') : '');
    if (existsSync(n.dir)) counts.segmentsAtEnd = readdirSync(n.dir).filter((f) => f.endsWith('.wal')).length;
    byNode[n.name] = counts;
  }
  const sum = (k: 'taken' | 'installed' | 'restored' | 'compactions') => Object.values(byNode).reduce((s, c) => s + c[k], 0);
  return { settings, taken: sum('taken'), installed: sum('installed'), restored: sum('restored'), compactions: sum('compactions'), byNode };
}

/** One line for the report: totals, then per node. */
export function formatSnapshotCounts(c: SnapshotCounts): string {
  const s = c.settings;
  if (s.entries === 0) return 'off (SNAPSHOT_ENTRIES=0)';
  const nodes = Object.entries(c.byNode)
    .map(([name, n]) => `${name} ${n.taken}/${n.installed}/${n.restored}/${n.compactions}${n.segmentsAtEnd !== undefined ? `/${n.segmentsAtEnd}` : ''}`)
    .join(', ');
  return (
    `taken ${c.taken}, installed ${c.installed}, restored at start ${c.restored}, compactions ${c.compactions} ` +
    `(SNAPSHOT_ENTRIES ${s.entries}, SNAPSHOT_CATCHUP_ENTRIES ${s.catchUpEntries}, WAL_SEGMENT_BYTES ${s.segmentBytes}); ` +
    `per node taken/installed/restored/compactions/segments at end: ${nodes}`
  );
}

/**
 * The pure parts of `npm run bench:lifetime` (test/bench/lifetime.bench.ts): what a data directory holds,
 * reading one figure from a node's /metrics text, medians, the --scenario list and the disk series' sample
 * points. Kept apart from the benchmark so that they are unit-tested (lifetime-lib.spec.ts) without nodes.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Files of one kind in a data directory: how many, their bytes (apparent size) and the disk blocks they take. */
export interface FileGroup {
  count: number;
  bytes: number;
  /** st_blocks × 512: what `du` counts. */
  diskBytes: number;
}

/** What a node's WAL_DIR holds (docs/storage.md, "Files in WAL_DIR"). */
export interface DirUsage {
  /** `<seq>-<firstIndex>.wal` */
  segments: FileGroup;
  /** `snap/*.snap`, and `snap/*.tmp` (a snapshot being written or received) */
  snaps: FileGroup;
  /** Every file in the directory and its sub-directories, the two groups above included. */
  total: FileGroup;
}

const emptyGroup = (): FileGroup => ({ count: 0, bytes: 0, diskBytes: 0 });

/**
 * Walks `dir` (a node writing to it meanwhile): a file deleted between the listing and its stat is left
 * out rather than failing the sample; a directory that does not exist counts as empty.
 */
export function walDirUsage(dir: string): DirUsage {
  const usage: DirUsage = { segments: emptyGroup(), snaps: emptyGroup(), total: emptyGroup() };
  const add = (group: FileGroup, size: number, blocks: number) => {
    group.count++;
    group.bytes += size;
    group.diskBytes += blocks * 512;
  };
  const walk = (path: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) {
      const file = join(path, name);
      let stat;
      try {
        stat = statSync(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      if (stat.isDirectory()) {
        walk(file, depth + 1);
        continue;
      }
      if (!stat.isFile()) continue;
      add(usage.total, stat.size, stat.blocks);
      if (depth === 0 && name.endsWith('.wal')) add(usage.segments, stat.size, stat.blocks);
      else if (depth === 1 && /\.(snap|tmp)$/.test(name) && basename(path) === 'snap') add(usage.snaps, stat.size, stat.blocks);
    }
  };
  walk(dir, 0);
  return usage;
}

/**
 * The sum of every sample of `name` in a Prometheus text exposition whose labels include `labels` (an
 * empty object: every sample of that name); 0 when there is none. Enough for the node's own counters and
 * histogram counts: label values are plain words, never escaped quotes.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) found[pair[1]] = pair[2];
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

/** The median (the mean of the two middle values for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const SCENARIOS = ['disk', 'restart', 'catchup', 'p99'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** `disk,p99` → the scenarios in the benchmark's own order; throws (with the valid names) on an unknown one. */
export function parseScenarios(list: string): Scenario[] {
  const wanted = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
  if (unknown.length > 0 || wanted.length === 0) {
    throw new Error(`--scenario takes a comma-separated list of ${SCENARIOS.join(', ')} (got ${list})`);
  }
  return SCENARIOS.filter((s) => wanted.includes(s));
}

/**
 * Sample points of a growing log: `record(index, take)` calls `take()` once for every multiple of `every`
 * that `index` has reached since the last call, and keeps what it returned under the highest such multiple
 * (polls are coarser than the steps at high write rates: one sample stands for the steps it passed).
 */
export class SampleSeries<T> {
  readonly points: Array<{ at: number; index: number; value: T }> = [];
  private next: number;

  constructor(readonly every: number) {
    if (!(every > 0)) throw new Error(`SampleSeries: every must be positive (got ${every})`);
    this.next = every;
  }

  record(index: number, take: () => T): void {
    if (index < this.next) return;
    const at = Math.floor(index / this.every) * this.every;
    this.points.push({ at, index, value: take() });
    this.next = at + this.every;
  }
}

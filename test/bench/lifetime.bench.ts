/**
 * `npm run bench:lifetime [-- --scenario disk,restart,catchup,p99] [--writes 1000000] ...`
 *
 * What snapshots and log compaction buy over a store's lifetime, measured on 3-node clusters of the
 * production build (real processes through scripts/lib/node-process.ts, via LocalCluster), each scenario
 * with the node's default snapshot settings beside SNAPSHOT_ENTRIES=0 (no snapshots, the log grows without
 * bound):
 *
 * - disk: N overwrites of 1,000 keys; each node's WAL_DIR at the end (segments, snapshot files), the
 *   leader's sampled every --sample-every writes, and each node's peak;
 * - restart: after those N writes, SIGTERM every node, then the time from starting the three processes to
 *   the first successful linearizable read; also for a fresh (empty) cluster;
 * - catchup: a follower SIGKILLed early in --catchup-writes writes, then restarted: the time until it has
 *   applied the leader's commit index, and whether it got there through a snapshot;
 * - p99: write latency at --clients clients in windows of --p99-seconds, the two settings taking turns,
 *   with the snapshots taken in each window counted.
 *
 * It measures; it asserts nothing. Results are printed as Markdown and written to --out as Markdown and JSON.
 * Every node and load generator it starts is ended by pid (also on Ctrl-C or an error), and every data
 * directory removed.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ClusterNode, LocalCluster, NODE_MAIN, sleep, StatusBody } from '../support/local-cluster';
import { integerOption, nonNegativeOption, parseCommandLine, UsageError, withUsage } from '../../scripts/lib/cli';
import { DirUsage, median, metricValue, parseScenarios, SampleSeries, Scenario, walDirUsage } from './lifetime-lib';
import { mergeResults, type LoadJob, type LoadResult } from './load-worker';

const ROOT = resolve(__dirname, '../..');
const KEYS = 1000;
const VALUE_BYTES = 100;
/** The key the restart scenario writes before the stop and reads after the start. */
const PROBE_KEY = 'lifetime-probe';
/** What a job limited by `ops` gets as its duration: a safety net, never the limit in practice. */
const UNTIMED_MS = 6 * 3600_000;

const USAGE = `usage: npm run bench:lifetime [-- --scenario disk,restart,catchup,p99] [--writes 1000000] [options]

options:
  --scenario LIST       comma-separated: disk, restart, catchup, p99 (default: all four)
  --writes N            writes before the disk figures and before the restart (default 1000000)
  --catchup-writes N    writes during which a follower is down (default: --writes / 5, 200000 by default)
  --sample-every N      the leader's WAL_DIR is sampled every N writes (default: --writes / 20)
  --restart-runs N      restarts (and fresh starts) measured per setting; the median is reported (default 3)
  --p99-seconds S       length of one p99 window (default 20)
  --p99-rounds N        windows per setting, the settings taking turns (default 2)
  --clients N           concurrent clients of every load (default 64)
  --segment-bytes N     WAL_SEGMENT_BYTES for every node (default: the node's, 64 MiB); compaction deletes
                        whole segments, so a small run only shows it with small segments
  --catchup-segment-bytes N
                        catchup also runs with WAL_SEGMENT_BYTES=N, so that the leader's log is compacted
                        past the follower and it needs a snapshot (default 1048576; 0: no such row;
                        with --segment-bytes, every row uses that instead)
  --out DIR             where the results go as JSON and Markdown (default .bench-results)
  -h, --help            this text

Every cluster: 3 nodes, logging at warn, every other setting the node's default except SNAPSHOT_ENTRIES=0 where
a row says so. 1,000 keys, 100-byte values. BENCH_BUILD=0 skips the build when dist/ exists.
`;

/** A node's GET /status answer, with the snapshot fields (docs/api.md). */
type Status = StatusBody & { snapshotIndex: number; firstLogIndex: number };

interface Setting {
  name: string;
  env: Record<string, string>;
}
const DEFAULT_SNAPSHOTS: Setting = { name: 'snapshots (defaults)', env: {} };
const NO_SNAPSHOTS: Setting = { name: 'SNAPSHOT_ENTRIES=0', env: { SNAPSHOT_ENTRIES: '0' } };
const SETTINGS = [DEFAULT_SNAPSHOTS, NO_SNAPSHOTS];

/** The variables the benchmark sets or leaves at the node's default: a value in the caller's environment must not reach the nodes. */
const CONTROLLED_VARIABLES = ['SNAPSHOT_ENTRIES', 'SNAPSHOT_CATCHUP_ENTRIES', 'WAL_SEGMENT_BYTES'];

interface Options {
  scenarios: Scenario[];
  writes: number;
  catchupWrites: number;
  sampleEvery: number;
  restartRuns: number;
  p99Ms: number;
  p99Rounds: number;
  clients: number;
  segmentBytes?: number;
  /** WAL_SEGMENT_BYTES of catchup's extra row; 0: no such row. */
  catchupSegmentBytes: number;
}

// ---------------------------------------------------------------------------------------------------------
// What runs, so that it can all be ended

const clusters = new Set<LocalCluster>();
const workers = new Set<ChildProcess>();
let baseEnv: Record<string, string> = {};

async function startCluster(setting: Setting): Promise<LocalCluster> {
  const cluster = await LocalCluster.start({ nodes: 3, env: { ...baseEnv, ...setting.env } });
  clusters.add(cluster);
  log(`  3 nodes (${setting.name}), pids ${cluster.nodes.map((n) => n.pid).join(', ')}, data in ${cluster.root}`);
  return cluster;
}

/** SIGKILLs the cluster's nodes (by pid) and removes its data directories. */
async function destroy(cluster: LocalCluster): Promise<void> {
  await cluster.stop();
  clusters.delete(cluster);
}

async function cleanup(): Promise<void> {
  for (const worker of workers) worker.kill('SIGKILL');
  await Promise.all([...clusters].map((c) => destroy(c).catch(() => undefined)));
}

function log(line: string): void {
  process.stdout.write(`lifetime: ${line}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// Loads

function runWorker(job: LoadJob): Promise<LoadResult> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['-r', '@swc-node/register', join(__dirname, 'load-worker.ts'), JSON.stringify(job)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    workers.add(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.on('exit', (code, signal) => {
      workers.delete(child);
      if (code !== 0) return fail(new Error(`load worker exited with ${signal ?? code}`));
      try {
        ok(JSON.parse(out.trim().split('\n').pop()!));
      } catch (error) {
        fail(error);
      }
    });
  });
}

const writeJob = (target: string, clients: number, extra: Partial<LoadJob>): LoadJob => ({
  system: 'raft-kv',
  target,
  workload: 'write',
  concurrency: clients,
  durationMs: UNTIMED_MS,
  keys: KEYS,
  valueBytes: VALUE_BYTES,
  ...extra,
});

const statusOf = (node: ClusterNode, timeoutMs = 2000) => node.get<Status>('/status', timeoutMs);

/**
 * `total` writes through `leader`; `onPoll` is called with the leader's commit index counted from the
 * start of this load, about every 200 ms while it runs, and once at the end.
 */
async function writeLoad(
  leader: ClusterNode,
  total: number,
  clients: number,
  onPoll: (written: number) => void | Promise<void> = () => undefined,
): Promise<LoadResult> {
  const base = (await statusOf(leader)).commitIndex;
  let running = true;
  const poller = (async () => {
    while (running) {
      const s = await statusOf(leader).catch(() => undefined);
      if (s) await onPoll(s.commitIndex - base);
      await sleep(200);
    }
  })();
  try {
    return await runWorker(writeJob(leader.url, clients, { ops: total }));
  } finally {
    running = false;
    await poller;
    const s = await statusOf(leader).catch(() => undefined);
    if (s) await onPoll(s.commitIndex - base);
  }
}

async function put(node: ClusterNode, key: string, value: string): Promise<void> {
  const res = await fetch(`${node.url}/kv/${key}`, {
    method: 'PUT',
    body: JSON.stringify({ value }),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`PUT /kv/${key} on ${node.name} answered ${res.status}: ${text.slice(0, 200)}`);
}

interface StartTimes {
  /** From `t0` until each node first answered /status (process start, WAL recovery and snapshot restore done). */
  servingMs: number[];
  /** From `t0` until the first successful linearizable read. */
  readMs: number;
}

/**
 * Once a node answers /status, polls GET /kv/<key> (linearizable) on it, following a follower's redirect to
 * the leader, until one node answers 200, or 404 when `absentOk`; resolves once that read succeeded and
 * every node has answered /status.
 */
async function firstRead(cluster: LocalCluster, key: string, absentOk: boolean, t0: number, timeoutMs = 300_000): Promise<StartTimes> {
  let readMs: number | undefined;
  const deadline = t0 + timeoutMs;
  const servingMs = await Promise.all(
    cluster.nodes.map(async (node) => {
      let serving: number | undefined;
      while (serving === undefined && performance.now() < deadline) {
        if (await node.get('/status', 1000).then(() => true, () => false)) serving = performance.now() - t0;
        else await sleep(20);
      }
      while (readMs === undefined && performance.now() < deadline) {
        try {
          const res = await fetch(`${node.url}/kv/${key}`, { signal: AbortSignal.timeout(2000) });
          await res.text();
          if (res.status === 200 || (absentOk && res.status === 404)) {
            readMs ??= performance.now() - t0;
            break;
          }
        } catch {
          // not answering yet
        }
        await sleep(20);
      }
      return serving;
    }),
  );
  if (readMs === undefined || servingMs.some((ms) => ms === undefined)) {
    throw new Error(`no successful GET /kv/${key}, or a node not serving /status, within ${timeoutMs} ms`);
  }
  return { servingMs: servingMs as number[], readMs };
}

async function metrics(node: ClusterNode): Promise<string> {
  const res = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

const snapshotsTaken = async (node: ClusterNode) =>
  metricValue(await metrics(node), 'raftkv_raft_snapshot_duration_seconds_count', { kind: 'taken' });

// ---------------------------------------------------------------------------------------------------------
// disk and restart

interface LoadedRun {
  setting: string;
  writes: number;
  errors: number;
  seconds: number;
  opsPerSec: number;
  /** The leader's WAL_DIR every --sample-every writes. */
  series: Array<{ at: number; index: number; usage: DirUsage }>;
  /** Per node: its WAL_DIR at the end, and the largest total seen while writing. */
  nodes: Array<{ name: string; leader: boolean; usage: DirUsage; peakBytes: number }>;
  /** The leader's log once the writes were done. */
  log: { snapshotIndex: number; firstLogIndex: number; lastLogIndex: number };
  restarts?: StartTimes[];
}

async function loadedRun(setting: Setting, o: Options, restart: boolean): Promise<LoadedRun> {
  log(`${setting.name}: ${o.writes} writes from ${o.clients} clients...`);
  const cluster = await startCluster(setting);
  try {
    const leader = await cluster.waitForLeader(30_000);
    const series = new SampleSeries<DirUsage>(o.sampleEvery);
    const peak = new Map<string, number>();
    const result = await writeLoad(leader, o.writes, o.clients, (written) => {
      for (const node of cluster.nodes) peak.set(node.name, Math.max(peak.get(node.name) ?? 0, walDirUsage(node.dir).total.bytes));
      series.record(written, () => walDirUsage(leader.dir));
    });
    await put(leader, PROBE_KEY, 'after the writes');
    // A snapshot taken at the last writes' threshold finishes (and compacts) in the background: let it.
    await sleep(1000);
    const s = await statusOf(leader);
    const run: LoadedRun = {
      setting: setting.name,
      writes: result.ops,
      errors: result.errors,
      seconds: result.wallSeconds,
      opsPerSec: result.opsPerSec,
      series: series.points.map((p) => ({ at: p.at, index: p.index, usage: p.value })),
      nodes: cluster.nodes.map((n) => {
        const usage = walDirUsage(n.dir);
        return { name: n.name, leader: n === leader, usage, peakBytes: Math.max(peak.get(n.name) ?? 0, usage.total.bytes) };
      }),
      log: { snapshotIndex: s.snapshotIndex, firstLogIndex: s.firstLogIndex, lastLogIndex: s.lastLogIndex },
    };
    log(
      `${setting.name}: ${result.ops} writes in ${result.wallSeconds.toFixed(1)} s (${result.opsPerSec.toFixed(0)}/s, ${result.errors} errors); ` +
        `leader ${leader.name}: snapshot ${s.snapshotIndex}, log [${s.firstLogIndex}, ${s.lastLogIndex}], WAL_DIR ${mib(walDirUsage(leader.dir).total.bytes)} MiB`,
    );
    if (restart) {
      run.restarts = [];
      for (let i = 0; i < o.restartRuns; i++) {
        // A clean stop of the whole cluster (SIGTERM: a leader hands over, the WAL is closed), then all three
        // processes at once.
        await Promise.all(cluster.nodes.map((n) => n.stop()));
        const t0 = performance.now();
        for (const node of cluster.nodes) node.start();
        const times = await cluster.explained(firstRead(cluster, PROBE_KEY, false, t0));
        run.restarts.push(times);
        log(`${setting.name}: restart ${i + 1}: ${describeStart(times)}`);
      }
    }
    return run;
  } finally {
    await destroy(cluster);
  }
}

const describeStart = (t: StartTimes) =>
  `nodes serving /status after ${t.servingMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s; first linearizable read after ${(t.readMs / 1000).toFixed(2)} s`;

async function freshStarts(o: Options): Promise<StartTimes[]> {
  const runs: StartTimes[] = [];
  for (let i = 0; i < o.restartRuns; i++) {
    const t0 = performance.now();
    const cluster = await startCluster(DEFAULT_SNAPSHOTS);
    try {
      const times = await cluster.explained(firstRead(cluster, PROBE_KEY, true, t0));
      runs.push(times);
      log(`fresh cluster ${i + 1}: ${describeStart(times)}`);
    } finally {
      await destroy(cluster);
    }
  }
  return runs;
}

// ---------------------------------------------------------------------------------------------------------
// catchup

interface CatchupRun {
  setting: string;
  writes: number;
  errors: number;
  /** The follower's applied index when it was killed, and the leader's commit index when it was started again. */
  appliedAtKill: number;
  target: number;
  /** From the start until it answered /status (process start and its own recovery), and until caught up. */
  servingSeconds: number;
  seconds: number;
  before: { snapshotIndex: number; firstLogIndex: number };
  after: { snapshotIndex: number; firstLogIndex: number; appliedIndex: number };
  /** The leader's log when the follower was started again. */
  leaderLog: { snapshotIndex: number; firstLogIndex: number };
  /** Snapshots the follower installed (its raftkv_raft_snapshot_duration_seconds_count{kind="installed"}). */
  installed: number;
  /** The follower's log line for the install, if it wrote one. */
  logLine?: string;
}

async function catchup(setting: Setting, o: Options): Promise<CatchupRun> {
  log(`catchup, ${setting.name}: ${o.catchupWrites} writes, a follower SIGKILLed after ${Math.floor(o.catchupWrites / 10)}...`);
  const cluster = await startCluster(setting);
  try {
    const leader = await cluster.waitForLeader(30_000);
    const follower = cluster.nodes.find((n) => n !== leader)!;
    const killAt = Math.floor(o.catchupWrites / 10);
    let killing: Promise<Status> | undefined;
    const result = await writeLoad(leader, o.catchupWrites, o.clients, (written) => {
      if (killing || written < killAt) return;
      killing = (async () => {
        const last = await statusOf(follower);
        await follower.kill();
        return last;
      })();
    });
    if (!killing) throw new Error('the follower was never killed (the writes ended before the kill point)');
    const lastSeen = await killing;
    const leaderStatus = await statusOf(leader);
    const target = leaderStatus.commitIndex;
    // Info level for this incarnation only, for its "installed the leader's snapshot" line.
    follower.options.env.LOG_LEVEL = 'info';
    const t0 = performance.now();
    follower.start();
    let now: Status | undefined;
    let servingSeconds: number | undefined;
    const deadline = t0 + 600_000;
    while (performance.now() < deadline) {
      now = await statusOf(follower, 1000).catch(() => undefined);
      if (now) servingSeconds ??= (performance.now() - t0) / 1000;
      if (now && now.appliedIndex >= target) break;
      await sleep(25);
    }
    const seconds = (performance.now() - t0) / 1000;
    if (!now || now.appliedIndex < target) throw new Error(`${follower.name} did not catch up within 600 s\n${follower.tail()}`);
    const installed = metricValue(await metrics(follower), 'raftkv_raft_snapshot_duration_seconds_count', { kind: 'installed' });
    const logLine = /installed the leader's snapshot at index \d+[^\n"]*/.exec(follower.logs())?.[0];
    const run: CatchupRun = {
      setting: setting.name,
      writes: result.ops,
      errors: result.errors,
      appliedAtKill: lastSeen.appliedIndex,
      target,
      servingSeconds: servingSeconds!,
      seconds,
      before: { snapshotIndex: lastSeen.snapshotIndex, firstLogIndex: lastSeen.firstLogIndex },
      after: { snapshotIndex: now.snapshotIndex, firstLogIndex: now.firstLogIndex, appliedIndex: now.appliedIndex },
      leaderLog: { snapshotIndex: leaderStatus.snapshotIndex, firstLogIndex: leaderStatus.firstLogIndex },
      installed,
      logLine,
    };
    log(
      `catchup, ${setting.name}: ${follower.name} from ${run.appliedAtKill} to ${target} in ${seconds.toFixed(2)} s ` +
        `(serving /status after ${run.servingSeconds.toFixed(2)} s); ` +
        `leader's log starts at ${leaderStatus.firstLogIndex}; snapshots installed: ${installed}${logLine ? ` ("${logLine}")` : ''}`,
    );
    return run;
  } finally {
    await destroy(cluster);
  }
}

/**
 * Compaction deletes whole segments: with 64 MiB segments a fresh cluster's first 200,000 writes (about
 * 27 MiB of log) are never compacted, so the follower catches up from the log whatever the snapshots. The
 * row with small segments is the one where the leader has compacted past the follower and must send a
 * snapshot. (With --segment-bytes every row already has the size asked for.)
 */
function catchupSettings(o: Options): Setting[] {
  if (o.segmentBytes !== undefined || o.catchupSegmentBytes === 0) return SETTINGS;
  const small: Setting = {
    name: `snapshots, WAL_SEGMENT_BYTES=${o.catchupSegmentBytes}`,
    env: { WAL_SEGMENT_BYTES: String(o.catchupSegmentBytes) },
  };
  return [DEFAULT_SNAPSHOTS, small, NO_SNAPSHOTS];
}

// ---------------------------------------------------------------------------------------------------------
// p99

interface P99Window {
  setting: string;
  round: number;
  result: LoadResult;
  /** The leader's snapshot index before and after the window, and the snapshots it took during it. */
  snapshotIndex: [number, number];
  leaderSnapshots: number;
  /** Snapshots taken by all three nodes during the window. */
  clusterSnapshots: number;
}

async function p99(o: Options): Promise<{ windows: P99Window[]; pooled: Array<{ setting: string; result: LoadResult }> }> {
  const running: Array<{ setting: Setting; cluster: LocalCluster }> = [];
  try {
    for (const setting of SETTINGS) running.push({ setting, cluster: await startCluster(setting) });
    // Warm-up: a node runs its first seconds unoptimized, and the keys get values.
    const warmMs = Math.min(5000, o.p99Ms / 2);
    for (const { setting, cluster } of running) {
      const leader = await cluster.waitForLeader(30_000);
      log(`p99, ${setting.name}: ${(warmMs / 1000).toFixed(1)} s of warm-up writes`);
      await runWorker(writeJob(leader.url, o.clients, { durationMs: warmMs }));
    }
    const windows: P99Window[] = [];
    for (let round = 1; round <= o.p99Rounds; round++) {
      for (const { setting, cluster } of running) {
        const leader = await cluster.waitForLeader(30_000);
        const takenBefore = await Promise.all(cluster.nodes.map(snapshotsTaken));
        const indexBefore = (await statusOf(leader)).snapshotIndex;
        const result = await runWorker(writeJob(leader.url, o.clients, { durationMs: o.p99Ms, keepLatencies: true }));
        const takenAfter = await Promise.all(cluster.nodes.map(snapshotsTaken));
        const indexAfter = (await statusOf(leader)).snapshotIndex;
        const leaderAt = cluster.nodes.indexOf(leader);
        const window: P99Window = {
          setting: setting.name,
          round,
          result,
          snapshotIndex: [indexBefore, indexAfter],
          leaderSnapshots: takenAfter[leaderAt] - takenBefore[leaderAt],
          clusterSnapshots: takenAfter.reduce((sum, n, i) => sum + n - takenBefore[i], 0),
        };
        windows.push(window);
        log(
          `p99, ${setting.name}, round ${round}: ${result.opsPerSec.toFixed(0)} writes/s, p50 ${result.p50.toFixed(2)} ms, ` +
            `p99 ${result.p99.toFixed(2)} ms, ${result.errors} errors; leader snapshot index ${indexBefore} -> ${indexAfter}, ` +
            `snapshots taken: leader ${window.leaderSnapshots}, cluster ${window.clusterSnapshots}`,
        );
      }
    }
    const pooled = SETTINGS.map((setting) => {
      const result = mergeResults(windows.filter((w) => w.setting === setting.name).map((w) => w.result));
      delete result.latencies;
      return { setting: setting.name, result };
    });
    for (const w of windows) delete w.result.latencies;
    return { windows, pooled };
  } finally {
    for (const { cluster } of running) await destroy(cluster);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Report

const mib = (bytes: number) => (bytes / 1048576).toFixed(bytes < 10 * 1048576 ? 2 : 1);
const sec = (ms: number) => (ms / 1000).toFixed(2);
const ms2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const int = (n: number) => n.toLocaleString('en-US');

interface Results {
  options: Options;
  loaded: LoadedRun[];
  fresh?: StartTimes[];
  catchup: CatchupRun[];
  p99?: Awaited<ReturnType<typeof p99>>;
}

function report(r: Results): string {
  const o = r.options;
  const out: string[] = [];
  const segmentNote = o.segmentBytes ? `, WAL_SEGMENT_BYTES=${o.segmentBytes}` : '';
  if (o.scenarios.includes('disk')) {
    out.push(
      `#### disk: WAL_DIR after ${int(o.writes)} writes (${o.clients} clients, ${KEYS} keys, ${VALUE_BYTES}-byte values${segmentNote})`,
      '',
      '| setting | node | segments | segments MiB | snapshot files | snapshots MiB | WAL_DIR MiB | WAL_DIR du MiB | peak while writing MiB | writes/s | errors |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const run of r.loaded) {
      for (const n of run.nodes) {
        out.push(
          `| ${run.setting} | ${n.name}${n.leader ? ' (leader)' : ''} | ${n.usage.segments.count} | ${mib(n.usage.segments.bytes)} | ` +
            `${n.usage.snaps.count} | ${mib(n.usage.snaps.bytes)} | ${mib(n.usage.total.bytes)} | ${mib(n.usage.total.diskBytes)} | ${mib(n.peakBytes)} | ` +
            `${run.opsPerSec.toFixed(0)} | ${run.errors} |`,
        );
      }
    }
    out.push('', `The leader's WAL_DIR (MiB, every file's size; segment and snapshot file counts) every ${int(o.sampleEvery)} writes:`, '');
    out.push(`| writes | ${r.loaded.map((run) => run.setting).join(' | ')} |`, `| ---: | ${r.loaded.map(() => '---').join(' | ')} |`);
    const steps = [...new Set(r.loaded.flatMap((run) => run.series.map((p) => p.at)))].sort((a, b) => a - b);
    for (const at of steps) {
      const cells = r.loaded.map((run) => {
        const p = run.series.find((x) => x.at === at);
        return p ? `${mib(p.usage.total.bytes)} (${p.usage.segments.count} seg, ${p.usage.snaps.count} snap)` : '-';
      });
      out.push(`| ${int(at)} | ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  if (o.scenarios.includes('restart')) {
    out.push(
      `#### restart: process start to the first linearizable read (s), ${o.restartRuns} run(s) each${segmentNote}`,
      '',
      '| cluster | log at the stop (leader) | first read, each run (s) | first read, median (s) | last node serving /status, median (s) |',
      '| --- | --- | --- | ---: | ---: |',
    );
    const row = (what: string, logAt: string, runs: StartTimes[]) =>
      `| ${what} | ${logAt} | ${runs.map((t) => sec(t.readMs)).join(' / ')} | ${sec(median(runs.map((t) => t.readMs)))} | ` +
      `${sec(median(runs.map((t) => Math.max(...t.servingMs))))} |`;
    if (r.fresh) out.push(row('fresh (empty data directories)', '-', r.fresh));
    for (const run of r.loaded) {
      const l = run.log;
      const what = run.setting === NO_SNAPSHOTS.name ? `${run.setting} (full replay)` : run.setting;
      out.push(
        row(
          `restarted after ${int(o.writes)} writes, ${what}`,
          `snapshot ${int(l.snapshotIndex)}, log [${int(l.firstLogIndex)}, ${int(l.lastLogIndex)}]`,
          run.restarts!,
        ),
      );
    }
    out.push('');
  }
  if (o.scenarios.includes('catchup')) {
    out.push(
      `#### catchup: a follower SIGKILLed after ${int(Math.floor(o.catchupWrites / 10))} of ${int(o.catchupWrites)} writes, then restarted${segmentNote}`,
      '',
      "| setting | follower applied at kill | leader's commit at restart | leader's log starts at | serving /status after (s) | caught up after (s) | follower snapshot index before / after | snapshot installed |",
      '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    );
    for (const c of r.catchup) {
      out.push(
        `| ${c.setting} | ${int(c.appliedAtKill)} | ${int(c.target)} | ${int(c.leaderLog.firstLogIndex)} | ${c.servingSeconds.toFixed(2)} | ${c.seconds.toFixed(2)} | ` +
          `${int(c.before.snapshotIndex)} / ${int(c.after.snapshotIndex)} | ${c.installed > 0 ? `yes (${c.installed})` : 'no: from the log'} |`,
      );
    }
    const lines = r.catchup.filter((c) => c.logLine).map((c) => `- ${c.setting}: "${c.logLine}"`);
    if (lines.length) out.push('', "The follower's log:", '', ...lines);
    out.push('');
  }
  if (o.scenarios.includes('p99') && r.p99) {
    out.push(
      `#### p99: writes at ${o.clients} clients, ${o.p99Rounds} window(s) of ${o.p99Ms / 1000} s per setting, taking turns${segmentNote}`,
      '',
      "| setting | round | writes/s | p50 ms | p90 ms | p99 ms | max ms | errors | leader's snapshot index | snapshots taken (leader / cluster) |",
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    );
    for (const w of r.p99.windows) {
      const x = w.result;
      out.push(
        `| ${w.setting} | ${w.round} | ${x.opsPerSec.toFixed(0)} | ${ms2(x.p50)} | ${ms2(x.p90)} | ${ms2(x.p99)} | ${ms2(x.max)} | ${x.errors} | ` +
          `${int(w.snapshotIndex[0])} → ${int(w.snapshotIndex[1])} | ${w.leaderSnapshots} / ${w.clusterSnapshots} |`,
      );
    }
    for (const p of r.p99.pooled) {
      const x = p.result;
      const ws = r.p99.windows.filter((w) => w.setting === p.setting);
      out.push(
        `| ${p.setting} | pooled | ${x.opsPerSec.toFixed(0)} | ${ms2(x.p50)} | ${ms2(x.p90)} | ${ms2(x.p99)} | ${ms2(x.max)} | ${x.errors} | - | ` +
          `${ws.reduce((s, w) => s + w.leaderSnapshots, 0)} / ${ws.reduce((s, w) => s + w.clusterSnapshots, 0)} |`,
      );
    }
    const [withSnap, without] = r.p99.pooled.map((p) => p.result);
    out.push(
      '',
      `Ratio ${DEFAULT_SNAPSHOTS.name} / ${NO_SNAPSHOTS.name} (pooled): p50 ${(withSnap.p50 / without.p50).toFixed(2)}, ` +
        `p99 ${(withSnap.p99 / without.p99).toFixed(2)}, writes/s ${(withSnap.opsPerSec / without.opsPerSec).toFixed(2)}`,
    );
    const quiet = r.p99.windows.filter((w) => w.setting === DEFAULT_SNAPSHOTS.name && w.leaderSnapshots === 0);
    if (quiet.length) out.push('', `Warning: ${quiet.length} window(s) with default snapshots saw no snapshot on the leader: lengthen --p99-seconds.`);
    out.push('');
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------

function options(): Options | undefined {
  const { values } = parseCommandLine({
    args: process.argv.slice(2),
    options: {
      scenario: { type: 'string', default: 'disk,restart,catchup,p99' },
      writes: { type: 'string', default: '1000000' },
      'catchup-writes': { type: 'string' },
      'sample-every': { type: 'string' },
      'restart-runs': { type: 'string', default: '3' },
      'p99-seconds': { type: 'string', default: '20' },
      'p99-rounds': { type: 'string', default: '2' },
      clients: { type: 'string', default: '64' },
      'segment-bytes': { type: 'string' },
      'catchup-segment-bytes': { type: 'string', default: String(1 << 20) },
      out: { type: 'string', default: join(ROOT, '.bench-results') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  let scenarios: Scenario[];
  try {
    scenarios = parseScenarios(values.scenario!);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const writes = integerOption('--writes', values.writes, 1);
  const p99Seconds = nonNegativeOption('--p99-seconds', values['p99-seconds']);
  if (p99Seconds <= 0) throw new UsageError(`--p99-seconds must be positive (got ${values['p99-seconds']})`);
  outDir = values.out!;
  return {
    scenarios,
    writes,
    catchupWrites: values['catchup-writes'] ? integerOption('--catchup-writes', values['catchup-writes'], 10) : Math.max(10, Math.floor(writes / 5)),
    sampleEvery: values['sample-every'] ? integerOption('--sample-every', values['sample-every'], 1) : Math.max(1, Math.floor(writes / 20)),
    restartRuns: integerOption('--restart-runs', values['restart-runs'], 1),
    p99Ms: p99Seconds * 1000,
    p99Rounds: integerOption('--p99-rounds', values['p99-rounds'], 1),
    clients: integerOption('--clients', values.clients, 1),
    segmentBytes: values['segment-bytes'] ? integerOption('--segment-bytes', values['segment-bytes'], 4096, 1 << 30) : undefined,
    catchupSegmentBytes:
      values['catchup-segment-bytes'] === '0' ? 0 : integerOption('--catchup-segment-bytes', values['catchup-segment-bytes'], 4096, 1 << 30),
  };
}

let outDir = '';
/** Set by Ctrl-C or SIGTERM: the failures that follow (a load generator ended by the same Ctrl-C) are expected. */
let interrupted = false;

async function main(): Promise<void> {
  const o = options();
  if (!o) return;
  if (!existsSync(NODE_MAIN) || process.env.BENCH_BUILD !== '0') {
    log('building the node (npm run build)...');
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }
  for (const name of CONTROLLED_VARIABLES) {
    if (process.env[name] !== undefined) log(`ignoring ${name}=${process.env[name]} from the environment: the benchmark sets it`);
    delete process.env[name];
  }
  baseEnv = {
    // The node's defaults, spelled out because LocalCluster's own (for the e2e tests) are faster timeouts.
    LOG_LEVEL: 'warn',
    HEARTBEAT_INTERVAL_MS: '100',
    ELECTION_TIMEOUT_MS: '1000',
    REQUEST_TIMEOUT_MS: '5000',
    ...(o.segmentBytes ? { WAL_SEGMENT_BYTES: String(o.segmentBytes) } : {}),
  };

  const onSignal = (signal: NodeJS.Signals, code: number) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping every node and load generator, removing the data directories`);
    void cleanup().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));

  const machine = `${cpus().length} x ${cpus()[0]?.model.trim()}, Node ${process.version}`;
  log(`${machine}; data under ${tmpdir()}; scenarios ${o.scenarios.join(', ')}`);
  const started = new Date();
  const results: Results = { options: o, loaded: [], catchup: [] };
  try {
    const disk = o.scenarios.includes('disk');
    const restart = o.scenarios.includes('restart');
    if (disk || restart) {
      for (const setting of SETTINGS) results.loaded.push(await loadedRun(setting, o, restart));
      if (restart) results.fresh = await freshStarts(o);
    }
    if (o.scenarios.includes('catchup')) for (const setting of catchupSettings(o)) results.catchup.push(await catchup(setting, o));
    if (o.scenarios.includes('p99')) results.p99 = await p99(o);
  } finally {
    await cleanup();
  }

  const args = process.argv.slice(2).join(' ');
  const header =
    `Command: npm run bench:lifetime${args ? ` -- ${args}` : ''}\n` +
    `Date: ${started.toISOString()} to ${new Date().toISOString()}\nMachine: ${machine}\n`;
  const text = report(results);
  process.stdout.write(`\n${header}\n${text}\n`);
  mkdirSync(outDir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(outDir, `lifetime-${stamp}.md`), `${header}\n${text}\n`);
  writeFileSync(join(outDir, `lifetime-${stamp}.json`), JSON.stringify({ machine, date: started.toISOString(), ...results }, null, 2));
  log(`results written to ${outDir}/lifetime-${stamp}.{md,json}`);
}

withUsage('bench:lifetime', main).catch(async (error) => {
  if (!interrupted) process.stderr.write(`bench:lifetime: ${(error as Error).stack ?? error}\n`);
  await cleanup();
  process.exit(interrupted ? 130 : 1);
});

/**
 * One chaos run, start to verdict: build the network, start the cluster, run clients and the nemesis for
 * the given duration, heal everything, let the cluster recover and converge, read every key everywhere,
 * tear everything down, check the history, write the report. See docs/chaos.md.
 *
 * The run fails (`ok: false`, with the reasons in `problems`) when the history is not linearizable (or the
 * checker could not decide within its budget), a replica differs after healing, an acknowledged write is
 * lost, a node exits on its own, a node answers something the API does not allow, the cluster does not
 * elect a leader or converge after healing, or too few operations succeeded to mean anything; and when the
 * watchers' streams have a gap, a duplicate or a disagreement, miss an acknowledged write, or show a write
 * applied twice (watch-checks.ts), or a watcher never reaches the end marker.
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync, WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkHistory } from '../linearizability/checker';
import { HistoryOp } from '../linearizability/history';
import { Rng } from '../simulation/rng';
import { http, sleep } from '../support/local-cluster';
import { countCas, countOps, findDivergence, findLostWrites, Value } from './checks';
import { ClientPool, Workload, WORKLOAD_MIX } from './clients';
import { BuildSnapshot, ChaosCluster, CHAOS_TIMINGS, NodeTimings, requestTimeout, snapshotBuild } from './cluster';
import { ClusterNet, NetKind, openNet } from './cluster-net';
import { applicableFaults, FaultEvent, FaultKind, Nemesis } from './nemesis';
import { ChaosReport, formatReport, writeReport } from './report';
import { CHAOS_SNAPSHOTS, countSnapshots, snapshotEnv, SnapshotSettings } from './snapshots';
import { ChaosTls, makeChaosTls } from './tls';
import { checkWatches, summarizeFindings, WatchFilter } from './watch-checks';
import { WATCH_HEARTBEAT_MS, WatcherPool } from './watchers';

export interface ChaosOptions {
  nodes: number;
  clients: number;
  keys: number;
  /** Seconds of load and faults (startup, recovery and checking come on top). */
  durationS: number;
  seed: number;
  faults: readonly FaultKind[];
  /**
   * What the clients do (clients.ts WORKLOAD_MIX): `register` (default) reads, writes and deletes; `cas`
   * adds compare-and-set (a read, then a PUT with If-Match of the version read) as half the operations.
   */
  workload?: Workload;
  net?: NetKind | 'auto';
  /** Parent directory of the run directory (default: the OS temp dir). */
  outDir?: string;
  timings?: NodeTimings;
  /** Quiet time before each fault and duration of each fault, ms. */
  quietMs?: [number, number];
  holdMs?: [number, number];
  /**
   * Keep injecting after `durationS` until this many rounds have run their course (at most 60 s more):
   * with the kinds in cycles, as many rounds as kinds means every kind was injected and held. Default 0.
   */
  minRounds?: number;
  /** Seconds the clients keep going after everything healed (default 3). */
  recoveryS?: number;
  /** Time budget of the linearizability checker, ms (default 300 s). */
  checkBudgetMs?: number;
  /** Client request timeouts, ms: each request draws one in this range (default 1 s to the node's request timeout + 1 s). */
  clientTimeoutMs?: [number, number];
  /** Self-test only: stale (non-linearizable) reads; a correct suite then finds violations. */
  staleReads?: boolean;
  /** The node build to run (a `dist/apps/kv-node` directory); default: this repository's dist/. */
  build?: string;
  /**
   * The nodes' snapshot settings (default CHAOS_SNAPSHOTS: small, so that snapshots are taken, logs compacted
   * and snapshots installed during the run). `entries: 0` turns snapshots off.
   */
  snapshots?: SnapshotSettings;
  /** Keep the nodes' data directories after a passing run (they are always kept after a failure). */
  keepData?: boolean;
  /**
   * TLS everywhere (test/chaos/tls.ts): a throwaway CA in `<runDir>/tls`, a certificate per node, mutual TLS
   * between members, https:// URLs, and the harness's requests trusting the CA. Default false: plain HTTP.
   */
  tls?: boolean;
  /**
   * Watchers following the keys through the faults (watchers.ts; checked by watch-checks.ts): default 3, on
   * different nodes, two on every key and one on the workload's keys (prefix `k`). 0: none.
   */
  watchers?: number;
  /**
   * Every write carries an Idempotency-Key and one of unknown outcome is retried with it (clients.ts,
   * retryWrites). Default true.
   */
  retryWrites?: boolean;
  command?: string;
  log?: (line: string) => void;
}

export interface ChaosResult {
  ok: boolean;
  report: ChaosReport;
  runDir: string;
  history: HistoryOp[];
}

/** At least this many acknowledged writes and reads, or the run proved nothing. */
const MIN_OK = 20;

/**
 * The end marker: written once the clients stopped, to a key every watcher follows; a watcher that saw it has
 * seen the whole run.
 */
const END_KEY = 'k-end';
/** What each watcher follows, in turn: every key (twice: two full streams to compare), the workload's keys. */
const WATCH_FILTERS: WatchFilter[] = [{ prefix: '' }, { prefix: '' }, { prefix: 'k' }];

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? ((line: string) => process.stdout.write(line + '\n'));
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const now = () => Math.round((performance.now() - t0) * 1000) / 1000;
  const timings = options.timings ?? CHAOS_TIMINGS;
  const snapshotSettings = options.snapshots ?? CHAOS_SNAPSHOTS;
  const keys = Array.from({ length: options.keys }, (_, i) => `k${i + 1}`);
  const faults = applicableFaults(options.faults, options.nodes);
  const parent = options.outDir ?? tmpdir();
  mkdirSync(parent, { recursive: true });
  const runDir = resolve(mkdtempSync(join(parent, `raftkv-chaos-${options.seed}-`)));
  log(`chaos: seed ${options.seed}; run directory ${runDir}`);

  const files = {
    history: join(runDir, 'history.jsonl'),
    faults: join(runDir, 'faults.jsonl'),
    report: join(runDir, 'report.txt'),
    watch: join(runDir, 'watch.json'),
    logs: join(runDir, 'node*.log'),
  };
  const history: HistoryOp[] = [];
  const historyOut = createWriteStream(files.history);
  const faultsOut = createWriteStream(files.faults);
  const problems: string[] = [];
  const rng = new Rng(options.seed);
  // Separate streams: the nemesis's schedule does not depend on how many operations the clients made.
  const nemesisRng = rng.fork();
  const clientRng = rng.fork();
  const watcherRng = rng.fork();

  let net: ClusterNet | undefined;
  let cluster: ChaosCluster | undefined;
  let nemesis: Nemesis | undefined;
  let clients: ClientPool | undefined;
  let watchers: WatcherPool | undefined;
  let loadMs = 0;
  let convergeMs: number | undefined;
  let healedAt = Infinity;
  const convergence: ChaosReport['convergence'] = {};
  const finalState: Record<string, Value> = {};
  let divergence: ChaosReport['divergence'] = [];
  let lostWrites: ChaosReport['lostWrites'] = [];
  let fresh: ChaosReport['fresh'] = { keys: 0, found: 0 };

  let build: BuildSnapshot | undefined;
  let tls: ChaosTls | undefined;

  try {
    build = await snapshotBuild(runDir, options.build);
    log(`chaos: running build ${build.hash} of ${build.builtAt} from ${build.source} (HEAD ${build.commit.slice(0, 12)}${build.dirty.length ? `; ${build.dirty.length} node source files differ from it` : ''})`);
    net = await openNet(options.net ?? 'auto', options.nodes, log, { tls: options.tls });
    log(`chaos: ${net.describe()}`);
    if (options.tls) {
      tls = makeChaosTls(join(runDir, 'tls'), net.endpoints);
      log(`chaos: TLS ${tls.describe()}`);
    }
    const env = { ...snapshotEnv(snapshotSettings), WATCH_HEARTBEAT_MS: String(WATCH_HEARTBEAT_MS) };
    cluster = new ChaosCluster({ net, runDir, timings, now, build, env, tls });
    cluster.start();
    const first = await cluster.waitForLeader(60_000);
    log(`chaos: ${options.nodes} nodes up, ${first.name} leads; ${options.clients} clients on ${keys.length} keys (${options.workload ?? 'register'} workload); faults ${faults.join(', ')}`);

    clients = new ClientPool({
      clients: options.clients,
      keys,
      endpoints: net.endpoints,
      timeoutMs: options.clientTimeoutMs ?? [1000, Math.max(...Array.from({ length: options.nodes }, (_, i) => requestTimeout(timings, i))) + 1000],
      rng: clientRng,
      now,
      record: (op) => {
        history.push(op);
        historyOut.write(JSON.stringify(op) + '\n');
      },
      mix: WORKLOAD_MIX[options.workload ?? 'register'],
      staleReads: options.staleReads,
      fetch: tls?.fetch,
      retryWrites: options.retryWrites ?? true,
    });
    watchers = new WatcherPool({
      endpoints: net.endpoints,
      filters: Array.from({ length: options.watchers ?? 3 }, (_, i) => WATCH_FILTERS[i % WATCH_FILTERS.length]),
      rng: watcherRng,
      now,
      fetch: tls?.fetch,
    });
    watchers.start();
    nemesis = new Nemesis({
      cluster,
      net,
      rng: nemesisRng,
      faults,
      now,
      quietMs: options.quietMs ?? [1000, 4000],
      holdMs: options.holdMs ?? [1000, 6000],
      onEvent: (e: FaultEvent) => {
        faultsOut.write(JSON.stringify(e) + '\n');
        log(`chaos: ${(e.at / 1000).toFixed(1)} s ${e.event === 'start' ? 'inject' : 'heal  '} ${e.kind} ${e.target} ${e.nodes.join(',')}`);
      },
    });
    const loadStart = performance.now();
    clients.start();
    if (faults.length > 0) nemesis.start();
    await sleep(options.durationS * 1000);
    const extraUntil = performance.now() + 60_000;
    while (faults.length > 0 && nemesis.completed < (options.minRounds ?? 0) && performance.now() < extraUntil) await sleep(250);
    try {
      await nemesis.stop();
    } catch (error) {
      // A round that could not finish (a membership change that never completed): the verdict, but the
      // checks below still say what the clients saw and where the nodes ended.
      problems.push(`the nemesis failed: ${(error as Error).stack ?? String(error)}`);
    }
    healedAt = now();
    log(`chaos: ${(healedAt / 1000).toFixed(1)} s all faults healed; ${history.length} operations so far`);

    try {
      await cluster.waitForLeader(30_000);
    } catch (error) {
      problems.push(`no leader that every node agrees on within 30 s after healing: ${(error as Error).message}`);
    }
    await sleep((options.recoveryS ?? 3) * 1000);
    await clients.stop();
    loadMs = performance.now() - loadStart;

    // The end marker, then every watcher must reach it: each one's last segment then runs to the end.
    const leader = await cluster.leader();
    const marker = await clients.write('final', END_KEY, `end-${options.seed}`, leader?.index ?? 0);
    if (marker.outcome !== 'ok') problems.push(`the end marker (a put of ${END_KEY}) was not acknowledged: ${marker.outcome}`);
    else {
      const behind = await watchers.waitForEnd(END_KEY, marker.value!, 30_000);
      if (behind.length > 0) problems.push(`watchers ${behind.join(', ')} did not see the end marker within 30 s`);
    }
    await watchers.stop();

    const convergeStart = performance.now();
    try {
      convergence.commitIndex = await cluster.waitConverged(30_000);
      convergeMs = performance.now() - convergeStart;
    } catch (error) {
      convergence.error = (error as Error).message;
      problems.push(`the nodes did not converge within 30 s after healing: ${convergence.error}`);
    }
    convergence.nodes = (await cluster.statuses()).map((s, i) =>
      s
        ? `${s.nodeId} ${s.state} term ${s.term} last ${s.lastLogIndex} commit ${s.commitIndex} applied ${s.appliedIndex}`
        : `${cluster!.nodes[i].name} did not answer /status`,
    );

    // The final state: a linearizable read of every key, the fresh keys of the set workload too (recorded,
    // so the checker sees them), then every replica's own copy, which must all agree once every node has
    // applied the same log.
    const allKeys = [...keys, ...clients.freshKeys];
    const finalValues = new Map<string, Value>();
    let unread = 0;
    await forEachLimit(allKeys, 8, async (key) => {
      const op = await finalRead(cluster!, clients!, key);
      if (op) finalValues.set(key, op.result!.found ? op.result!.value! : null);
      else unread++;
    });
    for (const key of keys) if (finalValues.has(key)) finalState[key] = finalValues.get(key)!;
    if (unread > 0) problems.push(`no linearizable read succeeded after healing for ${unread} keys`);
    const replicas: Record<string, Map<string, Value>> = { 'linearizable read': finalValues };
    for (const node of cluster.nodes) {
      const data = new Map<string, Value>();
      let failed = 0;
      await forEachLimit(allKeys, 16, async (key) => {
        const url = `${node.endpoint.clientUrl}/kv/${encodeURIComponent(key)}?consistency=stale`;
        const r = await readStale(url, tls).catch(() => undefined);
        if (r?.status === 200) data.set(key, r.body.value);
        else if (r?.status === 404) data.set(key, null);
        else failed++;
      });
      if (failed > 0) problems.push(`${node.name} did not answer stale reads of ${failed} keys`);
      replicas[node.name] = data;
    }
    divergence = findDivergence(replicas, allKeys);
    if (divergence.length > 0) problems.push(`replicas differ on ${divergence.length} keys: ${divergence.slice(0, 10).map((d) => d.key).join(', ')}`);
    fresh = { keys: clients.freshKeys.length, found: clients.freshKeys.filter((k) => typeof finalValues.get(k) === 'string').length };
    lostWrites = findLostWrites(history, finalValues);
    if (lostWrites.length > 0) {
      const failedApplied = lostWrites.filter((l) => l.writer?.outcome === 'fail').length;
      problems.push(
        `final values that no acknowledged or possibly-applied write explains on ${lostWrites.length} keys ` +
          `(${failedApplied} of them written by a write that reported failure): ${lostWrites.slice(0, 10).map((l) => l.key).join(', ')}`,
      );
    }
  } catch (error) {
    problems.push(`the run failed: ${(error as Error).stack ?? String(error)}`);
  } finally {
    await nemesis?.stop({ heal: false }).catch(() => undefined);
    await clients?.stop().catch(() => undefined);
    await watchers?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    await net?.close().catch(() => undefined);
    await tls?.close().catch(() => undefined);
    await Promise.all([endStream(historyOut), endStream(faultsOut)]);
  }

  // From the node logs (every incarnation's) and the data directories, which are still there.
  const snapshots = countSnapshots(snapshotSettings, cluster?.nodes ?? []);
  const crashes = cluster?.crashes ?? [];
  for (const c of crashes) {
    // The harness sends SIGKILL, SIGSTOP and SIGCONT only, and expects the SIGKILLs it sends.
    const foreign = c.signal !== null && c.signal !== 'SIGKILL' ? `; the harness never sends ${c.signal}: another process on this machine did` : '';
    problems.push(`${c.node} exited on its own at ${(c.at / 1000).toFixed(1)} s (code ${c.code}, signal ${c.signal}${foreign})`);
  }
  // A network that could not tell some peer connections apart did not cut them: the partitions were not real.
  for (const p of net?.problems() ?? []) problems.push(p);
  const unexpected = clients?.unexpected ?? [];
  if (unexpected.length > 0) problems.push(`${unexpected.length} answers the API does not allow (first: ${unexpected[0].status} ${JSON.stringify(unexpected[0].body)})`);
  const ops = countOps(history);
  const okWrites = (ops.byKind.put?.ok ?? 0) + (ops.byKind.delete?.ok ?? 0) + history.filter((op) => op.op === 'cas' && op.result?.swapped).length;
  const okReads = ops.byKind.get?.ok ?? 0;
  if (okWrites < MIN_OK || okReads < MIN_OK) problems.push(`too few successful operations to prove anything (${okWrites} writes, ${okReads} reads)`);
  const okAfterHeal = history.filter((op) => op.outcome === 'ok' && op.start > healedAt && op.client !== 'final').length;
  if (healedAt !== Infinity && okAfterHeal === 0) problems.push('no operation succeeded after everything was healed');

  // The watchers' streams against each other and the clients' answers; each write applied at most once.
  const watch = watchers && clients ? checkWatches(watchers.logs, history, clients.indexed) : undefined;
  if (watchers) writeFileSync(files.watch, JSON.stringify({ counts: watchers.counts, logs: watchers.logs }) + '\n');
  const watchProtocol = watchers?.problems ?? [];
  if (watchProtocol.length > 0) problems.push(`${watchProtocol.length} watch answers the API does not allow (first: ${watchProtocol.slice(0, 3).join('; ')})`);
  const applyTwice = watch?.findings.filter((f) => f.kind === 'applied twice') ?? [];
  const watchFindings = watch?.findings.filter((f) => f.kind !== 'applied twice') ?? [];
  if (watchFindings.length > 0) problems.push(`the watchers' streams are wrong: ${summarizeFindings(watchFindings)}`);
  if (applyTwice.length > 0) problems.push(`writes applied more than once: ${summarizeFindings(applyTwice)}`);

  log(`chaos: checking ${history.length} operations...`);
  const check = checkHistory(history, { timeBudgetMs: options.checkBudgetMs ?? 300_000 });
  if (check.verdict === 'violation') problems.push(`the history is not linearizable (key ${check.violation!.key})`);
  if (check.verdict === 'unknown') problems.push('the checker could not decide within its budget');

  const report: ChaosReport = {
    verdict: problems.length === 0 ? 'PASS' : 'FAIL',
    problems,
    seed: options.seed,
    command: options.command,
    startedAt,
    nodes: options.nodes,
    clients: options.clients,
    keys,
    workload: options.workload ?? 'register',
    cas: countCas(history),
    network: net?.describe() ?? 'none',
    tls: options.tls ? (tls?.describe() ?? 'TLS on, but the certificates could not be made') : undefined,
    cutTraffic: net?.cutTraffic(),
    build: build && { hash: build.hash, builtAt: build.builtAt, source: build.source, commit: build.commit, dirty: build.dirty },
    faultsEnabled: [...faults],
    timings: { totalMs: performance.now() - t0, loadMs, convergeMs, checkMs: check.elapsedMs },
    ops,
    okAfterHeal,
    faults: { rounds: nemesis?.rounds ?? 0, counts: nemesis?.counts ?? {} },
    membership: { changes: nemesis?.membershipChanges ?? [], joinRefusals: cluster?.joinRefusals ?? [] },
    snapshots,
    crashes,
    unexpected: { count: unexpected.length, samples: unexpected.slice(0, 5) },
    convergence,
    finalState,
    divergence,
    lostWrites,
    fresh,
    watch: watchers && {
      filters: watchers.logs.map((l) => l.filter),
      counts: watchers.counts,
      segments: watchers.logs.reduce((n, l) => n + l.segments.length, 0),
      check: watch && { ...watch, findings: watch.findings.slice(0, 50), findingCount: watch.findings.length },
    },
    retries: clients?.retries,
    check: {
      verdict: check.verdict,
      checkedOps: Object.values(check.perKey).reduce((n, k) => n + k.ops, 0),
      dropped: check.dropped,
      elapsedMs: check.elapsedMs,
      perKey: check.perKey,
      explanation: check.violation?.explanation,
    },
    runDir,
    files,
  };
  writeReport(report);
  if (report.verdict === 'PASS' && !options.keepData) {
    rmSync(join(runDir, 'data'), { recursive: true, force: true });
    rmSync(join(runDir, 'build'), { recursive: true, force: true });
    rmSync(join(runDir, 'tls'), { recursive: true, force: true });
  }
  log(formatReport(report));
  return { ok: report.verdict === 'PASS', report, runDir, history };
}

/** A linearizable read of `key` after healing, retried (at the current leader) until one succeeds. */
async function finalRead(cluster: ChaosCluster, clients: ClientPool, key: string): Promise<HistoryOp | undefined> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const leader = await cluster.leader();
    const op = await clients.read('final', key, leader?.index ?? attempt % cluster.nodes.length);
    if (op.outcome === 'ok') return op;
    await sleep(250);
  }
  return undefined;
}

/** A node's own copy of a key (`?consistency=stale`), through the run's TLS fetch when there is one. */
async function readStale(url: string, tls: ChaosTls | undefined): Promise<{ status: number; body: any }> {
  if (!tls) return http('GET', url, undefined, { timeoutMs: 5000 });
  const response = await tls.fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Runs `fn` on every item, at most `limit` at a time. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function endStream(stream: WriteStream): Promise<void> {
  return new Promise((resolve) => stream.end(resolve));
}

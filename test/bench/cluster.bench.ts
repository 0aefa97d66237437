/**
 * `npm run bench [-- --vs etcd] [--duration 10] [--only writes,reads,...] [--out .bench-results]`
 *
 * Starts a 3-node raft-kv cluster of the production build (logging at warn) and, with `--vs etcd`, a 3-member
 * etcd cluster (Debian's etcd-server) on loopback with default durability; drives both with the same load
 * generator (test/bench/load-worker.ts, its own process) and prints one row per workload and system:
 * ops/s, latency percentiles, errors, and the CPU the servers and the generator used. Systems alternate
 * row by row so that both see the same machine. Results are also written as JSON and Markdown.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pool } from 'undici';
import { freePorts, LocalCluster, NODE_MAIN, sleep } from '../support/local-cluster';
import { integerOption, parseCommandLine, UsageError, withUsage } from '../../scripts/lib/cli';
import { mergeResults, type LoadJob, type LoadResult, type System, type Workload } from './load-worker';

const ROOT = resolve(__dirname, '../..');
const KEYS = 10_000;
const VALUE_BYTES = 100;

const USAGE = `usage: npm run bench [-- --vs etcd] [--duration 10] [--only write@1,read@64] [--rounds 1] [--failover-runs 3] [--out DIR]

options:
  --vs etcd             also run a 3-member etcd (etcd on the PATH), the systems taking turns row by row
  --duration S          seconds per row (default 10)
  --only LIST           comma-separated rows: a workload (write, read, stale, mix, failover) or a row name
                        prefix, optionally at one concurrency (write@1, read@64)
  --rounds N            run every row N times, the systems taking turns each round; figures pool the rounds
                        (default 1)
  --failover-runs N     leader kills in the failover row (default 3)
  --out DIR             where the results go as JSON and Markdown (default .bench-results)
  -h, --help            this text

BENCH_BUILD=0 skips the build when dist/ exists.
`;

interface Row {
  name: string;
  workload: Workload | 'failover';
  concurrency: number;
  /** The clients are spread over every member instead of all asking the leader. */
  spread?: boolean;
}

const ROWS: Row[] = [
  { name: 'writes', workload: 'write', concurrency: 1 },
  { name: 'writes', workload: 'write', concurrency: 16 },
  { name: 'writes', workload: 'write', concurrency: 64 },
  { name: 'writes', workload: 'write', concurrency: 256 },
  { name: 'reads (linearizable)', workload: 'read', concurrency: 1 },
  { name: 'reads (linearizable)', workload: 'read', concurrency: 64 },
  { name: 'reads (linearizable)', workload: 'read', concurrency: 256 },
  { name: 'reads (linearizable, every node)', workload: 'read', concurrency: 64, spread: true },
  { name: 'reads (stale)', workload: 'stale', concurrency: 64 },
  { name: 'mix 90/10', workload: 'mix', concurrency: 64 },
  { name: 'failover', workload: 'failover', concurrency: 4 },
];

/** A system under test: a 3-member cluster on loopback. */
interface Target {
  readonly system: System;
  start(): Promise<void>;
  /** Base URL of the current leader (waits for one). */
  leader(timeoutMs?: number): Promise<string>;
  /** Every member's base URL. */
  members(): string[];
  /** Server process ids (for CPU accounting). */
  pids(): number[];
  /** SIGKILLs the leader, calling `onKill` just before; returns a function that restarts it. */
  killLeader(onKill: () => void): Promise<() => Promise<void>>;
  stop(): Promise<void>;
}

class RaftKvTarget implements Target {
  readonly system = 'raft-kv' as const;
  private cluster!: LocalCluster;

  async start(): Promise<void> {
    this.cluster = await LocalCluster.start({
      nodes: 3,
      // Production defaults, quiet logs.
      env: { LOG_LEVEL: 'warn', HEARTBEAT_INTERVAL_MS: '100', ELECTION_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '5000' },
    });
    await this.leader(30_000);
  }

  async leader(timeoutMs = 15_000): Promise<string> {
    return (await this.cluster.waitForLeader(timeoutMs)).url;
  }

  members(): string[] {
    return this.cluster.nodes.map((n) => n.url);
  }

  pids(): number[] {
    return this.cluster.nodes.filter((n) => n.running).map((n) => n.pid!);
  }

  async killLeader(onKill: () => void): Promise<() => Promise<void>> {
    const url = await this.leader();
    const node = this.cluster.nodes.find((n) => n.url === url)!;
    onKill();
    await node.kill();
    return async () => {
      node.start();
      await this.cluster.waitForLeader(30_000, this.cluster.nodes);
    };
  }

  async stop(): Promise<void> {
    await this.cluster?.stop();
  }
}

class EtcdTarget implements Target {
  readonly system = 'etcd' as const;
  private readonly dir = mkdtempSync(join(tmpdir(), 'raftkv-bench-etcd-'));
  private clientPorts: number[] = [];
  private peerPorts: number[] = [];
  private readonly procs: Array<ChildProcess | undefined> = [];

  async start(): Promise<void> {
    const ports = await freePorts(6);
    this.clientPorts = ports.slice(0, 3);
    this.peerPorts = ports.slice(3);
    for (let i = 0; i < 3; i++) this.spawn(i);
    await this.leader(30_000);
  }

  private spawn(i: number): void {
    const peers = this.peerPorts.map((p, j) => `e${j + 1}=http://127.0.0.1:${p}`).join(',');
    const child = spawn(
      'etcd',
      [
        `--name=e${i + 1}`,
        `--data-dir=${join(this.dir, `e${i + 1}`)}`,
        `--listen-client-urls=http://127.0.0.1:${this.clientPorts[i]}`,
        `--advertise-client-urls=http://127.0.0.1:${this.clientPorts[i]}`,
        `--listen-peer-urls=http://127.0.0.1:${this.peerPorts[i]}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${this.peerPorts[i]}`,
        `--initial-cluster=${peers}`,
        '--initial-cluster-token=raftkv-bench',
        '--initial-cluster-state=new',
        '--log-level=warn',
        '--logger=zap',
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    this.procs[i] = child;
  }

  members(): string[] {
    return this.clientPorts.map((p) => `http://127.0.0.1:${p}`);
  }

  private async statusOf(url: string): Promise<{ leader: string; self: string } | undefined> {
    try {
      const res = await fetch(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
      if (!res.ok) return undefined;
      const body = (await res.json()) as { leader?: string; header?: { member_id?: string } };
      if (!body.leader || body.leader === '0' || !body.header?.member_id) return undefined;
      return { leader: body.leader, self: body.header.member_id };
    } catch {
      return undefined;
    }
  }

  async leader(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const alive = this.members().filter((_, i) => this.procs[i] && this.procs[i]!.exitCode === null && !this.procs[i]!.killed);
      const statuses = await Promise.all(alive.map((u) => this.statusOf(u)));
      const index = statuses.findIndex((s) => s && s.leader === s.self);
      if (index >= 0) return alive[index];
      await sleep(50);
    }
    throw new Error('etcd has no leader');
  }

  pids(): number[] {
    return this.procs.filter((p) => p && p.exitCode === null && !p.killed).map((p) => p!.pid!);
  }

  async killLeader(onKill: () => void): Promise<() => Promise<void>> {
    const url = await this.leader();
    const i = this.members().indexOf(url);
    const child = this.procs[i]!;
    const exited = new Promise((ok) => child.once('exit', ok));
    onKill();
    child.kill('SIGKILL');
    await exited;
    this.procs[i] = undefined;
    return async () => {
      this.spawn(i);
      await sleep(500);
      await this.leader(30_000);
    };
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.procs.map(
        (p) =>
          p &&
          p.exitCode === null &&
          new Promise((ok) => {
            p.once('exit', ok);
            p.kill('SIGKILL');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function runWorker(job: LoadJob): Promise<LoadResult> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['-r', '@swc-node/register', join(__dirname, 'load-worker.ts'), JSON.stringify(job)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) return fail(new Error(`load worker exited with ${code}`));
      try {
        ok(JSON.parse(out.trim().split('\n').pop()!));
      } catch (error) {
        fail(error);
      }
    });
  });
}

/** Writes every key once, so that reads find values. */
async function preload(target: Target, system: System): Promise<void> {
  const pool = new Pool(await target.leader(), { connections: 64 });
  const value = 'v'.repeat(VALUE_BYTES);
  let next = 0;
  const client = async () => {
    while (next < KEYS) {
      const key = `k${next++}`;
      const body =
        system === 'raft-kv'
          ? JSON.stringify({ value })
          : JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') });
      const res = await pool.request({
        method: system === 'raft-kv' ? 'PUT' : 'POST',
        path: system === 'raft-kv' ? `/kv/${key}` : '/v3/kv/put',
        body,
        headers: { 'content-type': 'application/json' },
      });
      await res.body.text();
    }
  };
  await Promise.all(Array.from({ length: 64 }, client));
  await pool.close();
}

/**
 * SIGKILLs the leader while clients write, and measures the time from the kill to the first successful
 * write that started after it (clients find the new leader by asking every member).
 */
async function failover(target: Target, system: System): Promise<number> {
  let leader = await target.leader();
  let killedAt = Infinity;
  let recovered = Infinity;
  let stop = false;
  const write = async (url: string): Promise<boolean> => {
    const body =
      system === 'raft-kv'
        ? { method: 'PUT', path: '/kv/failover', body: JSON.stringify({ value: 'x' }) }
        : { method: 'POST', path: '/v3/kv/put', body: JSON.stringify({ key: Buffer.from('failover').toString('base64'), value: 'eA==' }) };
    try {
      const res = await fetch(`${url}${body.path}`, {
        method: body.method,
        body: body.body,
        headers: { 'content-type': 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(2000),
      });
      await res.text();
      return res.status === 200;
    } catch {
      return false;
    }
  };
  const clients = Array.from({ length: 4 }, async () => {
    while (!stop) {
      const started = performance.now();
      if (await write(leader)) {
        if (started > killedAt) {
          recovered = Math.min(recovered, performance.now());
          stop = true;
        }
      } else {
        // Find the new leader by polling every member until one claims it.
        leader = await target.leader(30_000).catch(() => leader);
      }
    }
  });
  await sleep(1000);
  const restart = await target.killLeader(() => (killedAt = performance.now()));
  await Promise.race([Promise.all(clients), sleep(30_000)]);
  stop = true;
  await restart();
  return recovered - killedAt;
}

interface Measured {
  system: System;
  row: Row;
  result?: LoadResult;
  failoverMs?: number[];
  serverCores: number;
  loadgenCores: number;
}

const fmt = (n: number | undefined, digits = 1) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));

function table(results: Measured[], vs: boolean): string {
  const header = ['system', 'workload', 'conc', 'ops/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'server CPU', 'loadgen CPU'];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const m of results) {
    if (m.row.workload === 'failover') {
      const f = m.failoverMs!;
      lines.push(`| ${m.system} | failover: SIGKILL leader, time to first write | - | - | ${f.map((x) => fmt(x, 0)).join(' / ')} | - | - | - | - | - | - |`);
      continue;
    }
    const r = m.result!;
    lines.push(
      `| ${m.system} | ${m.row.name} | ${m.row.concurrency} | ${fmt(r.opsPerSec, 0)} | ${fmt(r.p50, 2)} | ${fmt(r.p90, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.max, 1)} | ${r.errors} | ${fmt(m.serverCores, 2)} | ${fmt(m.loadgenCores, 2)} |`,
    );
  }
  if (vs) {
    lines.push('', '| workload | conc | ops/s raft-kv / etcd | p99 raft-kv / etcd |', '| --- | --- | --- | --- |');
    for (const ours of results.filter((m) => m.system === 'raft-kv')) {
      const theirs = results.find((m) => m.system === 'etcd' && m.row === ours.row);
      if (!theirs) continue;
      if (ours.row.workload === 'failover') {
        const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
        lines.push(`| failover (mean time to first write) | - | - | ${fmt(avg(ours.failoverMs!) / avg(theirs.failoverMs!), 2)} (lower is better) |`);
        continue;
      }
      lines.push(
        `| ${ours.row.name} | ${ours.row.concurrency} | ${fmt(ours.result!.opsPerSec / theirs.result!.opsPerSec, 2)} | ${fmt(ours.result!.p99 / theirs.result!.p99, 2)} |`,
      );
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseCommandLine({
    args: process.argv.slice(2),
    options: {
      vs: { type: 'string' },
      duration: { type: 'string', default: '10' },
      only: { type: 'string' },
      out: { type: 'string', default: join(ROOT, '.bench-results') },
      'failover-runs': { type: 'string', default: '3' },
      rounds: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const vsEtcd = values.vs === 'etcd';
  if (values.vs && !vsEtcd) throw new UsageError(`--vs supports only etcd (got ${values.vs})`);
  if (vsEtcd && spawnSync('etcd', ['--version']).status !== 0) {
    throw new Error('--vs etcd needs etcd on the PATH (Debian: apt-get install etcd-server)');
  }
  const duration = Number(values.duration);
  if (!Number.isFinite(duration) || duration <= 0) throw new UsageError(`--duration must be a positive number of seconds (got ${values.duration})`);
  const durationMs = duration * 1000;
  const rounds = integerOption('--rounds', values.rounds, 1);
  const failoverRuns = integerOption('--failover-runs', values['failover-runs'], 1);
  const only = values.only?.split(',');
  // --only write,read@64: a workload (write, read, stale, mix, failover) or else a row name prefix, optionally
  // narrowed to one concurrency.
  const rows = ROWS.filter(
    (r) =>
      !only ||
      only.some((o) => {
        const [what, conc] = o.split('@');
        const byWorkload = ROWS.some((x) => x.workload === what);
        return (byWorkload ? r.workload === what : r.name.startsWith(what!)) && (conc === undefined || r.concurrency === Number(conc));
      }),
  );
  if (rows.length === 0) throw new UsageError(`--only ${values.only} matches no row`);

  if (!existsSync(NODE_MAIN) || process.env.BENCH_BUILD !== '0') {
    process.stdout.write('bench: building the node (npm run build)...\n');
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }

  const machine = `${cpus().length} x ${cpus()[0]?.model.trim()}, Node ${process.version}`;
  process.stdout.write(
    `bench: ${machine}; ${values.duration} s per row${rounds > 1 ? ` and round, ${rounds} rounds (the systems take turns each round; figures pool the rounds)` : ''}; keys ${KEYS}, values ${VALUE_BYTES} B\n` +
      'bench: CPU columns are cores used (CPU seconds / wall seconds). Servers and the load generator share ' +
      'this machine: a generator near 1 core takes that core from the servers.\n',
  );

  const targets: Target[] = [new RaftKvTarget(), ...(vsEtcd ? [new EtcdTarget()] : [])];
  const cleanup = () => Promise.all(targets.map((t) => t.stop().catch(() => undefined)));
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  const results: Measured[] = [];
  try {
    for (const t of targets) {
      await t.start();
      // Always: the reads need the keys, and every row then starts on a warmed-up server (a Node process
      // runs its first seconds unoptimized; without this a single --only row would measure that).
      await preload(t, t.system);
    }
    for (const row of rows) {
      if (row.workload === 'failover') {
        for (const t of targets) {
          const measured: Measured = { system: t.system, row, serverCores: 0, loadgenCores: 0, failoverMs: [] };
          for (let i = 0; i < failoverRuns; i++) measured.failoverMs!.push(await failover(t, t.system));
          results.push(measured);
          process.stdout.write(`${table([measured], false).split('\n').pop()}\n`);
        }
        continue;
      }
      // Each round runs the row on every system in turn, so that a slow spell of the machine lands on both.
      const parts = new Map<System, { results: LoadResult[]; serverCpu: number; wall: number }>();
      for (let round = 0; round < rounds; round++) {
        for (const t of targets) {
          const pids = t.pids();
          const before = pids.map(cpuSeconds);
          const started = performance.now();
          const job: LoadJob = {
            system: t.system,
            target: await t.leader(),
            spread: row.spread ? t.members() : undefined,
            workload: row.workload,
            concurrency: row.concurrency,
            durationMs,
            keys: KEYS,
            valueBytes: VALUE_BYTES,
            readShare: 0.9,
            keepLatencies: rounds > 1,
          };
          const result = await runWorker(job);
          const part = parts.get(t.system) ?? { results: [], serverCpu: 0, wall: 0 };
          part.results.push(result);
          part.serverCpu += pids.map(cpuSeconds).reduce((sum, after, i) => sum + after - before[i], 0);
          part.wall += (performance.now() - started) / 1000;
          parts.set(t.system, part);
        }
      }
      for (const t of targets) {
        const part = parts.get(t.system)!;
        const result = part.results.length > 1 ? mergeResults(part.results) : part.results[0];
        delete result.latencies;
        const measured: Measured = {
          system: t.system,
          row,
          result,
          serverCores: part.serverCpu / part.wall,
          loadgenCores: result.cpuSeconds / result.wallSeconds,
        };
        results.push(measured);
        process.stdout.write(`${table([measured], false).split('\n').pop()}\n`);
      }
    }
  } finally {
    await cleanup();
  }

  const text = table(results, vsEtcd);
  process.stdout.write(`\n${text}\n`);
  mkdirSync(values.out!, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const args = process.argv.slice(2).join(' ');
  const header = `Command: npm run bench${args ? ` -- ${args}` : ''}\nDate: ${new Date().toISOString()}\nMachine: ${machine}\n\n`;
  writeFileSync(join(values.out!, `bench-${stamp}.md`), header + text + '\n');
  writeFileSync(join(values.out!, `bench-${stamp}.json`), JSON.stringify({ machine, date: new Date().toISOString(), results }, null, 2));
  process.stdout.write(`\nbench: results written to ${values.out}/bench-${stamp}.{md,json}\n`);
}

withUsage('bench', main).catch((error) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});

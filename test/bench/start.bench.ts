/**
 * Node start-up benchmark: `npm run bench:start [-- --rounds 8]` (docs/operations.md, "The build").
 *
 * Starts a single node on an empty data directory, again and again, from the bundle `npm run build` makes
 * (dist/apps/kv-node/kv-node.js, what runs) and from nest's unbundled output beside it
 * (dist/apps/kv-node/apps/kv-node/src/main.js), in alternating rounds so that the machine's drift hits both.
 * For each start: the time from spawn to the first answer of GET /status, and the CPU the process used until
 * then (user + system, from /proc/<pid>/stat; Linux only). Prints the median and the range of each.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NodeProcess, NODE_MAIN, REPO_ROOT } from '../../scripts/lib/node-process';
import { integerOption, parseCommandLine, withUsage } from '../../scripts/lib/cli';
import { freePorts } from '../support/local-cluster';

const USAGE = 'bench:start';
const UNBUNDLED = join(REPO_ROOT, 'dist/apps/kv-node/apps/kv-node/src/main.js');
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** CPU time (ms) the process has used, from /proc/<pid>/stat: utime + stime, in clock ticks of 10 ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function startOnce(main: string): Promise<{ readyMs: number; cpuMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-start-bench-'));
  const [port] = await freePorts(1);
  const node = new NodeProcess({
    name: 'bench',
    main,
    env: { NODE_ID: 'bench', HTTP_PORT: String(port), WAL_DIR: dir, PEER_URLS: '', LOG_LEVEL: 'warn' },
    clientUrl: `http://127.0.0.1:${port}`,
  });
  try {
    const started = performance.now();
    node.start();
    for (;;) {
      try {
        await node.status();
        break;
      } catch {
        if (performance.now() - started > 30_000) throw new Error(`${main} did not answer /status within 30 s`);
        await sleep(5);
      }
    }
    const readyMs = performance.now() - started;
    return { readyMs, cpuMs: cpuMs(node.pid!) };
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function describeRuns(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  return `median ${median.toFixed(0).padStart(5)} ms (${sorted[0].toFixed(0)}-${sorted[sorted.length - 1].toFixed(0)})`;
}

async function main(): Promise<void> {
  const { values } = parseCommandLine({ options: { rounds: { type: 'string' } } });
  const rounds = values.rounds === undefined ? 8 : integerOption('--rounds', values.rounds, 1);
  console.log(`node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${rounds} rounds`);
  const builds = [
    { label: 'bundle (kv-node.js)', main: NODE_MAIN, ready: [] as number[], cpu: [] as number[] },
    { label: 'unbundled (nest build)', main: UNBUNDLED, ready: [] as number[], cpu: [] as number[] },
  ];
  for (let round = 0; round < rounds; round++) {
    for (const build of round % 2 === 0 ? builds : [...builds].reverse()) {
      const run = await startOnce(build.main);
      build.ready.push(run.readyMs);
      build.cpu.push(run.cpuMs);
    }
  }
  for (const build of builds) {
    console.log(`${build.label.padEnd(24)} to /status: ${describeRuns(build.ready)}   CPU: ${describeRuns(build.cpu)}`);
  }
}

void withUsage(USAGE, main).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

/**
 * The long run of the KV-client simulation (kv-clients.ts): each seed is a cluster running the real
 * KvStateMachine, simulated clients calling KvService under the random schedule's faults, and a
 * linearizability check of their history.
 *
 *   node -r @swc-node/register test/simulation/kv-soak.ts --seeds 1000               # seeds 0..999, on all cores
 *   node -r @swc-node/register test/simulation/kv-soak.ts --seeds 500 --start 1e6    # another range
 *   node -r @swc-node/register test/simulation/kv-soak.ts --faults deposed-leader    # the deposed-leader schedule
 *   node -r @swc-node/register test/simulation/kv-soak.ts --workers 1 ...            # one worker thread
 *
 * Replay a seed with SIM_SEED=<n> npx jest test/simulation/linearizability.spec.ts. Exits with status 1 if
 * any seed fails (a violation, or a broken Raft invariant), after printing each failure.
 */
import { cpus } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { KvFaults, runKvClients } from './kv-clients';

interface Job {
  start: number;
  count: number;
  stride: number;
  offset: number;
  faults: KvFaults;
}

interface Report {
  seeds: number;
  failures: { seed: number; message: string }[];
  undecided: number[];
  ops: number;
  ok: number;
  fail: number;
  unknown: number;
  checkMs: number;
  maxCheckMs: number;
  /** Snapshots taken, compactions, snapshots installed (over all seeds). */
  taken: number;
  compactions: number;
  installs: number;
}

const empty = (): Report => ({
  seeds: 0,
  failures: [],
  undecided: [],
  ops: 0,
  ok: 0,
  fail: 0,
  unknown: 0,
  checkMs: 0,
  maxCheckMs: 0,
  taken: 0,
  compactions: 0,
  installs: 0,
});

async function runJob(job: Job): Promise<Report> {
  const r = empty();
  for (let i = job.offset; i < job.count; i += job.stride) {
    const seed = job.start + i;
    try {
      const s = await runKvClients({ seed, faults: job.faults });
      r.ops += s.ops;
      r.ok += s.ok;
      r.fail += s.fail;
      r.unknown += s.unknown;
      r.checkMs += s.checkMs;
      r.maxCheckMs = Math.max(r.maxCheckMs, s.checkMs);
      r.taken += s.snapshots.taken;
      r.compactions += s.snapshots.compactions;
      r.installs += s.snapshots.installs;
      if (s.verdict !== 'linearizable') r.undecided.push(seed);
    } catch (e) {
      r.failures.push({ seed, message: (e as Error).message });
    }
    r.seeds++;
  }
  return r;
}

function parseArgs(argv: string[]): { seeds: number; start: number; workers: number; faults: KvFaults } {
  const out = { seeds: 1000, start: 0, workers: cpus().length, faults: 'random' as KvFaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v)) throw new Error(`${a} needs a number`);
      return v;
    };
    if (a === '--seeds') out.seeds = next();
    else if (a === '--start') out.start = next();
    else if (a === '--workers') out.workers = Math.max(1, next());
    else if (a === '--faults') {
      const f = argv[++i];
      if (f !== 'random' && f !== 'deposed-leader') throw new Error('--faults is random or deposed-leader');
      out.faults = f;
    } else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const workers = Math.min(args.workers, args.seeds);
  console.log(`kv-soak: ${args.seeds} seeds (${args.faults} faults) from seed ${args.start}, ${workers} worker(s)`);
  const reports = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const job: Job = { start: args.start, count: args.seeds, stride: workers, offset: w, faults: args.faults };
      return new Promise<Report>((resolve, reject) => {
        const worker = new Worker(__filename, { workerData: job, execArgv: process.execArgv });
        worker.on('message', (m: Report) => resolve(m));
        worker.on('error', reject);
      });
    }),
  );
  const t = reports.reduce(
    (a, r) => ({
      seeds: a.seeds + r.seeds,
      failures: [...a.failures, ...r.failures],
      undecided: [...a.undecided, ...r.undecided],
      ops: a.ops + r.ops,
      ok: a.ok + r.ok,
      fail: a.fail + r.fail,
      unknown: a.unknown + r.unknown,
      checkMs: a.checkMs + r.checkMs,
      maxCheckMs: Math.max(a.maxCheckMs, r.maxCheckMs),
      taken: a.taken + r.taken,
      compactions: a.compactions + r.compactions,
      installs: a.installs + r.installs,
    }),
    empty(),
  );
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `kv-soak: ${t.seeds} seeds in ${secs.toFixed(1)} s (${(t.seeds / secs).toFixed(1)} seeds/s), ${t.failures.length} failed, ` +
      `${t.undecided.length} undecided (check budget); ${t.ops} operations: ${t.ok} ok, ${t.fail} failed, ${t.unknown} unknown; ` +
      `checker ${(t.checkMs / 1000).toFixed(1)} s in all, at most ${t.maxCheckMs} ms per history; ` +
      `${t.taken} snapshots taken, ${t.compactions} compactions, ${t.installs} snapshots installed`,
  );
  if (t.undecided.length > 0) console.log(`undecided seeds: ${t.undecided.sort((a, b) => a - b).join(', ')}`);
  for (const f of t.failures.sort((a, b) => a.seed - b.seed)) console.error(`\n${f.message}`);
  if (t.failures.length > 0) process.exitCode = 1;
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  runJob(workerData as Job).then(
    (report) => parentPort!.postMessage(report),
    (e) => {
      throw e;
    },
  );
}

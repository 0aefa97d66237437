/**
 * The long randomized property run (soak). Each seed is one random schedule (see random-schedule.ts)
 * with every invariant checked after every step.
 *
 *   npm run test:sim -- --seeds 100000            # seeds 0..99999, on all cores
 *   npm run test:sim -- --seeds 5000 --start 1000000  # another range
 *   npm run test:sim -- --seed 4242               # replay one seed (prints its summary or failure)
 *   npm run test:sim -- --long ...                # 150-round schedules instead of 40
 *   npm run test:sim -- --workers 1 ...           # one worker thread (default: one per core)
 *
 * Exits with status 1 if any seed fails, after printing each failing seed and its replay command.
 */
import { cpus } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { integerOption, parseCommandLine, withUsage } from '../../scripts/lib/cli';
import { DiskFullStats, SnapshotStats } from './cluster';
import { MembershipStats, runRandomSchedule, ScheduleLength } from './random-schedule';

interface Job {
  start: number;
  count: number;
  stride: number;
  offset: number;
  length: ScheduleLength;
}

interface Report {
  seeds: number;
  failures: { seed: number; message: string }[];
  committed: number;
  acked: number;
  readsServed: number;
  messages: number;
  snapshots: Partial<SnapshotStats>;
  membership: Partial<MembershipStats>;
  disk: Partial<DiskFullStats>;
}

function addStats<T extends object>(a: Partial<T>, b: Partial<T>): Partial<T> {
  const out: Record<string, number> = { ...(a as Record<string, number>) };
  for (const [k, v] of Object.entries(b) as [string, number][]) out[k] = (out[k] ?? 0) + v;
  return out as Partial<T>;
}

async function runJob(job: Job, progress?: (done: number) => void): Promise<Report> {
  const report: Report = { seeds: 0, failures: [], committed: 0, acked: 0, readsServed: 0, messages: 0, snapshots: {}, membership: {}, disk: {} };
  for (let i = job.offset; i < job.count; i += job.stride) {
    const seed = job.start + i;
    try {
      const s = await runRandomSchedule(seed, job.length);
      report.committed += s.committed;
      report.acked += s.acked;
      report.readsServed += s.readsServed;
      report.messages += s.messages;
      report.snapshots = addStats(report.snapshots, s.snapshots);
      report.membership = addStats(report.membership, s.membership);
      report.disk = addStats(report.disk, s.disk);
    } catch (e) {
      report.failures.push({ seed, message: (e as Error).message });
    }
    report.seeds++;
    if (progress && report.seeds % 1000 === 0) progress(report.seeds);
  }
  return report;
}

const USAGE = `Usage: npm run test:sim -- [options]

Runs random schedules of the simulated cluster (the production node loop on simulated ports) and checks
every invariant after every step.

Options:
  --seeds N      how many seeds (default 10000)
  --start N      first seed (default 0)
  --seed N       replay one seed and print its summary or failure
  --long         150-round schedules instead of 40
  --workers N    worker threads (default: one per core)
  -h, --help     this text`;

interface SoakArgs {
  seeds: number;
  start: number;
  seed?: number;
  length: ScheduleLength;
  workers: number;
}

function readArgs(): SoakArgs | undefined {
  const { values } = parseCommandLine({
    options: {
      seeds: { type: 'string' },
      start: { type: 'string' },
      seed: { type: 'string' },
      long: { type: 'boolean' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  return {
    seeds: values.seeds === undefined ? 10000 : integerOption('--seeds', values.seeds, 1),
    start: values.start === undefined ? 0 : integerOption('--start', values.start, 0),
    seed: values.seed === undefined ? undefined : integerOption('--seed', values.seed, 0),
    length: values.long ? 'long' : 'normal',
    workers: values.workers === undefined ? cpus().length : integerOption('--workers', values.workers, 1),
  };
}

async function main(): Promise<void> {
  const args = readArgs();
  if (!args) return;
  if (args.seed !== undefined) {
    try {
      console.log(await runRandomSchedule(args.seed, args.length));
    } catch (e) {
      console.error((e as Error).message);
      process.exitCode = 1;
    }
    return;
  }
  const t0 = Date.now();
  const workers = Math.min(args.workers, args.seeds);
  console.log(`soak: ${args.seeds} ${args.length} schedules from seed ${args.start}, ${workers} worker(s)`);
  const reports = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const job: Job = { start: args.start, count: args.seeds, stride: workers, offset: w, length: args.length };
      return new Promise<Report>((resolve, reject) => {
        const worker = new Worker(__filename, { workerData: job, execArgv: process.execArgv });
        worker.on('message', (m: { progress?: number; report?: Report }) => {
          if (m.progress !== undefined && w === 0) console.log(`  ~${m.progress * workers} seeds (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
          if (m.report) resolve(m.report);
        });
        worker.on('error', reject);
      });
    }),
  );
  const total = reports.reduce(
    (a, r) => ({
      seeds: a.seeds + r.seeds,
      failures: [...a.failures, ...r.failures],
      committed: a.committed + r.committed,
      acked: a.acked + r.acked,
      readsServed: a.readsServed + r.readsServed,
      messages: a.messages + r.messages,
      snapshots: addStats(a.snapshots, r.snapshots),
      membership: addStats(a.membership, r.membership),
      disk: addStats(a.disk, r.disk),
    }),
    { seeds: 0, failures: [], committed: 0, acked: 0, readsServed: 0, messages: 0, snapshots: {}, membership: {}, disk: {} } as Report,
  );
  const secs = (Date.now() - t0) / 1000;
  console.log(
    `soak: ${total.seeds} seeds in ${secs.toFixed(1)} s (${(total.seeds / secs).toFixed(0)} seeds/s), ${total.failures.length} failed; ` +
      `${total.committed} entries committed, ${total.acked} proposals acknowledged, ${total.readsServed} reads served, ` +
      `${total.messages} messages`,
  );
  const sn = total.snapshots;
  console.log(
    `snapshots: ${sn.taken ?? 0} taken (${sn.refused ?? 0} refused, ${sn.failedWrites ?? 0} failed writes), ` +
      `${sn.compactions ?? 0} compactions, ` +
      `${sn.sent ?? 0} MsgSnap sent (${sn.delivered ?? 0} delivered, ${sn.failed ?? 0} failed), ${sn.installs ?? 0} installed; ` +
      `state machines restored ${sn.restoredAtInstall ?? 0} times at install, ${sn.restoredAtStart ?? 0} at restart; ` +
      `crashes during a snapshot write ${sn.crashesDuringWrite ?? 0}, during an install ${sn.crashesDuringInstall ?? 0}`,
  );
  const mb = total.membership;
  console.log(
    `membership: ${mb.asked ?? 0} changes asked, ${mb.committed ?? 0} committed (${mb.added ?? 0} additions, ${mb.promoted ?? 0} promotions, ` +
      `${mb.removedVoters ?? 0} voters removed of which ${mb.leaderRemovals ?? 0} leaders, ${mb.removedLearners ?? 0} learners removed), ` +
      `${mb.refused ?? 0} refused (${mb.refusedPending ?? 0} pending, ${mb.refusedNotCaughtUp ?? 0} not caught up, ${mb.refusedReachable ?? 0} too few reachable), ` +
      `${mb.failed ?? 0} failed; ${mb.stopped ?? 0} removed nodes stopped, ${mb.addedVotersAtEnd ?? 0} added nodes voters at the end`,
  );
  const dk = total.disk;
  console.log(
    `full disks: ${dk.windows ?? 0} windows (${dk.freed ?? 0} freed), ${dk.refusedSaves ?? 0} saves, ` +
      `${dk.refusedInstalls ?? 0} installs and ${dk.refusedSnapshotWrites ?? 0} snapshot writes refused; ${dk.resumed ?? 0} nodes resumed; ` +
      `${dk.refusedRequests ?? 0} requests refused with StorageFullError`,
  );
  for (const f of total.failures.sort((a, b) => a.seed - b.seed)) console.error(`\n${f.message}`);
  if (total.failures.length > 0) process.exitCode = 1;
}

if (isMainThread) {
  withUsage('test:sim', main).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  runJob(workerData as Job, (done) => parentPort!.postMessage({ progress: done })).then((report) => parentPort!.postMessage({ report }));
}

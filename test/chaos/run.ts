/**
 * The chaos suite's command line (docs/chaos.md):
 *
 *   npm run chaos -- --duration 600 --nodes 5
 *   npm run chaos -- --duration 60 --nodes 3 --seed 1234 --faults kill,partition --net proxy
 *   npm run chaos -- --duration 60 --tls
 *   npm run chaos -- --duration 60 --workload cas
 *
 * Runs the production build (`npm run build` first). Prints the seed, the run directory, the faults as they
 * happen and the report; exits 0 when the run passed, 1 when it found a problem, 2 on bad arguments.
 */
import { integerOption, parseCommandLine, UsageError, withUsage } from '../../scripts/lib/cli';
import { Workload, WORKLOAD_KEYS, WORKLOADS } from './clients';
import { runChaos } from './harness';
import { FAULT_KINDS, FaultKind, parseFaults } from './nemesis';
import { CHAOS_SNAPSHOTS } from './snapshots';

const USAGE = `Usage: npm run chaos -- [options]

Run a real cluster under faults with concurrent clients; check the history for linearizability.

Options:
  --duration <s>      seconds of load and faults (default: 60)
  --nodes <n>         cluster size, 1 to 9 (default: 5)
  --clients <n>       concurrent clients, 1 to 200 (default: 15)
  --keys <n>          keys the clients share, 1 to 1000 (default: 8; 5 with --workload cas)
  --workload <kind>   register (reads, writes, deletes) or cas (also compare-and-set: a read,
                      then a PUT with If-Match of the version read) (default: register)
  --seed <n>          seed of the fault schedule and the clients (default: random)
  --faults <list>     comma-separated: ${FAULT_KINDS.join(', ')},
                      partition (all four partition kinds), all (default: all)
  --net <kind>        auto (namespaces when root, else proxies), netns or proxy (default: auto)
  --out <dir>         parent directory of the run directory (default: the OS temp dir)
  --check-budget <s>  time budget of the linearizability checker (default: 600)
  --snapshot-entries <n>   the nodes' SNAPSHOT_ENTRIES; 0: no snapshots (default: ${CHAOS_SNAPSHOTS.entries})
  --snapshot-catchup <n>   their SNAPSHOT_CATCHUP_ENTRIES (default: ${CHAOS_SNAPSHOTS.catchUpEntries})
  --segment-bytes <n>      their WAL_SEGMENT_BYTES, 4096 or more (default: ${CHAOS_SNAPSHOTS.segmentBytes})
  --build <dir>       the node build to run, a dist/apps/kv-node directory (default: this repository's)
  --tls               HTTPS everywhere: a throwaway CA in the run directory, a certificate per node,
                      mutual TLS between members (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE)
  --watchers <n>      watchers following the keys through the faults, 0 to 10, checked for gaps,
                      duplicates and disagreements (default: 3)
  --plain-writes      writes without Idempotency-Key, never retried (by default every write has
                      one and a write of unknown outcome is retried with it)
  --keep-data         keep the nodes' data directories after a passing run
  --stale-reads       self-test: read with ?consistency=stale (not linearizable); the run should FAIL
  -h, --help          this text
`;

type NetKind = 'auto' | 'netns' | 'proxy';

function faults(value: string): FaultKind[] {
  try {
    return parseFaults(value);
  } catch (error) {
    throw new UsageError(`--faults: ${(error as Error).message}`);
  }
}

function workload(value: string): Workload {
  if (!(WORKLOADS as readonly string[]).includes(value)) throw new UsageError(`--workload must be ${WORKLOADS.join(' or ')} (got ${value})`);
  return value as Workload;
}

function network(value: string): NetKind {
  if (value !== 'auto' && value !== 'netns' && value !== 'proxy') throw new UsageError(`--net must be auto, netns or proxy (got ${value})`);
  return value;
}

/** The options, checked; undefined for --help (printed). */
function parseOptions(argv: string[]) {
  const { values } = parseCommandLine({
    args: argv,
    options: {
      duration: { type: 'string', default: '60' },
      nodes: { type: 'string', default: '5' },
      clients: { type: 'string', default: '15' },
      keys: { type: 'string' },
      workload: { type: 'string', default: 'register' },
      seed: { type: 'string' },
      faults: { type: 'string', default: 'all' },
      net: { type: 'string', default: 'auto' },
      out: { type: 'string' },
      'check-budget': { type: 'string', default: '600' },
      'snapshot-entries': { type: 'string', default: String(CHAOS_SNAPSHOTS.entries) },
      'snapshot-catchup': { type: 'string', default: String(CHAOS_SNAPSHOTS.catchUpEntries) },
      'segment-bytes': { type: 'string', default: String(CHAOS_SNAPSHOTS.segmentBytes) },
      build: { type: 'string' },
      tls: { type: 'boolean', default: false },
      watchers: { type: 'string', default: '3' },
      'plain-writes': { type: 'boolean', default: false },
      'keep-data': { type: 'boolean', default: false },
      'stale-reads': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const kind = workload(values.workload!);
  return {
    workload: kind,
    duration: integerOption('--duration', values.duration, 1),
    nodes: integerOption('--nodes', values.nodes, 1, 9),
    clients: integerOption('--clients', values.clients, 1, 200),
    keys: integerOption('--keys', values.keys ?? String(WORKLOAD_KEYS[kind]), 1, 1000),
    seed: values.seed === undefined ? undefined : integerOption('--seed', values.seed, 0, 0xffffffff),
    faults: faults(values.faults!),
    net: network(values.net!),
    out: values.out,
    checkBudget: integerOption('--check-budget', values['check-budget'], 1),
    snapshots: {
      entries: integerOption('--snapshot-entries', values['snapshot-entries'], 0, 100_000_000),
      catchUpEntries: integerOption('--snapshot-catchup', values['snapshot-catchup'], 0, 100_000_000),
      segmentBytes: integerOption('--segment-bytes', values['segment-bytes'], 4096, 1024 * 1024 * 1024),
    },
    build: values.build,
    tls: values.tls!,
    watchers: integerOption('--watchers', values.watchers, 0, 10),
    plainWrites: values['plain-writes']!,
    keepData: values['keep-data']!,
    staleReads: values['stale-reads']!,
  };
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  if (!o) {
    process.stdout.write(USAGE);
    return 0;
  }
  const seed: number = o.seed ?? Math.floor(Math.random() * 0xffffffff);
  const command = `npm run chaos -- --duration ${o.duration} --nodes ${o.nodes} --clients ${o.clients} --keys ${o.keys} ` +
    `--seed ${seed} --faults ${o.faults.join(',')} --net ${o.net}` + (o.workload === 'register' ? '' : ` --workload ${o.workload}`) +
    ` --snapshot-entries ${o.snapshots.entries} --snapshot-catchup ${o.snapshots.catchUpEntries} --segment-bytes ${o.snapshots.segmentBytes}` +
    (o.tls ? ' --tls' : '') + (o.watchers === 3 ? '' : ` --watchers ${o.watchers}`) + (o.plainWrites ? ' --plain-writes' : '') + (o.staleReads ? ' --stale-reads' : '') + (o.build ? ` --build ${o.build}` : '');
  const result = await runChaos({
    nodes: o.nodes,
    clients: o.clients,
    keys: o.keys,
    workload: o.workload,
    durationS: o.duration,
    seed,
    faults: o.faults,
    net: o.net,
    outDir: o.out,
    checkBudgetMs: o.checkBudget * 1000,
    snapshots: o.snapshots,
    keepData: o.keepData,
    tls: o.tls,
    watchers: o.watchers,
    retryWrites: !o.plainWrites,
    build: o.build,
    staleReads: o.staleReads,
    command,
  });
  process.stdout.write(`\nreplay: ${command}\n`);
  return result.ok ? 0 : 1;
}

withUsage('chaos', main).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`chaos: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);

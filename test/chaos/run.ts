/**
 * The chaos suite's command line (docs/chaos.md):
 *
 *   npm run chaos -- --duration 600 --nodes 5
 *   npm run chaos -- --duration 60 --nodes 3 --seed 1234 --faults kill,partition --net proxy
 *
 * Runs the production build (`npm run build` first). Prints the seed, the run directory, the faults as they
 * happen and the report; exits 0 when the run passed, 1 when it found a problem, 2 on bad arguments.
 */
import { Command, InvalidArgumentError } from 'commander';
import { runChaos } from './harness';
import { FAULT_KINDS, parseFaults } from './nemesis';

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer in [${min}, ${max}]`);
    return n;
  };
}

function faults(value: string) {
  try {
    return parseFaults(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function network(value: string) {
  if (value !== 'auto' && value !== 'netns' && value !== 'proxy') throw new InvalidArgumentError('expected auto, netns or proxy');
  return value;
}

async function main(): Promise<number> {
  const program = new Command('chaos')
    .description('Run a real cluster under faults with concurrent clients; check the history for linearizability.')
    .option('--duration <s>', 'seconds of load and faults', integer(1), 60)
    .option('--nodes <n>', 'cluster size', integer(1, 9), 5)
    .option('--clients <n>', 'concurrent clients', integer(1, 200), 15)
    .option('--keys <n>', 'keys the clients share', integer(1, 1000), 8)
    .option('--seed <n>', 'seed of the fault schedule and the clients (default: random)', integer(0, 0xffffffff))
    .option('--faults <list>', `comma-separated: ${FAULT_KINDS.join(', ')}, partition (all four partition kinds), all`, faults, parseFaults('all'))
    .option('--net <kind>', 'auto (namespaces when root, else proxies), netns or proxy', network, 'auto')
    .option('--out <dir>', 'parent directory of the run directory (default: the OS temp dir)')
    .option('--check-budget <s>', 'time budget of the linearizability checker', integer(1), 600)
    .option('--build <dir>', "the node build to run, a dist/apps/kv-node directory (default: this repository's)")
    .option('--keep-data', "keep the nodes' data directories after a passing run", false)
    .option('--stale-reads', 'self-test: read with ?consistency=stale (not linearizable); the run should FAIL', false)
    .exitOverride();
  try {
    program.parse(process.argv);
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : 2;
  }
  const o = program.opts();
  const seed: number = o.seed ?? Math.floor(Math.random() * 0xffffffff);
  const command = `npm run chaos -- --duration ${o.duration} --nodes ${o.nodes} --clients ${o.clients} --keys ${o.keys} ` +
    `--seed ${seed} --faults ${(o.faults as string[]).join(',')} --net ${o.net}` + (o.staleReads ? ' --stale-reads' : '') + (o.build ? ` --build ${o.build}` : '');
  const result = await runChaos({
    nodes: o.nodes,
    clients: o.clients,
    keys: o.keys,
    durationS: o.duration,
    seed,
    faults: o.faults,
    net: o.net,
    outDir: o.out,
    checkBudgetMs: o.checkBudget * 1000,
    keepData: o.keepData,
    build: o.build,
    staleReads: o.staleReads,
    command,
  });
  process.stdout.write(`\nreplay: ${command}\n`);
  return result.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`chaos: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);

/**
 * The bounded chaos suite that runs on every CI run: a 3-node cluster behind TCP proxies, over TLS (mutual
 * TLS between members, https:// for the harness too: test/chaos/tls.ts), and a 5-node cluster in network
 * namespaces (proxies where namespaces are unavailable) over plain HTTP, each under every fault kind for
 * about 35 s with concurrent clients, then healed, converged and checked for linearizability. The nodes
 * snapshot every 50 entries in 4 KiB WAL segments (CHAOS_SNAPSHOTS), so followers that fall behind catch
 * up by InstallSnapshot during the faults: each run must have installed at least one. Every kind includes
 * a membership change (a member taken out and re-added under its NODE_ID through JOIN). The 3-node run's
 * clients also compare-and-set (the cas workload: a read, then a PUT with If-Match of the version read),
 * the 5-node run's only read, write and delete. In both, three watchers follow the keys through the faults
 * (GET /watch, resumed on other nodes with Last-Event-ID) and must agree with each other and with the
 * clients' acknowledged writes, and every write carries an Idempotency-Key: one of unknown outcome is retried
 * with it, and no write may be applied twice (docs/chaos.md, "Watchers", "Retries"). About a minute
 * each. The seed is random and printed (set CHAOS_SEED to replay one; CHAOS_BUILD runs another build); a
 * failure prints the report and keeps the run directory (history, faults, node logs, data). Long runs:
 * `npm run chaos` (docs/chaos.md).
 */
import { randomInt } from 'node:crypto';
import { Workload } from './clients';
import { runChaos } from './harness';
import { applicableFaults, FAULT_KINDS } from './nemesis';
import { formatReport } from './report';

const seed = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : randomInt(0x7fffffff);
/** CHAOS_BUILD=<a dist/apps/kv-node directory>: run another build (a fix, a mutant) instead of dist/. */
const build = process.env.CHAOS_BUILD || undefined;
const DURATION_S = 35;

/** Seed, run directory and the report's summary on stdout; the per-fault lines stay in faults.jsonl. */
const log = (line: string) => {
  if (/^chaos: (seed|network|TCP|TLS|\d+ nodes up)/.test(line)) process.stdout.write(line + '\n');
};

async function expectGreenRun(nodes: number, clients: number, keys: number, net: 'proxy' | 'auto', tls: boolean, workload: Workload): Promise<void> {
  const result = await runChaos({
    nodes,
    clients,
    keys,
    workload,
    durationS: DURATION_S,
    seed: seed + nodes,
    faults: FAULT_KINDS,
    net,
    quietMs: [500, 2000],
    holdMs: [1000, 3500],
    minRounds: applicableFaults(FAULT_KINDS, nodes).length,
    recoveryS: 2,
    checkBudgetMs: 60_000,
    build,
    tls,
    command: `CHAOS_SEED=${seed}${build ? ` CHAOS_BUILD=${build}` : ''} npx jest --selectProjects e2e --runTestsByPath test/chaos/chaos.e2e-spec.ts`,
    log,
  });
  const summary = formatReport(result.report);
  const lines = summary.split('\n');
  process.stdout.write(lines.slice(0, lines.findIndex((l) => l.startsWith('  checker:')) + 1).join('\n') + '\n');
  if (!result.ok) throw new Error(`chaos run failed (replay: CHAOS_SEED=${seed}):\n${summary}`);
  // The run was over TLS when asked (every node had a certificate, the harness trusted the CA), else not.
  expect({ seed, tls: result.report.tls?.startsWith('on: mutual TLS') ?? false }).toEqual({ seed, tls });
  // Every applicable fault kind was injected at least once, and every membership change went the whole way
  // (out, exited, a voter again).
  for (const kind of applicableFaults(FAULT_KINDS, nodes)) expect(result.report.faults.counts[kind]).toBeGreaterThan(0);
  for (const c of result.report.membership!.changes) expect({ seed, ...c }).toMatchObject({ seed, voterAt: expect.any(Number) });
  expect(result.report.check!.verdict).toBe('linearizable');
  // The cas workload exercised both sides of the condition: compare-and-sets that swapped, and 412s from
  // ones whose version had moved on (the checker confirmed each against the register).
  if (workload === 'cas') expect({ seed, swapped: result.report.cas.swapped > 0, notSwapped: result.report.cas.notSwapped > 0 }).toEqual({ seed, swapped: true, notSwapped: true });
  else expect(result.report.cas.swapped + result.report.cas.notSwapped).toBe(0);
  // The partitions stopped real traffic (connections silenced by the proxies, packets dropped by iptables;
  // undefined only with blackhole routes): a network that no longer tells senders apart cuts nothing.
  expect(result.report.cutTraffic).not.toEqual(expect.objectContaining({ count: 0 }));
  // The nodes run with small snapshot settings (CHAOS_SNAPSHOTS): they took snapshots, and at least one
  // follower that fell behind a compacted log caught up by InstallSnapshot during the faults.
  const { taken, installed } = result.report.snapshots!;
  expect({ seed, taken: taken > 0, installed: installed > 0 }).toEqual({ seed, taken: true, installed: true });
  // The watchers followed the keys across the faults, resuming on other nodes with Last-Event-ID, and the
  // watch check had something to compare: events, and acknowledged writes at indexes they covered (a gap, a
  // duplicate, a disagreement or a write applied twice already failed the run above).
  const watch = result.report.watch!;
  expect({ seed, watchers: watch.counts.watchers, events: watch.counts.events > 0, resumed: watch.counts.reconnects > 0, checked: watch.check!.acknowledged.checked > 0, findings: watch.check!.findingCount }).toEqual({
    seed,
    watchers: 3,
    events: true,
    resumed: true,
    checked: true,
    findings: 0,
  });
  // Every write carried an Idempotency-Key (retried with it when its outcome was unknown).
  expect(result.report.retries!.keyed).toBeGreaterThan(0);
}

describe(`chaos (seed ${seed})`, () => {
  it('3 nodes behind TCP proxies, over mutual TLS, stay linearizable with compare-and-set under kills, pauses, partitions and membership changes', async () => {
    await expectGreenRun(3, 10, 5, 'proxy', true, 'cas');
  }, 240_000);

  it('5 nodes in network namespaces stay linearizable under kills, pauses, partitions and membership changes', async () => {
    await expectGreenRun(5, 15, 8, 'auto', false, 'register');
  }, 240_000);
});

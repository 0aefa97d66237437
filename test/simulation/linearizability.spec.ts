/**
 * Linearizability of client histories produced inside the simulation (kv-clients.ts): simulated clients
 * call the real KvService (the code the HTTP controller calls) on production RaftNodes under the random
 * schedule's faults, and test/linearizability's checker checks every history. Also proves the check can
 * fail: the same workload on a read path that skips ReadIndex (a stale-read bug planted here, not in src/)
 * is caught.
 *
 * Replay one seed (prints its summary; SIM_HISTORY=<file> also writes its history as JSON Lines for
 * test/linearizability/check.ts):
 *   SIM_SEED=<n> npx jest test/simulation/linearizability.spec.ts
 *   SIM_SEED=<n> SIM_FAULTS=deposed-leader npx jest test/simulation/linearizability.spec.ts
 */
import { writeFileSync } from 'node:fs';
import { RaftNode } from '@app/consensus';
import { formatHistory } from '../linearizability/history';
import { KvFaults, KvLinearizabilityError, KvRunOptions, KvRunSummary, runKvClients } from './kv-clients';

const RANDOM_SEEDS = 80;
const CHUNK = 20;
const DEPOSED_SEEDS = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];

const only = process.env.SIM_SEED === undefined ? undefined : Number(process.env.SIM_SEED);
const onlyFaults = (process.env.SIM_FAULTS ?? 'random') as KvFaults;

/**
 * The bug: a leader answers linearizable reads from its own state machine at once, without confirming with
 * a quorum that it still leads (no ReadIndex round). A deposed leader that still believes it leads then
 * serves stale values.
 */
function withoutReadIndex(raft: RaftNode): RaftNode {
  return new Proxy(raft, {
    get(target, prop) {
      if (prop === 'readBarrier') {
        return () => (target.isLeader ? Promise.resolve(target.applied) : target.readBarrier());
      }
      const value: unknown = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Runs the seeds; throws naming the first violating seed (and its replay command). */
async function runSeeds(seeds: readonly number[], options: Omit<KvRunOptions, 'seed'> = {}): Promise<KvRunSummary[]> {
  const out: KvRunSummary[] = [];
  const failures: string[] = [];
  for (const seed of seeds) {
    try {
      out.push(await runKvClients({ ...options, seed }));
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  if (failures.length > 0) throw new Error(`${failures.length} seed(s) failed; the first:\n${failures[0]}`);
  return out;
}

function describeRun(s: KvRunSummary): string {
  return (
    `seed ${s.seed}: ${s.size} nodes, ${s.clients} clients, ${s.keys} key(s); ${s.ops} operations ` +
    `(${s.ok} ok, ${s.fail} failed, ${s.unknown} unknown) in ${s.time} time units; ${s.verdict} (checked in ${s.checkMs} ms); ` +
    `failures and unknowns by cause: ${JSON.stringify(s.reasons)}; snapshots ${s.snapshots.taken} taken, ` +
    `${s.snapshots.compactions} compactions, ${s.snapshots.installs} installed`
  );
}

describe('client histories in the simulator are linearizable', () => {
  if (only !== undefined) {
    it(`seed ${only}, ${onlyFaults} faults (replay)`, async () => {
      let summary: KvRunSummary | undefined;
      try {
        summary = await runKvClients({ seed: only, faults: onlyFaults });
      } catch (e) {
        summary = (e as KvLinearizabilityError).summary;
        throw e;
      } finally {
        if (summary) {
          console.log(describeRun(summary));
          if (process.env.SIM_HISTORY) writeFileSync(process.env.SIM_HISTORY, formatHistory(summary.history));
        }
      }
    }, 60_000);
    return;
  }

  for (let start = 0; start < RANDOM_SEEDS; start += CHUNK) {
    const seeds = Array.from({ length: Math.min(CHUNK, RANDOM_SEEDS - start) }, (_, i) => start + i);
    it(`seeds ${seeds[0]}..${seeds[seeds.length - 1]}: KvService clients under the random schedule's faults`, async () => {
      const runs = await runSeeds(seeds);
      // The check must decide: a search that ran out of budget proves nothing (rare at this size).
      const undecided = runs.filter((r) => r.verdict !== 'linearizable');
      expect(undecided.map(describeRun)).toEqual([]);
      // The histories are real: most operations were answered, under faults that made some fail.
      const sum = (f: (r: KvRunSummary) => number) => runs.reduce((a, r) => a + f(r), 0);
      expect(sum((r) => r.ok)).toBeGreaterThan(100 * runs.length);
      expect(sum((r) => r.unknown)).toBeGreaterThan(0);
      expect(sum((r) => r.fail)).toBeGreaterThan(0);
      // Under snapshots: the KV state went through snapshots, compactions and installs on the way.
      expect(sum((r) => r.snapshots.compactions)).toBeGreaterThanOrEqual(runs.length);
      expect(sum((r) => r.snapshots.installs)).toBeGreaterThanOrEqual(3);
      expect(sum((r) => r.snapshots.restoredAtStart)).toBeGreaterThan(0);
    }, 60_000);
  }

  it('a seed replays exactly: the same history twice', async () => {
    const [a, b] = [await runKvClients({ seed: 7 }), await runKvClients({ seed: 7 })];
    expect(b.history).toEqual(a.history);
    expect(a.history.some((op) => op.op === 'get' && op.result?.found)).toBe(true);
  });
});

describe('a deposed leader (isolated with its clients, check-quorum off so it keeps believing it leads)', () => {
  const deposed: Omit<KvRunOptions, 'seed'> = { faults: 'deposed-leader' };
  if (only !== undefined) return;

  it('the real read path (ReadIndex) stays linearizable', async () => {
    const runs = await runSeeds(DEPOSED_SEEDS, deposed);
    expect(runs.filter((r) => r.verdict !== 'linearizable').map(describeRun)).toEqual([]);
    expect(runs.reduce((a, r) => a + r.snapshots.installs, 0)).toBeGreaterThan(0);
  }, 60_000);

  it('a read path without ReadIndex serves stale reads, and the checker reports a violation', async () => {
    const verdicts: string[] = [];
    for (const seed of DEPOSED_SEEDS) {
      try {
        const s = await runKvClients({ ...deposed, seed, wrapRaft: withoutReadIndex });
        verdicts.push(`${seed}: ${s.verdict}`);
      } catch (e) {
        if (!(e instanceof KvLinearizabilityError) || e.summary?.verdict !== 'violation') throw e;
        // The report names the seed, the replay command and the stale read.
        expect(e.message).toContain(`seed ${seed}`);
        expect(e.message).toContain(`SIM_SEED=${seed} SIM_FAULTS=deposed-leader npx jest test/simulation/linearizability.spec.ts`);
        expect(e.summary.result.violation?.blocked.op).toBe('get');
        verdicts.push(`${seed}: violation`);
      }
    }
    expect(verdicts.filter((v) => v.endsWith('violation')).length).toBeGreaterThan(0);
  }, 60_000);
});

import { MessageType, NodeId, StateType } from '@app/consensus';
import { Cluster, ClusterOptions, TICK } from './cluster';

/** The lab's RaftElectionTimeout, in ticks: long enough for any election to finish (electionTick 10). */
export const ELECTION_TICKS = 30;

/**
 * Runs a scenario once per seed. A failure names the seed; scenarios are deterministic, so re-running the
 * test replays it (SIM_SEED=<seed> runs that seed only).
 */
export function forSeeds(seeds: readonly number[], body: (seed: number) => void): void {
  const only = process.env.SIM_SEED;
  for (const seed of only ? [Number(only)] : seeds) {
    try {
      body(seed);
    } catch (e) {
      const err = e as Error;
      err.message = `[seed ${seed}; replay: SIM_SEED=${seed} npx jest ${expect.getState().testPath ?? ''} -t '${expect.getState().currentTestName ?? ''}'] ${err.message}`;
      throw err;
    }
  }
}

/** forSeeds() for scenarios that wait for promises (membership changes answer with one). */
export async function forSeedsAsync(seeds: readonly number[], body: (seed: number) => Promise<void>): Promise<void> {
  const only = process.env.SIM_SEED;
  for (const seed of only ? [Number(only)] : seeds) {
    try {
      await body(seed);
    } catch (e) {
      const err = e as Error;
      err.message = `[seed ${seed}; replay: SIM_SEED=${seed} npx jest ${expect.getState().testPath ?? ''} -t '${expect.getState().currentTestName ?? ''}'] ${err.message}`;
      throw err;
    }
  }
}

export function makeCluster(options: ClusterOptions): Cluster {
  return new Cluster({ traceSize: 0, ...options });
}

/** No connected live node believes it leads (lab: checkNoLeader). */
export function checkNoLeader(c: Cluster): void {
  for (const { id } of c.leaders()) {
    if (!c.net.isolatedNode(id)) throw new Error(`expected no leader among connected servers, but ${id} claims to be leader`);
  }
}

export function stateOf(c: Cluster, id: NodeId): StateType | undefined {
  return c.status(id)?.raftState;
}

export function termOf(c: Cluster, id: NodeId): number {
  return c.status(id)!.term;
}

/** Messages of the given types sent while `body` runs. */
export function countMessages(c: Cluster, types: readonly MessageType[], body: () => void): number {
  const before = types.reduce((s, t) => s + (c.stats.byType.get(t) ?? 0), 0);
  body();
  return types.reduce((s, t) => s + (c.stats.byType.get(t) ?? 0), 0) - before;
}

/** Runs one time unit at a time until pred() holds; returns whether it did within maxTicks. */
export function runUntilFine(c: Cluster, pred: () => boolean, maxTicks: number): boolean {
  for (let i = 0; i < maxTicks * TICK; i++) {
    if (pred()) return true;
    c.runFor(1);
  }
  return pred();
}

export { TICK };

import { Cluster, ClusterOptions, SnapshotStats } from './cluster';
import { NetworkConfig, RELIABLE, UNRELIABLE } from './network';
import { Rng } from './rng';

export interface ScheduleSummary {
  seed: number;
  size: number;
  /** Highest committed index at the end. */
  committed: number;
  acked: number;
  readsServed: number;
  messages: number;
  /** Virtual time at the end (time units). */
  time: number;
  snapshots: SnapshotStats;
}

export type ScheduleLength = 'normal' | 'long';

const LOSSY: NetworkConfig = { drop: 0.3, duplicate: 0.1, minDelay: 1, maxDelay: 10, longDelayChance: 0, longDelayMax: 0, reorder: false };
const SLOW: NetworkConfig = { drop: 0.02, duplicate: 0.02, minDelay: 5, maxDelay: 40, longDelayChance: 0.1, longDelayMax: 300, reorder: true };

/** The command that replays one seed of the property test. */
export function replayCommand(seed: number, length: ScheduleLength = 'normal'): string {
  return `npm run test:sim -- --seed ${seed}${length === 'long' ? ' --long' : ''}`;
}

/**
 * Draws a cluster configuration from the seed: size, timeouts, pre-vote/check-quorum, flow-control limits,
 * driver modes, persistence latency, torn writes, state machine durability, network quality, and snapshots
 * (every 5 to 20 applied entries, 0 to 5 entries kept behind them, writes that take time and sometimes
 * fail), so that logs are compacted and lagging nodes are caught up by InstallSnapshot under every fault.
 */
export function randomClusterOptions(seed: number, rng: Rng): ClusterOptions {
  const size = rng.pick([1, 2, 3, 3, 3, 3, 4, 5, 5, 5]);
  return {
    size,
    seed,
    electionTick: rng.range(5, 12),
    heartbeatTick: rng.chance(0.8) ? 1 : 2,
    preVote: rng.chance(0.8),
    checkQuorum: rng.chance(0.8),
    maxEntriesPerMsg: rng.chance(0.3) ? rng.range(1, 4) : 4096,
    maxSizePerMsg: rng.chance(0.3) ? rng.range(1, 64) : 1 << 20,
    maxInflightMsgs: rng.chance(0.3) ? rng.range(1, 4) : 256,
    maxCommittedSizePerReady: rng.chance(0.2) ? rng.range(1, 64) : undefined,
    maxUncommittedEntriesSize: rng.chance(0.1) ? rng.range(16, 256) : 0,
    persistDelay: [0, rng.pick([0, 2, 5, 20])],
    net: rng.pick([RELIABLE, UNRELIABLE, UNRELIABLE, LOSSY, SLOW]),
    tornWrites: rng.chance(0.5),
    snapshotEntries: rng.pick([5, 5, 6, 8, 10, 15, 20]),
    snapshotCatchUpEntries: rng.pick([0, 0, 1, 2, 5]),
    snapshotDelay: [1, rng.pick([2, 10, 30])],
    snapshotWriteFailure: rng.pick([0, 0, 0.1, 0.3]),
  };
}

/**
 * One randomized run: a cluster drawn from the seed, a random schedule of crashes, restarts, partitions,
 * isolated nodes, one-way link failures, network changes, leadership transfers, forced campaigns, client
 * proposals (single and batched) and ReadIndex reads; the invariant checker runs after every event. Ends
 * by healing everything and requiring that the cluster makes progress and every node applies everything
 * committed. Throws (with the seed and the replay command) on any violation.
 */
export function runRandomSchedule(seed: number, length: ScheduleLength = 'normal'): ScheduleSummary {
  const rng = new Rng(seed ^ 0x5eed5eed);
  const opts = randomClusterOptions(seed, rng);
  // SIM_TRACE=<lines> keeps a longer trace (node log lines included) when replaying a seed.
  const c = new Cluster({ ...opts, traceSize: Number(process.env.SIM_TRACE ?? 60) });
  try {
    const rounds = length === 'long' ? 150 : 40;
    const ids = c.ids;
    for (let r = 0; r < rounds; r++) {
      chaos(c, rng);
      load(c, rng);
      c.runTicks(rng.range(1, 8));
    }
    c.settle();
    let readsServed = 0;
    for (const rd of c.reads) if (rd.index !== undefined) readsServed++;
    return {
      seed,
      size: ids.length,
      committed: c.checker.commitIndex,
      acked: c.acked.length,
      readsServed,
      messages: c.stats.sent,
      time: c.now,
      snapshots: { ...c.snapshotStats },
    };
  } catch (e) {
    const err = e as Error;
    const detail = `seed ${seed} failed: ${err.message}\n  options: ${JSON.stringify(opts)}\n  replay: ${replayCommand(seed, length)}`;
    const wrapped = new Error(`${detail}\n  last events:\n    ${c.traceLines().join('\n    ')}`);
    wrapped.name = err.name;
    wrapped.stack = `${wrapped.name}: ${wrapped.message}\n${err.stack ?? ''}`;
    throw wrapped;
  }
}

function leaderOf(c: Cluster): string | undefined {
  const ls = c.leaders();
  if (ls.length === 0) return undefined;
  return ls.reduce((a, b) => (b.term > a.term ? b : a)).id;
}

export function chaos(c: Cluster, rng: Rng): void {
  const ids = c.ids;
  const roll = rng.next();
  const alive = ids.filter((id) => c.node(id).alive);
  const dead = ids.filter((id) => !c.node(id).alive);
  if (roll < 0.1) {
    if (alive.length > 0) c.crash(rng.pick(alive));
  } else if (roll < 0.22) {
    if (dead.length > 0) c.restart(rng.pick(dead));
  } else if (roll < 0.29) {
    const shuffled = rng.shuffle([...ids]);
    const cut = rng.range(1, Math.max(1, ids.length - 1));
    c.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
  } else if (roll < 0.36) {
    c.heal();
  } else if (roll < 0.41) {
    const l = leaderOf(c);
    if (l) c.disconnect(l);
  } else if (roll < 0.44) {
    for (const id of ids) c.connect(id);
  } else if (roll < 0.48) {
    c.setNetwork(rng.pick([RELIABLE, UNRELIABLE, LOSSY, SLOW]));
  } else if (roll < 0.52) {
    const l = leaderOf(c);
    if (l) c.transferLeadership(rng.chance(0.3) ? rng.pick(ids) : l, rng.pick(ids));
  } else if (roll < 0.54) {
    if (alive.length > 0) c.campaign(rng.pick(alive));
  } else if (roll < 0.57) {
    if (ids.length > 1) {
      const a = rng.pick(ids);
      const b = rng.pick(ids.filter((x) => x !== a));
      c.net.block(a, b);
    }
  } else if (roll < 0.6) {
    // Crash and restart at once: a reboot that loses whatever was not durable.
    if (alive.length > 0) {
      const id = rng.pick(alive);
      c.crash(id);
      c.restart(id);
    }
  } else if (roll < 0.63) {
    // A disk fault: the node's next fsync fails (torn when torn writes are on) and the node stops, as the
    // real one exits; a later round restarts it, as a supervisor would.
    if (alive.length > 0) c.failNextSync(rng.pick(alive));
  } else if (roll < 0.67) {
    // A crash in the middle of a node's next snapshot write, or of the next install of a leader's snapshot
    // on any node (whenever that comes): the write is lost whole; a later round restarts the node.
    if (rng.chance(0.5)) c.crashDuringNext('install');
    else if (alive.length > 0) c.crashDuringNext('snapshot-write', rng.pick(alive));
  }
}

function load(c: Cluster, rng: Rng): void {
  const ids = c.ids;
  const l = leaderOf(c);
  const n = rng.int(4);
  for (let i = 0; i < n; i++) {
    const target = l && rng.chance(0.8) ? l : rng.pick(ids);
    c.propose(target, rng.chance(0.3) ? rng.int(40) : 0);
  }
  if (l && rng.chance(0.15)) c.proposeMany(l, rng.range(2, 60), rng.chance(0.5) ? rng.int(20) : 0);
  if (rng.chance(0.35)) c.readIndex(l && rng.chance(0.5) ? l : rng.pick(ids));
}

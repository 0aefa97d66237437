import { NodeId } from '@app/consensus';
import { Cluster, ClusterOptions, DiskFullStats, SnapshotStats } from './cluster';
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
  membership: MembershipStats;
  disk: DiskFullStats;
}

/** What came of the membership changes a schedule asked for. */
export interface MembershipStats {
  /** Changes asked of a leader, and their answers (the rest were unanswered: their leader crashed). */
  asked: number;
  committed: number;
  refused: number;
  failed: number;
  /** Refusals by reason: another change pending, a learner not caught up, too few reachable voters left. */
  refusedPending: number;
  refusedNotCaughtUp: number;
  refusedReachable: number;
  /** Committed changes by kind. */
  added: number;
  promoted: number;
  removedVoters: number;
  removedLearners: number;
  /** Committed removals of the leader that was asked. */
  leaderRemovals: number;
  /** Nodes that applied their own removal and stopped. */
  stopped: number;
  /** Nodes added during the run that are voters at the end (and, settled, hold every committed entry). */
  addedVotersAtEnd: number;
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
 * isolated nodes, one-way link failures, network changes, leadership transfers, forced campaigns, disk
 * faults (failed fsyncs, crashes during snapshot writes, full disks that refuse writes for a while), client
 * proposals (single and batched), ReadIndex reads and membership changes (new nodes added as learners or
 * voters, learners promoted, voters and learners removed, the leader among them); the invariant checker
 * runs after every event. Ends by healing everything and requiring that the cluster makes progress and
 * every member applies everything committed. Throws (with the seed and the replay command) on any
 * violation. Async only so that the answers to membership changes (promises) reach the schedule between
 * rounds; the run is as deterministic as the rest.
 */
export async function runRandomSchedule(seed: number, length: ScheduleLength = 'normal'): Promise<ScheduleSummary> {
  const rng = new Rng(seed ^ 0x5eed5eed);
  const opts = randomClusterOptions(seed, rng);
  // Some schedules keep their members (the fixed-membership runs stay as they were), others change often.
  const changeRate = rng.pick([0, 0.1, 0.25]);
  // SIM_TRACE=<lines> keeps a longer trace (node log lines included) when replaying a seed.
  const c = new Cluster({ ...opts, traceSize: Number(process.env.SIM_TRACE ?? 60) });
  try {
    const rounds = length === 'long' ? 150 : 40;
    const size = c.ids.length;
    for (let r = 0; r < rounds; r++) {
      chaos(c, rng);
      if (changeRate > 0 && (rng.chance(changeRate) || promotionDue(c) !== undefined)) changeMembers(c, rng);
      load(c, rng);
      c.runTicks(rng.range(1, 8));
      await c.answers();
    }
    c.settle();
    await c.answers();
    let readsServed = 0;
    for (const rd of c.reads) if (rd.index !== undefined) readsServed++;
    return {
      seed,
      size,
      committed: c.checker.commitIndex,
      acked: c.acked.length,
      readsServed,
      messages: c.stats.sent,
      time: c.now,
      snapshots: { ...c.snapshotStats },
      membership: membershipStats(c, size),
      disk: { ...c.diskStats },
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
  // A node removed from the cluster stays down.
  const dead = ids.filter((id) => !c.node(id).alive && !c.node(id).removed);
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
  } else if (roll < 0.7) {
    // A full disk for a random window: the node's writes are refused (nothing kept), it freezes and retries,
    // then space returns and it resumes by itself. Now and then every disk at once: nothing commits meanwhile.
    if (rng.chance(0.15)) {
      const ticks = rng.range(5, 60);
      for (const id of ids) c.fillDisk(id, ticks);
    } else {
      c.fillDisk(rng.pick(ids), rng.range(5, 200));
    }
  }
}

/**
 * Asks the leader for one membership change among those the configuration allows: add a node (as a
 * learner mostly), promote a learner, remove a voter (the leader itself at times) or a learner. Voters stay
 * between 1 and 5, members at most 7, learners at most 2. A promotion refused because the learner had not
 * caught up is asked again in the following rounds. Refusals are expected: they are counted.
 */
function changeMembers(c: Cluster, rng: Rng): void {
  const leader = leaderOf(c);
  if (!leader) return;
  const { voters, learners } = c.config;
  const again = promotionDue(c);
  if (again !== undefined && rng.chance(0.7)) {
    c.changeMembership(leader, { op: 'promote', nodeId: again });
    return;
  }
  // Learners waiting to be promoted are enough: more would mostly wait too. Removals from two voters to
  // one are asked too: the node refuses them (the voter left could wait forever for the removed one's
  // vote: long seed 418 before the refusal).
  const choices: [number, () => void][] = [];
  if (voters.length + learners.length < 7 && learners.length < 2) choices.push([3, () => add(c, rng, leader)]);
  if (learners.length > 0 && voters.length < 5) choices.push([4, () => c.changeMembership(leader, { op: 'promote', nodeId: rng.pick(learners) })]);
  if (voters.length > 1) choices.push([3, () => c.changeMembership(leader, { op: 'remove', nodeId: rng.chance(0.3) ? leader : rng.pick(voters) })]);
  if (learners.length > 0) choices.push([1, () => c.changeMembership(leader, { op: 'remove', nodeId: rng.pick(learners) })]);
  let roll = rng.next() * choices.reduce((sum, [w]) => sum + w, 0);
  for (const [w, act] of choices) {
    if (roll < w) return act();
    roll -= w;
  }
}

/**
 * Adds a node that was never admitted (its addition refused or lost) if there is one, else a new one: as
 * a learner, or sometimes as a voter at once (its snapshot retried on a timer if the write fails: seed 8775).
 */
function add(c: Cluster, rng: Rng, leader: NodeId): void {
  const ever = new Set<NodeId>();
  for (const cfg of c.checker.configHistory()) for (const id of [...cfg.voters, ...cfg.learners]) ever.add(id);
  const waiting = c.ids.filter((id) => !ever.has(id) && !c.node(id).removed);
  const id = waiting.length > 0 ? rng.pick(waiting) : c.addNode();
  c.changeMembership(leader, { op: 'add', nodeId: id, url: `sim://${id}`, learner: c.config.voters.length >= 5 || rng.chance(0.8) });
}

/** The learner whose promotion was refused last because it had not caught up, if it is still one to promote. */
function promotionDue(c: Cluster): NodeId | undefined {
  const last = c.membershipRequests[c.membershipRequests.length - 1];
  if (last?.outcome !== 'refused' || last.change.op !== 'promote' || !/has not caught up/.test(last.error!.message)) return undefined;
  const { voters, learners } = c.config;
  return learners.includes(last.change.nodeId) && voters.length < 5 ? last.change.nodeId : undefined;
}

/** Counts the answers to the run's membership changes, and checks that nodes added and promoted caught up. */
function membershipStats(c: Cluster, size: number): MembershipStats {
  const s: MembershipStats = {
    asked: 0,
    committed: 0,
    refused: 0,
    failed: 0,
    refusedPending: 0,
    refusedNotCaughtUp: 0,
    refusedReachable: 0,
    added: 0,
    promoted: 0,
    removedVoters: 0,
    removedLearners: 0,
    leaderRemovals: 0,
    stopped: 0,
    addedVotersAtEnd: 0,
  };
  const wasVoter = (id: NodeId, before: number): boolean => {
    const configs = c.checker.configHistory();
    let k = configs.length - 1;
    while (configs[k].index >= before) k--;
    return configs[k].voters.includes(id);
  };
  for (const r of c.membershipRequests) {
    s.asked++;
    if (r.outcome === 'refused') {
      s.refused++;
      const m = r.error!.message;
      if (/another membership change/.test(m)) s.refusedPending++;
      else if (/has not caught up/.test(m)) s.refusedNotCaughtUp++;
      else if (/reachable/.test(m)) s.refusedReachable++;
    } else if (r.outcome === 'failed') {
      s.failed++;
    } else if (r.outcome === 'committed') {
      s.committed++;
      const ch = r.change;
      if (ch.op === 'add') s.added++;
      if (ch.op === 'promote' || (ch.op === 'add' && !ch.learner)) s.promoted++;
      if (ch.op === 'remove') {
        if (wasVoter(ch.nodeId, r.index!)) s.removedVoters++;
        else s.removedLearners++;
        if (ch.nodeId === r.leader) s.leaderRemovals++;
      }
    }
  }
  const commit = c.checker.commitIndex;
  for (const id of c.ids.slice(size)) {
    if (c.node(id).removed) continue;
    if (!c.config.voters.includes(id)) continue;
    // settle() saw every member apply everything; said once more for the nodes that joined during the run.
    if (c.node(id).smApplied < commit) throw new Error(`${id} joined and was promoted, but applied only ${c.node(id).smApplied} of ${commit}`);
    s.addedVotersAtEnd++;
  }
  for (const id of c.ids) if (c.node(id).removed) s.stopped++;
  return s;
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

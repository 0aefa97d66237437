/**
 * The nemesis: in rounds, a quiet period, then one fault (sometimes a partition and a process fault
 * together) held for a while, then healed.
 *
 * Fault kinds:
 * - kill     SIGKILL, restarted at heal: the leader (most often), one random node, a minority, a majority
 *            other than the leader, or every node at once (the last two test durability: acknowledged
 *            writes must survive).
 * - pause    SIGSTOP, SIGCONT at heal: the leader (most often), a random node, a minority, or a majority
 *            other than the leader.
 * - isolate  cut the leader off from every other node.
 * - split    a random minority and majority that cannot reach each other.
 * - bridge   two halves that cannot reach each other and one node that reaches both (Jepsen's bridge).
 * - ring     (5+ nodes) every node reaches its neighbours on a ring, a majority, but no two nodes see the
 *            same majority (Jepsen's majorities-ring).
 * - membership  (3+ nodes) take a member out of the cluster and bring it back under its NODE_ID on an empty
 *            data directory through JOIN (membership.ts): a follower, or the leader ("move the leader
 *            out"); half the time with a partition held during the change. Healed once the member set is
 *            the original one again, every member a voter.
 *
 * Kinds come in cycles (each enabled kind once per cycle, in a shuffled order), so that even a short run
 * sees every kind. Every choice (kind, targets, durations) comes from the seeded generator in a fixed order,
 * so a seed replays the same schedule; which node is "the leader" is whatever the cluster says then.
 */
import { Rng } from '../simulation/rng';
import { ChaosCluster } from './cluster';
import { ClusterNet } from './cluster-net';
import { MembershipChange, replaceMember } from './membership';

export const FAULT_KINDS = ['kill', 'pause', 'isolate', 'split', 'bridge', 'ring', 'membership'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export const PARTITION_KINDS: readonly FaultKind[] = ['isolate', 'split', 'bridge', 'ring'];
const PROCESS_KINDS: readonly FaultKind[] = ['kill', 'pause'];

/** Parses `kill,pause,partition,...` (`partition` = every partition kind, `all` = everything). */
export function parseFaults(spec: string): FaultKind[] {
  const kinds = new Set<FaultKind>();
  for (const word of spec.split(',').map((w) => w.trim()).filter(Boolean)) {
    if (word === 'all') FAULT_KINDS.forEach((k) => kinds.add(k));
    else if (word === 'partition') PARTITION_KINDS.forEach((k) => kinds.add(k));
    else if ((FAULT_KINDS as readonly string[]).includes(word)) kinds.add(word as FaultKind);
    else throw new Error(`unknown fault '${word}'; choose from ${[...FAULT_KINDS, 'partition', 'all'].join(', ')}`);
  }
  if (kinds.size === 0) throw new Error('no faults given');
  return FAULT_KINDS.filter((k) => kinds.has(k));
}

/**
 * The fault kinds that make sense for a cluster of n nodes: a ring of 3 cuts nothing; a membership change
 * needs 3 voters (the leader refuses to remove one of two, and one cannot be removed at all).
 */
export function applicableFaults(kinds: readonly FaultKind[], n: number): FaultKind[] {
  return kinds.filter((k) => (k !== 'ring' || n >= 5) && (k !== 'membership' || n >= 3));
}

export interface FaultPlan {
  kind: FaultKind;
  /**
   * How the nodes were chosen: leader, random, minority, majority, all; for partitions, the shape; for
   * membership, leader or follower (random when no leader was known).
   */
  target: string;
  /** Nodes killed or paused (process faults), or the isolated / minority / bridge nodes (partitions). */
  nodes: number[];
  /** Pairs of nodes that cannot reach each other (partitions). */
  cuts: [number, number][];
}

/**
 * The kinds of the next rounds: every kind once, in a seeded random order, then again in another order.
 * A short run still sees every kind; a long one sees them equally often.
 */
export class FaultCycle {
  private queue: FaultKind[] = [];

  constructor(
    private readonly rng: Rng,
    private readonly kinds: readonly FaultKind[],
  ) {}

  next(): FaultKind {
    if (this.queue.length === 0) this.queue = this.rng.shuffle([...this.kinds]);
    return this.queue.shift()!;
  }
}

/**
 * One round's faults: `kind`, and with some chance, when it is a partition, a process fault (of the
 * enabled `kinds`) on a random node at the same time; when it is a membership change, half the time a
 * partition (of the enabled kinds) held during the change. Draws the same number of values whatever
 * `leader` is, so that a seed gives the same schedule of kinds and durations in every run.
 */
export function planRound(rng: Rng, kind: FaultKind, kinds: readonly FaultKind[], n: number, leader: number | undefined): FaultPlan[] {
  const plans = [plan(rng, kind, n, leader)];
  const processKinds = kinds.filter((k) => PROCESS_KINDS.includes(k));
  const compose = rng.chance(0.25);
  const extra = processKinds.length > 0 ? rng.pick(processKinds) : undefined;
  const extraNode = rng.int(n);
  if (compose && extra && PARTITION_KINDS.includes(kind)) {
    plans.push({ kind: extra, target: 'random', nodes: [extraNode], cuts: [] });
  }
  if (kind === 'membership') {
    // Never a kill or a pause with it: the change itself takes a node down, and a second one down would
    // leave 3 voters without a quorum until the round heals, which tests nothing the kill rounds do not.
    const partitionKinds = kinds.filter((k) => PARTITION_KINDS.includes(k) && (k !== 'ring' || n >= 5));
    const withPartition = rng.chance(0.5);
    const partition = partitionKinds.length > 0 ? plan(rng, rng.pick(partitionKinds), n, leader) : undefined;
    if (withPartition && partition) plans.push(partition);
  }
  return plans;
}

function plan(rng: Rng, kind: FaultKind, n: number, leader: number | undefined): FaultPlan {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const r = rng.next();
  const minority = Math.floor((n - 1) / 2);
  const majority = Math.floor(n / 2) + 1;
  const across = (a: number[], b: number[]) => a.flatMap((x) => b.map((y) => [x, y] as [number, number]));
  const leaderOr = (fallback: number) => leader ?? fallback;
  // A majority other than the leader: the leader lives on without a quorum, its pending requests time out,
  // and what it proposed may still commit once the others are back.
  const followers = [...order.filter((i) => i !== leader), ...order.filter((i) => i === leader)];
  switch (kind) {
    case 'kill':
      if (r < 0.45 && leader !== undefined) return { kind, target: 'leader', nodes: [leader], cuts: [] };
      if (r < 0.7) return { kind, target: 'random', nodes: [order[0]], cuts: [] };
      if (r < 0.8) return { kind, target: 'minority', nodes: order.slice(0, minority), cuts: [] };
      if (r < 0.9) return { kind, target: 'majority', nodes: followers.slice(0, majority), cuts: [] };
      return { kind, target: 'all', nodes: order, cuts: [] };
    case 'pause':
      if (r < 0.5 && leader !== undefined) return { kind, target: 'leader', nodes: [leader], cuts: [] };
      if (r < 0.75) return { kind, target: 'random', nodes: [order[0]], cuts: [] };
      if (r < 0.9) return { kind, target: 'minority', nodes: order.slice(0, minority), cuts: [] };
      return { kind, target: 'majority', nodes: followers.slice(0, majority), cuts: [] };
    case 'isolate': {
      const node = leaderOr(order[0]);
      const others = order.filter((i) => i !== node);
      return { kind, target: leader === undefined ? 'random' : 'leader', nodes: [node], cuts: across([node], others) };
    }
    case 'split': {
      const small = order.slice(0, Math.max(1, Math.floor(n / 2)));
      return { kind, target: 'minority', nodes: small, cuts: across(small, order.slice(small.length)) };
    }
    case 'bridge': {
      const half = Math.floor((n - 1) / 2);
      const a = order.slice(0, half);
      const b = order.slice(half + 1);
      return { kind, target: 'bridge', nodes: [order[half]], cuts: across(a, b) };
    }
    case 'membership':
      // Move the leader out half the time: it is asked to remove itself, answers, then steps down.
      if (r < 0.5 && leader !== undefined) return { kind, target: 'leader', nodes: [leader], cuts: [] };
      return { kind, target: leader === undefined ? 'random' : 'follower', nodes: [followers[0]], cuts: [] };
    case 'ring': {
      // Each node keeps its k nearest neighbours on each side: 2k + 1 >= a majority.
      const k = Math.ceil((majority - 1) / 2);
      const cuts: [number, number][] = [];
      for (let x = 0; x < n; x++) {
        for (let y = x + 1; y < n; y++) {
          const d = Math.min(y - x, n - (y - x));
          if (d > k) cuts.push([order[x], order[y]]);
        }
      }
      return { kind, target: 'ring', nodes: order, cuts };
    }
  }
}

export interface FaultEvent {
  /** Harness clock (ms since the run started). */
  at: number;
  /** Wall clock, to find the moment in the nodes' logs. */
  wall: string;
  event: 'start' | 'end';
  round: number;
  kind: FaultKind;
  target: string;
  nodes: string[];
  cuts?: string[];
}

export interface NemesisOptions {
  cluster: ChaosCluster;
  net: ClusterNet;
  rng: Rng;
  faults: readonly FaultKind[];
  now: () => number;
  /** Quiet time before each fault, ms (uniform in the range). */
  quietMs: [number, number];
  /** How long each fault lasts, ms (uniform in the range). */
  holdMs: [number, number];
  onEvent: (event: FaultEvent) => void;
}

export class Nemesis {
  private stopping = false;
  private wake?: () => void;
  private running?: Promise<void>;
  private error?: Error;
  /** Faults injected, by kind and by `kind:target`. */
  readonly counts: Record<string, number> = {};
  rounds = 0;
  /** Rounds whose faults were held their full time and healed. */
  completed = 0;
  /** Every membership change begun, and how far it got. */
  readonly membershipChanges: MembershipChange[] = [];
  /** The membership change under way (awaited when its round heals). */
  private change?: Promise<void>;

  constructor(private readonly options: NemesisOptions) {}

  /** Starts the rounds; they go on until stop(). */
  start(): void {
    this.running = this.loop().catch((error: Error) => {
      this.error = error;
    });
  }

  /**
   * Ends the current round (healing it at once; a membership change under way is waited for) and, with
   * `heal` (the default), heals everything: every node runs, unpaused, fully connected. Rethrows what made
   * the rounds fail, if anything did.
   */
  async stop(options: { heal?: boolean } = {}): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    if (options.heal ?? true) await this.healAll();
    if (this.error) throw this.error;
  }

  async healAll(): Promise<void> {
    const { cluster, net } = this.options;
    await net.setCuts([]);
    for (const node of cluster.nodes) {
      if (node.paused) node.resume();
      // A node whose membership change failed midway is not restarted: a removed node's directory refuses
      // to start, and the failure is already the run's verdict.
      if (!node.running && node.phase === 'member') node.start();
    }
  }

  private async loop(): Promise<void> {
    const { rng, cluster, now } = this.options;
    const nodes = cluster.nodes;
    const cycle = new FaultCycle(rng, this.options.faults);
    while (!this.stopping) {
      const quiet = rng.range(...this.options.quietMs);
      const hold = rng.range(...this.options.holdMs);
      await this.sleep(quiet);
      if (this.stopping) break;
      const leader = await cluster.leader();
      const plans = planRound(rng, cycle.next(), this.options.faults, nodes.length, leader?.index);
      const round = ++this.rounds;
      for (const p of plans) {
        await this.inject(p, round, plans);
        this.counts[p.kind] = (this.counts[p.kind] ?? 0) + 1;
        this.counts[`${p.kind}:${p.target}`] = (this.counts[`${p.kind}:${p.target}`] ?? 0) + 1;
        this.options.onEvent({ at: now(), wall: new Date().toISOString(), event: 'start', round, ...this.describe(p) });
      }
      await this.sleep(hold);
      const full = !this.stopping;
      for (const p of plans.reverse()) {
        await this.heal(p);
        this.options.onEvent({ at: now(), wall: new Date().toISOString(), event: 'end', round, ...this.describe(p) });
      }
      if (full) this.completed++;
    }
  }

  private async inject(p: FaultPlan, round: number, plans: readonly FaultPlan[]): Promise<void> {
    const { cluster, now } = this.options;
    const nodes = p.nodes.map((i) => cluster.nodes[i]);
    if (p.kind === 'kill') await Promise.all(nodes.map((n) => n.kill()));
    else if (p.kind === 'pause') nodes.forEach((n) => n.pause());
    else if (p.kind === 'membership') {
      const partition = plans.find((q) => PARTITION_KINDS.includes(q.kind))?.kind;
      const change: MembershipChange = { round, node: nodes[0].name, target: p.target, partition, startedAt: now(), removeRequests: 0, retries: {}, joinAttempts: 0 };
      this.membershipChanges.push(change);
      // Runs in the background while the round holds (and any partition with it); awaited at heal.
      this.change = replaceMember(cluster, p.nodes[0], change, now);
      this.change.catch(() => undefined);
    } else await this.options.net.setCuts(p.cuts);
  }

  private async heal(p: FaultPlan): Promise<void> {
    const nodes = p.nodes.map((i) => this.options.cluster.nodes[i]);
    if (p.kind === 'kill') nodes.forEach((n) => n.start());
    else if (p.kind === 'pause') nodes.forEach((n) => n.resume());
    else if (p.kind === 'membership') {
      const change = this.change;
      this.change = undefined;
      await change;
    } else await this.options.net.setCuts([]);
  }

  private describe(p: FaultPlan): Pick<FaultEvent, 'kind' | 'target' | 'nodes' | 'cuts'> {
    const name = (i: number) => this.options.cluster.nodes[i].name;
    const cuts = p.cuts.length > 0 ? p.cuts.map(([a, b]) => `${name(a)}-${name(b)}`) : undefined;
    return { kind: p.kind, target: p.target, nodes: p.nodes.map(name), cuts };
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

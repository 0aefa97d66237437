import { NodeId } from '@app/consensus';
import { Rng } from './rng';

/** How the simulated network treats each message. Delays are in virtual time units (a tick is TICK units). */
export interface NetworkConfig {
  /** Probability that a message is lost. */
  drop: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  duplicate: number;
  minDelay: number;
  maxDelay: number;
  /** Probability of a long delay (up to longDelayMax), which reorders messages heavily. */
  longDelayChance: number;
  longDelayMax: number;
  /**
   * Whether messages on one link may overtake each other. When false, each directed link is FIFO (as a
   * TCP stream): a message is never delivered before one sent earlier on the same link.
   */
  reorder: boolean;
}

export const RELIABLE: NetworkConfig = {
  drop: 0,
  duplicate: 0,
  minDelay: 1,
  maxDelay: 5,
  longDelayChance: 0,
  longDelayMax: 0,
  reorder: false,
};

/** The lab's "unreliable" network: loss, duplication, and delays long enough to reorder. */
export const UNRELIABLE: NetworkConfig = {
  drop: 0.1,
  duplicate: 0.05,
  minDelay: 1,
  maxDelay: 25,
  longDelayChance: 0.05,
  longDelayMax: 200,
  reorder: true,
};

/**
 * Connectivity and message fate. A message between two nodes goes through only if they are connected both
 * when it is sent and when it would be delivered (a partition also cuts packets in flight).
 */
export class Network {
  config: NetworkConfig;
  private readonly group = new Map<NodeId, number>();
  private readonly isolated = new Set<NodeId>();
  private readonly blocked = new Set<string>();
  /** Latest delivery time per directed link, for FIFO links. */
  private readonly lastDelivery = new Map<string, number>();

  constructor(
    private readonly rng: Rng,
    config: NetworkConfig = RELIABLE,
  ) {
    this.config = { ...config };
  }

  connected(from: NodeId, to: NodeId): boolean {
    if (this.isolated.size > 0 && (this.isolated.has(from) || this.isolated.has(to))) return false;
    if (this.group.size > 0 && (this.group.get(from) ?? 0) !== (this.group.get(to) ?? 0)) return false;
    return this.blocked.size === 0 || !this.blocked.has(`${from}>${to}`);
  }

  /** Splits the nodes into groups that cannot talk to each other (nodes not listed form group 0). */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.group.clear();
    groups.forEach((g, k) => g.forEach((id) => this.group.set(id, k + 1)));
  }

  /** Cuts a node off from everyone (the lab's disconnect). */
  disconnect(id: NodeId): void {
    this.isolated.add(id);
  }

  connect(id: NodeId): void {
    this.isolated.delete(id);
  }

  isolatedNode(id: NodeId): boolean {
    return this.isolated.has(id);
  }

  /** Drops messages from `from` to `to` only (an asymmetric fault). */
  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  /** Removes every partition, isolation and blocked link. */
  heal(): void {
    this.group.clear();
    this.isolated.clear();
    this.blocked.clear();
  }

  /** Delivery times of the copies of a message sent at `now`: none if lost, two if duplicated. */
  fate(from: NodeId, to: NodeId, now: number): number[] {
    const c = this.config;
    if (c.drop > 0 && this.rng.chance(c.drop)) return [];
    const one = (): number =>
      now +
      (c.longDelayChance > 0 && this.rng.chance(c.longDelayChance)
        ? this.rng.range(c.minDelay, Math.max(c.minDelay, c.longDelayMax))
        : this.rng.range(c.minDelay, c.maxDelay));
    const times = c.duplicate > 0 && this.rng.chance(c.duplicate) ? [one(), one()] : [one()];
    if (!c.reorder) {
      const link = `${from}>${to}`;
      let last = this.lastDelivery.get(link) ?? 0;
      for (let i = 0; i < times.length; i++) {
        if (times[i] < last) times[i] = last;
        last = times[i];
      }
      this.lastDelivery.set(link, last);
    }
    return times;
  }
}

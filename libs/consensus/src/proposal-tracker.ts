import { Entry } from './core/types';
import { ProposalLostError, ProposalTimeoutError } from './errors';
import { NodeMetrics } from './ports';

/** A proposal applied: where it landed and what the state machine returned. */
export interface Applied {
  index: number;
  result: unknown;
}

/** Who waits for a proposal's outcome: a promise's resolve/reject, or the simulator's callbacks. */
export interface ProposalWaiter {
  resolve(applied: Applied): void;
  reject(error: Error): void;
}

interface Pending {
  term: number;
  started: number;
  deadline: number;
  waiter: ProposalWaiter;
}

/**
 * The proposals this node accepted as leader and not yet answered, by log index. A proposal at (index, term)
 * succeeded when the entry applied at `index` has `term`; another term there means it was overwritten by a
 * later leader (definitely not applied). One answer per proposal, whichever comes first: applied, lost,
 * deadline passed (outcome unknown), or the node stopped (outcome unknown).
 */
export class ProposalTracker {
  private readonly pending = new Map<number, Pending[]>();
  private count = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly metrics: NodeMetrics,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Proposals waiting for an answer. */
  get waiters(): number {
    return this.count;
  }

  /** Records a proposal accepted by the core at (index, term) at time `now`. */
  track(index: number, term: number, now: number, waiter: ProposalWaiter): void {
    const p: Pending = { term, started: now, deadline: now + this.timeoutMs, waiter };
    this.count++;
    const list = this.pending.get(index);
    if (list) list.push(p);
    else this.pending.set(index, [p]);
  }

  /** Answers the proposals waiting at `entry.index`, now that it is applied with `result`. */
  applied(entry: Entry, result: unknown, now: number): void {
    if (this.pending.size === 0) return;
    const list = this.pending.get(entry.index);
    if (!list) return;
    this.pending.delete(entry.index);
    this.count -= list.length;
    for (const p of list) {
      if (p.term === entry.term) {
        this.metrics.proposal('committed', (now - p.started) / 1000);
        p.waiter.resolve({ index: entry.index, result });
      } else {
        this.metrics.proposal('lost');
        p.waiter.reject(new ProposalLostError(entry.index));
      }
    }
  }

  /** Answers the proposals whose deadline passed: their outcome is unknown. */
  expire(now: number): void {
    for (const [index, list] of this.pending) {
      const alive = list.filter((p) => {
        if (p.deadline > now) return true;
        this.count--;
        this.metrics.proposal('timeout');
        p.waiter.reject(new ProposalTimeoutError(index, this.timeoutMs));
        return false;
      });
      if (alive.length === 0) this.pending.delete(index);
      else if (alive.length !== list.length) this.pending.set(index, alive);
    }
  }

  /** The node stops: every entry may still commit elsewhere, so every outcome is unknown. */
  failAll(): void {
    for (const [index, list] of this.pending) {
      for (const p of list) p.waiter.reject(new ProposalTimeoutError(index, this.timeoutMs));
    }
    this.pending.clear();
    this.count = 0;
  }
}

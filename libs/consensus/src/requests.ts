import { ProposalDroppedError } from './core/errors';
import { RawNode } from './core/raw-node';
import { Entry, ReadState } from './core/types';
import { NoLeaderError, OverloadedError, ProposalRejectedError } from './errors';
import { Clock, NodeMetrics } from './ports';
import { ProposalTracker, ProposalWaiter } from './proposal-tracker';
import { ReadBatcher, ReadWaiter } from './read-batcher';

/** What the Requests work with: the node's core and loop, and its view of leadership. */
export interface RequestsDeps {
  requestTimeoutMs: number;
  /** At most this many proposals, and this many reads, wait at once. */
  maxPending: number;
  clock: Clock;
  metrics: NodeMetrics;
  raw(): RawNode;
  /** Runs the loop soon. */
  schedule(): void;
  /** Throws when the node takes no requests (stopping, failed, removed). */
  assertServing(): void;
  /** Throws NotLeaderError / NoLeaderError unless this node leads. */
  assertLeader(): void;
  /** Whether some leader is known. */
  hasLeader(): boolean;
  /** The error for a refused read: where the leader is, or `fallback`. */
  leaderErrorOr(fallback: Error): Error;
  /**
   * While the disk refuses writes (the node is frozen), the StorageFullError refusing a `write` or a `read`
   * this node would serve itself; otherwise undefined.
   */
  refusal(kind: 'write' | 'read'): Error | undefined;
}

/**
 * The clients' requests waiting on the node: proposals until their entry applies (ProposalTracker), reads
 * until their read index is confirmed and applied (ReadBatcher), both bounded by `maxPending`.
 */
export class Requests {
  readonly proposals: ProposalTracker;
  readonly reads: ReadBatcher;

  constructor(private readonly deps: RequestsDeps) {
    this.proposals = new ProposalTracker(deps.requestTimeoutMs, deps.metrics);
    this.reads = new ReadBatcher(deps.requestTimeoutMs, deps.metrics);
  }

  /** RaftNode.submit(). */
  submit(data: Uint8Array, waiter: ProposalWaiter): { index: number; term: number } {
    const { metrics, maxPending } = this.deps;
    this.deps.assertServing();
    this.deps.assertLeader();
    const full = this.deps.refusal('write');
    if (full) {
      metrics.proposal('rejected');
      throw full;
    }
    if (this.proposals.waiters >= maxPending) {
      metrics.proposal('rejected');
      throw new OverloadedError('write', maxPending);
    }
    let at: { index: number; term: number };
    try {
      at = this.deps.raw().propose(data);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      metrics.proposal('rejected');
      this.deps.assertLeader();
      throw new ProposalRejectedError(error.message);
    }
    this.track(at, waiter);
    return at;
  }

  /** Waits for an entry the core accepted at `at` (a proposal, a membership change). */
  track(at: { index: number; term: number }, waiter: ProposalWaiter): void {
    this.proposals.track(at.index, at.term, this.deps.clock.now(), waiter);
    this.deps.schedule();
  }

  /** RaftNode.read(). */
  read(waiter: ReadWaiter, options: { onFollower?: boolean }): void {
    this.deps.assertServing();
    if (options.onFollower) {
      if (!this.deps.hasLeader()) throw new NoLeaderError();
    } else {
      this.deps.assertLeader();
    }
    // Checked after leadership: a follower redirects to its leader, whose disk may well have space.
    const full = this.deps.refusal('read');
    if (full) throw full;
    if (this.reads.waiters >= this.deps.maxPending) throw new OverloadedError('read', this.deps.maxPending);
    this.reads.queue(waiter, this.deps.clock.now());
    this.deps.schedule();
  }

  /** Before each Ready: the queued reads ask the core for one read index. */
  issueReads(): void {
    if (!this.reads.hasQueued) return;
    this.reads.issue(
      (ctx) => this.deps.raw().readIndex(ctx),
      (error) => (error instanceof ProposalDroppedError ? this.deps.leaderErrorOr(new NoLeaderError()) : (error as Error)),
    );
  }

  onReadStates(states: ReadState[], applied: number): void {
    this.reads.onReadStates(states, applied, this.deps.clock.now());
  }

  applied(entry: Entry, result: unknown, now: number): void {
    this.proposals.applied(entry, result, now);
  }

  expire(now: number): void {
    this.proposals.expire(now);
    this.reads.expire(now);
  }

  failAll(error: Error): void {
    this.proposals.failAll();
    this.reads.failAll(error);
  }
}

/** A promise settled by `run`'s callbacks, rejected with what `run` throws at once. */
export function promised<T>(run: (resolve: (value: T) => void, reject: (error: Error) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      run(resolve, reject);
    } catch (error) {
      reject(error as Error);
    }
  });
}

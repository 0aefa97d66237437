import { ReadState } from './core/types';
import { ReadTimeoutError } from './errors';
import { NodeMetrics } from './ports';

/** Who waits for a linearizable read: resolved with the read index once this node has applied it. */
export interface ReadWaiter {
  resolve(readIndex: number): void;
  reject(error: Error): void;
}

interface Waiting {
  started: number;
  waiter: ReadWaiter;
}

interface Batch {
  /** The read index, once the core's ReadState reported it (0 before). */
  index: number;
  deadline: number;
  waiters: Waiting[];
}

/**
 * Linearizable reads by ReadIndex, batched: the reads that arrive during one turn of the loop share one
 * request to the core (one heartbeat round on the leader). A batch's readers are answered once the state
 * machine has applied its read index, or rejected when the deadline passes or leadership is lost.
 *
 * Flow: queue() → issue(ctx) (the loop calls the core's readIndex(ctx)) → onReadStates() → released by
 * applied().
 */
export class ReadBatcher {
  private queued: Waiting[] = [];
  private readonly issued = new Map<string, Batch>();
  private readonly waiting: Batch[] = [];
  private seq = 0;
  /** Readers not answered yet (queued, issued or waiting for their index to be applied). */
  private count = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly metrics: NodeMetrics,
  ) {}

  get hasQueued(): boolean {
    return this.queued.length > 0;
  }

  /** Readers waiting for an answer. */
  get waiters(): number {
    return this.count;
  }

  queue(waiter: ReadWaiter, now: number): void {
    this.queued.push({ started: now, waiter });
    this.count++;
  }

  /**
   * Moves the queued reads into one batch and hands its context to `request` (the core's readIndex). If
   * `request` throws, the batch's readers are rejected with `mapError(error)`.
   */
  issue(request: (ctx: string) => void, mapError: (error: unknown) => Error): void {
    if (this.queued.length === 0) return;
    const waiters = this.queued;
    this.queued = [];
    const ctx = String(++this.seq);
    try {
      request(ctx);
    } catch (error) {
      const reason = mapError(error);
      this.count -= waiters.length;
      for (const w of waiters) w.waiter.reject(reason);
      return;
    }
    this.issued.set(ctx, { index: 0, deadline: waiters[0].started + this.timeoutMs, waiters });
  }

  /** The core answered some requests with their read index. */
  onReadStates(states: ReadState[], applied: number, now: number): void {
    for (const rs of states) {
      const batch = this.issued.get(rs.requestCtx);
      if (!batch) continue;
      this.issued.delete(rs.requestCtx);
      batch.index = rs.index;
      this.waiting.push(batch);
    }
    this.applied(applied, now);
  }

  /** The state machine has applied up to `applied`: answers the batches whose read index it covers. */
  applied(applied: number, now: number): void {
    if (this.waiting.length === 0) return;
    let kept = 0;
    for (const batch of this.waiting) {
      if (batch.index <= applied) {
        this.count -= batch.waiters.length;
        for (const w of batch.waiters) {
          this.metrics.readServed((now - w.started) / 1000);
          w.waiter.resolve(batch.index);
        }
      } else {
        this.waiting[kept++] = batch;
      }
    }
    this.waiting.length = kept;
  }

  /** Rejects the reads whose deadline passed. */
  expire(now: number): void {
    // Runs every tick: build the error (a stack trace) only when something expires.
    let timeout: ReadTimeoutError | undefined;
    const reject = (batch: Batch) => {
      timeout ??= new ReadTimeoutError(this.timeoutMs);
      this.count -= batch.waiters.length;
      for (const w of batch.waiters) w.waiter.reject(timeout);
    };
    for (const [ctx, batch] of this.issued) {
      if (batch.deadline > now) continue;
      this.issued.delete(ctx);
      reject(batch);
    }
    let kept = 0;
    for (const batch of this.waiting) {
      if (batch.deadline > now) this.waiting[kept++] = batch;
      else reject(batch);
    }
    this.waiting.length = kept;
  }

  /**
   * Rejects the reads whose confirmation can no longer arrive (this node lost leadership): those queued and
   * those issued. Reads already holding a read index stay: their index was confirmed.
   */
  abandonUnconfirmed(error: Error): void {
    for (const batch of this.issued.values()) {
      this.count -= batch.waiters.length;
      for (const w of batch.waiters) w.waiter.reject(error);
    }
    this.issued.clear();
    this.count -= this.queued.length;
    for (const w of this.queued.splice(0)) w.waiter.reject(error);
  }

  /** Rejects every read (the node stops). */
  failAll(error: Error): void {
    this.abandonUnconfirmed(error);
    for (const batch of this.waiting) for (const w of batch.waiters) w.waiter.reject(error);
    this.waiting.length = 0;
    this.count = 0;
  }
}

import { encodeCommand, KvExpiry } from './kv-command';
import { DeadlineHeap } from './deadline-heap';
import { ExpiryListener, KvStateMachine } from './kv-state-machine';

/** What the scheduler works with; a test passes fakes (a fake clock, a propose that it settles by hand). */
export interface ExpirySchedulerDeps {
  machine: Pick<KvStateMachine, 'getRecord' | 'records' | 'expiringKeys' | 'setExpiryListener'>;
  isLeader(): boolean;
  /** Proposes an expire command (RaftNode.propose); its outcome only ends the batch in flight. */
  propose(data: Uint8Array): Promise<unknown>;
  /** Wall clock, ms since the epoch: the `at` of the expire commands. */
  now(): number;
  warn?(message: string): void;
}

/** At most this many keys per expire command (one command in flight at a time bounds the rate). */
export const EXPIRE_BATCH_KEYS = 1000;

/**
 * Carries out expiry on the leader. Only the leader acts: while it leads it keeps the pending deadlines in a
 * min-heap (built from the map on its first tick as leader, or after a restore; kept up to date by the state
 * machine's apply through ExpiryListener), and on each tick proposes one `expire` command for the keys whose
 * deadline has passed on its clock, with the modIndex each had. The state machine deletes a key only if it
 * still has that modIndex and is due at the command's `at`: a key rewritten meanwhile stays, and every
 * replica decides alike. On a follower the heap is empty: reads serve an expired key until the replicated
 * delete applies.
 *
 * Timing: a key is deleted within about a tick (a heartbeat) plus a commit after its deadline on a healthy
 * leader. A new leader builds its heap on its first tick, so across a leader change a key lives at most about
 * an election timeout longer; it is never deleted before its deadline on the leader's clock (clock skew
 * between nodes adds to both).
 */
export class ExpiryScheduler implements ExpiryListener {
  private readonly heap = new DeadlineHeap();
  /** The heap reflects the map (only while leading). */
  private built = false;
  /** Bumped whenever the heap is dropped, so that a batch settling later does not requeue into a newer heap. */
  private generation = 0;
  private inFlight = false;

  constructor(
    private readonly deps: ExpirySchedulerDeps,
    private readonly batchKeys = EXPIRE_BATCH_KEYS,
  ) {
    deps.machine.setExpiryListener(this);
  }

  /** Deadlines in the heap (stale ones included until popped). */
  get pending(): number {
    return this.heap.size;
  }

  get busy(): boolean {
    return this.inFlight;
  }

  scheduled(key: string, modIndex: number, expiresAt: number): void {
    if (this.built) this.heap.push({ key, modIndex, expiresAt });
  }

  restored(): void {
    this.drop();
  }

  /** One step: called every heartbeat or so. Proposes at most one expire command. */
  tick(): void {
    if (!this.deps.isLeader()) {
      if (this.built) this.drop();
      return;
    }
    if (!this.built) this.build();
    if (this.inFlight) return;
    const now = this.deps.now();
    const batch: KvExpiry[] = [];
    const expiresAt: number[] = [];
    while (batch.length < this.batchKeys) {
      const next = this.heap.peek();
      if (next === undefined || next.expiresAt > now) break;
      this.heap.pop();
      const record = this.deps.machine.getRecord(next.key);
      // A stale entry (the key was rewritten or deleted since) is simply dropped: a rewrite with a TTL has its
      // own entry.
      if (record?.modIndex !== next.modIndex || record.expiresAt !== next.expiresAt) continue;
      batch.push({ key: next.key, modIndex: next.modIndex });
      expiresAt.push(next.expiresAt);
    }
    if (batch.length === 0) return;
    this.inFlight = true;
    const generation = this.generation;
    let settled: Promise<unknown>;
    try {
      settled = this.deps.propose(encodeCommand({ op: 'expire', at: now, keys: batch }));
    } catch (error) {
      settled = Promise.reject(error);
    }
    settled.then(
      () => this.settle(generation, batch, expiresAt),
      (error: unknown) => {
        this.deps.warn?.(`expiry of ${batch.length} key(s) not applied (${error instanceof Error ? error.message : String(error)}); will retry`);
        this.settle(generation, batch, expiresAt);
      },
    );
  }

  /** Puts back the keys of a settled batch that are still there unchanged (the command failed, or is unknown). */
  private settle(generation: number, batch: KvExpiry[], expiresAt: number[]): void {
    this.inFlight = false;
    if (generation !== this.generation || !this.built) return;
    batch.forEach(({ key, modIndex }, i) => {
      if (this.deps.machine.getRecord(key)?.modIndex === modIndex) this.heap.push({ key, modIndex, expiresAt: expiresAt[i] });
    });
  }

  private build(): void {
    this.heap.clear();
    if (this.deps.machine.expiringKeys > 0) {
      for (const [key, record] of this.deps.machine.records()) {
        if (record.expiresAt !== undefined) this.heap.push({ key, modIndex: record.modIndex, expiresAt: record.expiresAt });
      }
    }
    this.built = true;
  }

  private drop(): void {
    this.heap.clear();
    this.built = false;
    this.generation++;
  }
}

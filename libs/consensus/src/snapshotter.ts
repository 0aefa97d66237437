import { ConfState, Snapshot, SnapshotMetadata } from './core/types';
import { Clock, NodeLogger, NodeMetrics, RaftStorage, StateMachine } from './ports';

/** What the Snapshotter works with. */
export interface SnapshotterDeps {
  /** The node's name, for log lines. */
  name: string;
  storage: RaftStorage;
  stateMachine: StateMachine;
  clock: Clock;
  logger: NodeLogger;
  metrics: NodeMetrics;
  /** A snapshot every this many applied entries; 0 never. */
  every: number;
  /** Entries kept behind the newest snapshot when the log is compacted. */
  catchUp: number;
  /** The configuration to record in a snapshot taken now. */
  confState(): ConfState;
}

/**
 * The node's snapshots: when to take one, writing it (the state machine's point-in-time view handed to the
 * storage, which writes it off the hot path while the node goes on applying), compacting the log after it,
 * and restoring the state machine from the storage's newest snapshot (at start, and when one was installed
 * from the leader).
 *
 * Compaction keeps the log back to the previous snapshot (and at least `catchUp` entries behind the newest):
 * should the newest snapshot file turn out damaged, the previous one plus the log still rebuild the state.
 */
export class Snapshotter {
  /** Index of the newest durable snapshot (0: none). */
  private newest = 0;
  /** Index of the snapshot before it that this process knows of (0: none known). */
  private previous = 0;
  private taking = false;
  /** due() was called: the next applied() takes a snapshot. */
  private wanted = false;
  /** The last (index, term) applied, for a retry of a needed snapshot that does not wait for entries. */
  private last = { index: 0, term: 0 };
  /** After a failed attempt, the next one waits until the applied index reaches this. */
  private retryAt = 0;
  private stopped = false;

  constructor(private readonly deps: SnapshotterDeps) {
    this.newest = deps.storage.storage.snapshot().metadata.index;
  }

  /** Index of the newest durable snapshot (0 when there is none). */
  get index(): number {
    return this.newest;
  }

  /** True while a snapshot is being written. */
  get busy(): boolean {
    return this.taking;
  }

  /** No snapshot is started from now on; one being written completes without compacting. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * A snapshot is needed now, whatever SNAPSHOT_ENTRIES says (a member was added and there is none to send
   * it): the next applied() takes one.
   */
  due(): void {
    this.wanted = true;
  }

  /** The state machine applied up to (index, term): takes a snapshot when one is due. */
  applied(index: number, term: number): void {
    const { every } = this.deps;
    this.last = { index, term };
    if (this.taking || this.stopped) return;
    if (this.wanted) {
      this.wanted = !this.take(index, term, true);
      return;
    }
    if (every <= 0 || index < this.retryAt) return;
    if (index - this.newest < every) return;
    this.take(index, term);
  }

  /**
   * Takes a snapshot of the state machine as of (index, term) now (the last entry it applied). Returns false
   * when one is already being written.
   */
  take(index: number, term: number, needed = false): boolean {
    if (this.taking || this.stopped) return false;
    const { storage, stateMachine, clock, logger, metrics, name } = this.deps;
    const metadata: SnapshotMetadata = { index, term, confState: this.deps.confState() };
    const started = clock.now();
    const view = stateMachine.snapshot();
    this.taking = true;
    storage.createSnapshot(metadata, view, (error) => {
      this.taking = false;
      view.release();
      if (error) {
        if (needed) {
          // A new member waits for this snapshot, and entries may not commit without it: retry on a timer.
          logger.warn(`${name}: snapshot at ${index} failed (${error.message}); a new member needs one: trying again in 1 s`);
          this.wanted = true;
          clock.after(1000, () => this.applied(this.last.index, this.last.term));
          return;
        }
        this.retryAt = index + Math.max(1, Math.floor(this.deps.every / 4));
        logger.warn(`${name}: snapshot at ${index} failed (${error.message}); trying again after entry ${this.retryAt}`);
        return;
      }
      const seconds = (clock.now() - started) / 1000;
      metrics.snapshotTaken(seconds);
      if (index > this.newest) {
        this.previous = this.newest;
        this.newest = index;
      }
      logger.log(`${name}: snapshot taken at index ${index} (term ${term}) in ${seconds.toFixed(3)} s`);
      if (this.stopped) return;
      const compactTo = Math.min(this.previous, this.newest - this.deps.catchUp);
      if (compactTo > 0) storage.compact(compactTo);
    });
    return true;
  }

  /**
   * At start: restores the state machine from the storage's newest snapshot if there is one, then calls
   * `boot` with the index and term it reflects (0, 0 without a snapshot), then `done`.
   */
  start(boot: (applied: number, term: number) => void, done: (error?: Error) => void): void {
    const snapshot = this.deps.storage.storage.snapshot().metadata;
    if (snapshot.index === 0) {
      boot(0, 0);
      done();
      return;
    }
    this.restore(snapshot, (error) => {
      if (error) {
        done(new Error(`restoring the state machine from snapshot ${snapshot.index}: ${error.message}`));
        return;
      }
      boot(snapshot.index, snapshot.term);
      // A snapshot restored from a backup records no members: this cluster's are the ones it was started
      // with, and a snapshot sent to a follower must say so.
      if (this.deps.storage.storage.initialState().confState.voters.length === 0) {
        this.deps.logger.log(`${this.deps.name}: the snapshot records no members (a restored backup); taking a new snapshot recording them`);
        this.take(snapshot.index, snapshot.term);
      }
      done();
    });
  }

  /**
   * Restores the state machine from the storage's newest snapshot, whose metadata is `metadata`; `done` is
   * called once restored (synchronously when the storage hands the content synchronously).
   */
  restore(metadata: SnapshotMetadata, done: (error?: Error) => void): void {
    const { storage, stateMachine } = this.deps;
    let content: ReturnType<RaftStorage['snapshotContent']>;
    try {
      content = storage.snapshotContent();
    } catch (error) {
      done(error as Error);
      return;
    }
    stateMachine.restore(content, (error) => {
      if (!error && metadata.index > this.newest) {
        this.previous = 0; // the log was reset: nothing before this snapshot is left to fall back on
        this.newest = metadata.index;
      }
      done(error);
    });
  }

  /** A snapshot from the leader is durable here: restores the state machine from it. */
  install(snapshot: Snapshot, done: (error?: Error) => void): void {
    const { clock, metrics, logger, name } = this.deps;
    const started = clock.now();
    const { index, term } = snapshot.metadata;
    this.restore(snapshot.metadata, (error) => {
      if (!error) {
        const seconds = (clock.now() - started) / 1000;
        metrics.snapshotInstalled(seconds);
        logger.log(`${name}: installed the leader's snapshot at index ${index} (term ${term}) in ${seconds.toFixed(3)} s`);
      }
      done(error);
    });
  }
}

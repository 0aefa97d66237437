import { StorageFullError } from './errors';
import { Clock, NodeLogger } from './ports';

/** What /status, readiness and the metrics show of a disk that refuses writes. */
export interface StorageFullStatus {
  /** The storage's error (the system's message: which file, ENOSPC or EDQUOT...). */
  reason: string;
  /** The system's error code (ENOSPC, EDQUOT, EIO). */
  code: string;
  /** Milliseconds since the disk first refused the write now held. */
  sinceMs: number;
}

/** What the node counted of full disks since it started (counters: they only grow). */
export interface StorageFreezeCounts {
  /** Writes (proposals, membership changes) refused with StorageFullError. */
  refusedWrites: number;
  /** Peers' messages dropped while frozen. */
  droppedMessages: number;
}

export interface StorageFreezeDeps {
  name: string;
  /** Where the log lives (WAL_DIR), for the operator reading the warning; undefined when not known. */
  walDir?: string;
  clock: Clock;
  logger: NodeLogger;
  /** The node froze: fail the linearizable reads waiting here with `refusal` (none could be answered meanwhile). */
  onFreeze(refusal: StorageFullError): void;
}

/**
 * A node whose disk refuses writes (the Ready loop holds a save that failed with StorageFullError and
 * retries it) is frozen, as a paused process is, which Raft tolerates: it takes no step it cannot make
 * durable. Its ticks do nothing (a node that cannot write its vote must not campaign), peers' messages are
 * dropped (stepping them would grow the unstable log without bound, and nothing could be answered), new
 * writes and the linearizable reads it would serve itself are refused at once; stale reads are served. The
 * rest of the cluster goes on: a frozen leader is replaced after an election timeout. Once the held write
 * goes through, the node takes part again and catches up as a follower that was cut off would.
 *
 * This class is the freeze's state and its refusals; RaftNode asks it at each input.
 */
export class StorageFreeze {
  private error?: StorageFullError;
  private since = 0;
  /** The counts when the freeze started, for the line logged at its end. */
  private countsAtStart: StorageFreezeCounts = { refusedWrites: 0, droppedMessages: 0 };
  readonly counts: StorageFreezeCounts = { refusedWrites: 0, droppedMessages: 0 };

  constructor(private readonly deps: StorageFreezeDeps) {}

  get frozen(): boolean {
    return this.error !== undefined;
  }

  /** The Ready loop's onStorageFull: the node freezes. Logs one warning for the whole episode. */
  full(error: StorageFullError): void {
    if (this.error) return;
    this.error = error;
    this.since = this.deps.clock.now();
    this.countsAtStart = { ...this.counts };
    const { name, walDir, logger, onFreeze } = this.deps;
    logger.warn(
      `${name}: the disk refuses writes (${error.message}; WAL_DIR ${walDir ?? 'unknown'}). Until space returns, writes ` +
        'and the linearizable reads this node would serve are refused, peer messages are dropped and no election is ' +
        'started; stale reads are served. The write is retried at least every second: free space in WAL_DIR and the ' +
        'node resumes by itself',
    );
    onFreeze(this.refusal('read')!);
  }

  /** The Ready loop's onStorageRecovered: the node takes part again. Logs one line. */
  recovered(): void {
    if (!this.error) return;
    const seconds = ((this.deps.clock.now() - this.since) / 1000).toFixed(1);
    const refused = this.counts.refusedWrites - this.countsAtStart.refusedWrites;
    const dropped = this.counts.droppedMessages - this.countsAtStart.droppedMessages;
    this.error = undefined;
    this.deps.logger.log(
      `${this.deps.name}: the disk takes writes again after ${seconds} s (${refused} writes refused, ${dropped} peer messages ` +
        'dropped meanwhile); the node takes part again and catches up',
    );
  }

  /**
   * While frozen, a fresh StorageFullError for a request this node would serve itself (a `write` is counted
   * as refused); otherwise undefined.
   */
  refusal(kind: 'write' | 'read'): StorageFullError | undefined {
    if (!this.error) return undefined;
    if (kind === 'write') this.counts.refusedWrites++;
    return new StorageFullError(this.error.message, this.error.code);
  }

  /** Throws refusal('write'). */
  assertWritable(): void {
    const refused = this.refusal('write');
    if (refused) throw refused;
  }

  /** While frozen, counts `count` peer messages as dropped and returns true (the caller drops them). */
  drop(count: number): boolean {
    if (!this.error) return false;
    this.counts.droppedMessages += count;
    return true;
  }

  /** The freeze as /status shows it, or undefined when the disk takes writes. */
  status(): StorageFullStatus | undefined {
    if (!this.error) return undefined;
    return { reason: this.error.message, code: this.error.code, sinceMs: this.deps.clock.now() - this.since };
  }
}

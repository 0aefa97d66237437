import { canSendBeforePersist } from './core/message';
import { RawNode } from './core/raw-node';
import { Entry, EntryType, HardState, Message, ReadState, Ready, Snapshot, SoftState } from './core/types';
import { isStorageFull, StorageFullError } from './errors';
import { Clock, NodeObserver, RaftStorage, SaveCallback, Timer } from './ports';

/** The first wait before a refused save is made again; it doubles after each refusal, up to the maximum. */
export const STORAGE_RETRY_FIRST_MS = 100;
export const STORAGE_RETRY_MAX_MS = 1000;

/** What the loop hands back to its owner while it works through a Ready. */
export interface ReadyHandler {
  /** Called before each Ready is taken: the owner's last chance to put batched requests into it. */
  beforeReady(): void;
  onSoftState(soft: SoftState): void;
  send(messages: Message[]): void;
  /** Committed entries, in order, after everything that precedes them is durable here. */
  apply(entries: Entry[]): void;
  /**
   * A snapshot from the leader is durable here (its content is the storage's newest snapshot): replace the
   * state machine's state with it, then call `done` (with an error, the loop stops).
   */
  restore(snapshot: Snapshot, done: (error?: Error) => void): void;
  onReadStates(states: ReadState[]): void;
  /**
   * The disk refused a save or an install (isStorageFull): nothing of it was kept. The loop holds the Ready
   * (nothing of it is sent, applied or advanced) and makes the same write again after a backoff until it
   * succeeds. Called once when the refusals start, not at each retry.
   */
  onStorageFull?(error: StorageFullError): void;
  /** A write refused before was made at last; the held Ready goes on (sent, applied, advanced) right after. */
  onStorageRecovered?(): void;
  /** The loop cannot go on (a failed save, an error from the core); it has stopped. */
  fail(error: Error): void;
}

/**
 * The Ready loop: the one place where the core's output is acted on, in the order that makes it safe.
 *
 * For each Ready: send the messages that may leave before the fsync (the leader's MsgApp/MsgHeartbeat/MsgSnap:
 * Raft thesis 10.2.1, `canSendBeforePersist`, so followers write in parallel with the leader); persist the
 * hard state and entries and wait until they are durable; send the rest (votes and append responses promise
 * durable state); apply committed entries; hand read states over; advance(). One Ready at a time: inputs
 * that arrive meanwhile (ticks, messages, proposals) land in the core and go into the next Ready, so one
 * fsync covers everything that accumulated while the previous one was in flight (group commit).
 *
 * A Ready that carries a snapshot from the leader (InstallSnapshot) first has the storage install it (its
 * file made the newest snapshot, the log reset after it), then saves its hard state and entries, sends,
 * restores the state machine from the snapshot, and only then applies the committed entries that follow it.
 *
 * A Ready whose only durable change is the commit index is not fsynced: a commit index can be learned again
 * from a quorum after a crash, and an fsync there would sit between a commit and its answer to the client.
 * It is written with the next save that must be durable anyway.
 *
 * A disk that refuses a write (StorageFullError: nothing kept, storage usable) does not stop the loop: it
 * keeps the Ready, tells the handler (onStorageFull), and makes the same write again on the clock after
 * 100 ms, then 200, 400... up to 1 s between attempts, until it succeeds (onStorageRecovered), then goes on
 * as usual. Meanwhile it stays busy: no further Ready is taken. Any other storage error stops the loop.
 *
 * Never blocks: the loop runs as deferred turns of the clock and continues from the save's callback.
 */
export class ReadyLoop {
  private scheduled = false;
  private saving = false;
  private stopped = false;
  private unsavedHardState?: HardState;
  private idle: Array<() => void> = [];
  /** While the disk refuses writes: the wait before the next attempt, and its timer. */
  private full?: { delayMs: number; timer?: Timer };

  constructor(
    private readonly node: RawNode,
    private readonly storage: RaftStorage,
    private readonly clock: Clock,
    private readonly handler: ReadyHandler,
    private readonly observer: NodeObserver = {},
  ) {}

  /** Asks for a turn of the loop soon (idempotent until it runs). */
  schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    this.clock.defer(() => {
      this.scheduled = false;
      this.turn();
    });
  }

  /** True while a save is in flight, or held until the disk takes it (between retries too). */
  get busy(): boolean {
    return this.saving;
  }

  /** True while the disk refuses the held Ready's write (between onStorageFull and onStorageRecovered). */
  get storageFull(): boolean {
    return this.full !== undefined;
  }

  /**
   * Calls `fn` once no save is in flight (at once if none is). A Ready held for a full disk, waiting for its
   * next attempt, counts as idle: stopping must not wait for space to return.
   */
  whenIdle(fn: () => void): void {
    if (!this.saving || this.full?.timer) fn();
    else this.idle.push(fn);
  }

  /**
   * Stops for good: no further turn runs, no refused write is tried again, and a save still in flight is
   * ignored when it completes.
   */
  stop(): void {
    this.stopped = true;
    this.saving = false;
    this.full?.timer?.cancel();
    this.full = undefined;
    for (const fn of this.idle.splice(0)) fn();
  }

  private turn(): void {
    try {
      while (!this.stopped && !this.saving) {
        this.handler.beforeReady();
        if (!this.node.hasReady()) break;
        this.handle(this.node.ready());
      }
    } catch (error) {
      this.failWith(error as Error);
    }
  }

  private handle(rd: Ready): void {
    this.observer.onReady?.(rd);
    if (rd.softState) this.handler.onSoftState(rd.softState);
    const late: Message[] = [];
    const early: Message[] = [];
    for (const m of rd.messages) (canSendBeforePersist(m) && !rd.commitsConfChange ? early : late).push(m);
    if (early.length > 0) this.handler.send(early);
    // A committed configuration change is applied only once its commit is durable: a node restarted below
    // it would go back to the previous configuration, whose members may have stopped (a removed node).
    if (!rd.mustSync && !rd.committedEntries.some((e) => e.type === EntryType.ConfChange)) {
      if (rd.hardState) this.unsavedHardState = rd.hardState;
      this.finish(rd, late);
      return;
    }
    this.saving = true;
    // The arguments are fixed now: a retry after a refusal must make exactly the same save.
    const hardState = rd.hardState ?? this.unsavedHardState;
    const save = (): void =>
      this.storage.save(
        hardState,
        rd.entries,
        this.durable(save, () => {
          this.unsavedHardState = undefined;
          if (!this.recovered()) return;
          this.finish(rd, late, () => {
            this.saving = false;
            for (const fn of this.idle.splice(0)) fn();
            this.turn();
          });
        }),
      );
    const snapshot = rd.snapshot;
    if (!snapshot) {
      save();
      return;
    }
    const install = (): void => this.storage.installSnapshot(snapshot, this.durable(install, save));
    install();
  }

  /**
   * The callback of a write (`attempt`): `then` once durable; after a refusal for a full disk, `attempt`
   * again after the backoff; after any other error, the loop fails. Nothing once stopped.
   */
  private durable(attempt: () => void, then: () => void): SaveCallback {
    return (error) => {
      if (this.stopped) return;
      if (!error) return then();
      if (!isStorageFull(error)) {
        this.saving = false;
        this.failWith(error);
        return;
      }
      if (this.full) {
        this.full.delayMs = Math.min(2 * this.full.delayMs, STORAGE_RETRY_MAX_MS);
      } else {
        this.full = { delayMs: STORAGE_RETRY_FIRST_MS };
        try {
          this.handler.onStorageFull?.(error);
        } catch (e) {
          this.failWith(e as Error);
          return;
        }
      }
      const full = this.full;
      full.timer = this.clock.after(full.delayMs, () => {
        full.timer = undefined;
        if (this.stopped) return;
        try {
          attempt();
        } catch (e) {
          this.failWith(e as Error);
        }
      });
      // Whoever waits for the loop to be idle (a stop) need not wait for space to return.
      for (const fn of this.idle.splice(0)) fn();
    };
  }

  /** The held Ready's write went through: the disk takes writes again. False if the loop failed. */
  private recovered(): boolean {
    if (!this.full) return true;
    this.full = undefined;
    try {
      this.handler.onStorageRecovered?.();
      return true;
    } catch (e) {
      this.failWith(e as Error);
      return false;
    }
  }

  /**
   * Sends the messages held for durability, restores a snapshot, applies, hands read states over and
   * advances; then calls `next` (synchronously unless a snapshot is being restored).
   */
  private finish(rd: Ready, late: Message[], next: () => void = () => undefined): void {
    try {
      if (late.length > 0) this.handler.send(late);
    } catch (e) {
      this.failWith(e as Error);
      return;
    }
    const rest = () => {
      try {
        if (rd.committedEntries.length > 0) this.handler.apply(rd.committedEntries);
        if (rd.readStates.length > 0) this.handler.onReadStates(rd.readStates);
        this.node.advance();
      } catch (e) {
        this.failWith(e as Error);
        return;
      }
      next();
    };
    if (!rd.snapshot) {
      rest();
      return;
    }
    const snapshot = rd.snapshot;
    this.handler.restore(snapshot, (error) => {
      if (this.stopped) return;
      if (error) this.failWith(new Error(`restoring snapshot ${snapshot.metadata.index}: ${error.message}`));
      else rest();
    });
  }

  private failWith(error: Error): void {
    if (this.stopped) return;
    this.stop();
    this.handler.fail(error);
  }
}

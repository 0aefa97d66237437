import { Entry, HardState, Message, MessageType, NodeId, Ready, Snapshot, SnapshotMetadata } from './core/types';
import { Storage } from './core/storage';

// The error a storage adapter answers a refused write with (the contract of RaftStorage.save below).
export { isStorageFull, StorageFullError } from './errors';

/**
 * Ports of the node loop: everything it needs from the outside, and the only way time, I/O and the state
 * machine reach it. Production binds them to the WAL (libs/storage), the peer streams (libs/cluster-rpc),
 * the KV map (libs/kv) and the system clock; the deterministic simulator (test/simulation) binds them to
 * fakes driven by one seeded scheduler, so that it runs the very loop that ships.
 */

export const RAFT_STORAGE = Symbol('RAFT_STORAGE');

/** Called when a save is durable (no argument) or can never become durable (an error). */
export type SaveCallback = (error?: Error) => void;

/** Durable storage of the Raft log and hard state. */
export interface RaftStorage {
  /** Read view of what is durable, for the core (synchronous). save() extends it once durable. */
  readonly storage: Storage;
  /**
   * Appends entries (an entry at or below the last index first discards the stored suffix from there) and
   * the hard state, and calls `done` once both are durable (fsynced). Calls are ordered; concurrent calls may
   * share one fsync. `done(error)` with a StorageFullError (isStorageFull()): the disk refused the write
   * (ENOSPC, EDQUOT, EIO while writing); nothing of this save, nor of any save queued behind it, was kept (the
   * log and hard state are as before, not torn), the storage stays usable, and the same save may be made
   * again later (the loop retries it until it succeeds). Any other error means durability can no longer be
   * promised (a failed fsync: the page cache cannot be trusted): the node must stop. `done` is never called
   * synchronously from within save().
   */
  save(hardState: HardState | undefined, entries: Entry[], done: SaveCallback): void;
  /**
   * Writes a snapshot durably: `metadata` (index and term of the last entry it covers, the configuration)
   * and the content of `view`, read a chunk at a time off the hot path (the node keeps running meanwhile).
   * Calls `done` once the snapshot is durable and recorded with the log; from then on storage.snapshot()
   * returns its metadata and snapshotContent() its content. The storage keeps the newest two snapshots.
   * `done(error)`: nothing changed (the node logs it and tries again later). The caller releases the view.
   */
  createSnapshot(metadata: SnapshotMetadata, view: StateMachineView, done: SaveCallback): void;
  /**
   * Releases the log up to and including `index` (at or below the newest snapshot's index): whole files are
   * deleted where the storage keeps the log in files, and storage.firstIndex() moves up at most to index + 1
   * (it may stay lower: compaction is by whole segments). Asynchronous and best effort; failures are logged.
   */
  compact(index: number): void;
  /**
   * Makes a snapshot received from the leader (the core's Ready.snapshot) this node's state: its content
   * becomes the newest snapshot and the log is reset to start right after it (every stored entry is
   * discarded: the core installs a snapshot only when its log does not hold the snapshot's last entry).
   * The loop makes no save() until `done` is called. Calls `done` once durable; a StorageFullError means
   * nothing changed and the install may be retried, any other error that the node must stop, as for save(). Production finds the content where the transport put it
   * on arrival (`snapshot.data` is empty); the simulator carries it in `snapshot.data`.
   */
  installSnapshot(snapshot: Snapshot, done: SaveCallback): void;
  /**
   * The content of the newest durable snapshot (whose metadata storage.snapshot() returns), chunk by chunk
   * as the view wrote it, for StateMachine.restore(). Throws when there is no snapshot.
   */
  snapshotContent(): Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  /** Identity recorded when the node first started with this directory, or undefined on first start. */
  readonly meta: Record<string, unknown> | undefined;
  /** Replaces the identity record durably (write to a temporary file, fsync, rename, fsync the directory). */
  setMeta(meta: Record<string, unknown>): Promise<void>;
}

export const PEER_TRANSPORT = Symbol('PEER_TRANSPORT');

/** Receives the batches of messages that peers send to this node. */
export type MessageReceiver = (messages: Message[]) => void;

/**
 * Carries Raft messages between members. Members are identified by their NODE_ID; setPeers() says at which
 * URL each is reached (it changes with the configuration).
 */
export interface PeerTransport {
  /**
   * The members this node exchanges messages with (this node excluded), each with its URL. Called before
   * start and whenever the configuration or an address changes: streams open to new peers, close to peers
   * no longer listed (their queued messages dropped), and move when a URL changed. Streams from senders not
   * listed are refused; those in `removed` (members removed from the configuration) are told so (a node
   * removed while cut off never applies its own removal: this is how it learns of it).
   */
  setPeers(peers: ReadonlyMap<NodeId, string>, removed?: ReadonlyMap<NodeId, string>): void;
  /** Registers a callback for a peer telling this node it was removed from the cluster. */
  onRemoved?(callback: () => void): void;
  /** Registers the receiver of incoming messages (called once, before the node starts). */
  listen(receiver: MessageReceiver): void;
  /**
   * Queues messages for their recipients (`message.to`). Never blocks and never throws: a message that
   * cannot be delivered is dropped (Raft retransmits) and the recipient is reported through onUnreachable.
   */
  send(messages: Message[]): void;
  /** Registers a callback for peers whose last send failed. */
  onUnreachable(callback: (peer: NodeId) => void): void;
  /**
   * Registers a callback for the outcome of each MsgSnap sent: `failed` false once the peer has received the
   * whole snapshot (it then installs it and answers with a MsgAppResp), true when the transfer failed (the
   * leader retries later). Every MsgSnap handed to send() gets exactly one outcome, except one replaced by
   * a newer MsgSnap to the same peer before it ended (the core waits for the newer one's).
   */
  onSnapshotStatus(callback: (peer: NodeId, failed: boolean) => void): void;
}

export const SNAPSHOT_FILES = Symbol('SNAPSHOT_FILES');

/**
 * Snapshot files as the transport moves them between members (production only: the simulator carries a
 * snapshot's content inside the message). The leader's core sends MsgSnap with the metadata of its newest
 * snapshot and empty data; the transport streams that snapshot's file to the peer, which writes it aside,
 * verifies it, and only then hands the MsgSnap to its node; RaftStorage.installSnapshot() finds it there.
 */
export interface SnapshotFiles {
  /**
   * The bytes of the durable snapshot file with this index and term, as a stream, or undefined when it no
   * longer exists (a newer snapshot replaced it: the core will send that one).
   */
  openForSending(index: number, term: number): { size: number; stream: AsyncIterable<Uint8Array> } | undefined;
  /**
   * Starts receiving a snapshot file from a peer. write() the bytes in order, then finish(): it verifies the
   * whole file (checksums, format) and resolves with its metadata, after which installSnapshot() of a
   * snapshot with that index and term finds it. abort() discards a transfer that was cut.
   */
  receive(): IncomingSnapshotFile;
}

export interface IncomingSnapshotFile {
  write(chunk: Uint8Array): Promise<void>;
  finish(): Promise<SnapshotMetadata>;
  abort(): void;
}

export const STATE_MACHINE = Symbol('STATE_MACHINE');

/** The replicated state machine. */
export interface StateMachine {
  /**
   * Applies one committed entry and returns the result handed to its proposer. Called for every committed
   * entry in log order, exactly once per process, no-ops included (an entry whose data is empty, or of a type
   * the state machine does not act on, only advances its applied index). Must be deterministic and must not
   * throw.
   */
  apply(entry: Entry): unknown;
  /**
   * A point-in-time view of the state as of the last entry applied. Cheap to take (no copy of the state):
   * apply() goes on while the view is read, and the view still shows the state as of when it was taken.
   */
  snapshot(): StateMachineView;
  /**
   * Replaces the whole state with a snapshot's content (the chunks a view produced, in order) and calls
   * `done` once restored; with an error, the previous state is kept. apply() is not called meanwhile. With a
   * synchronous iterable, restores synchronously (and calls `done` before returning).
   */
  restore(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, done: (error?: Error) => void): void;
}

/** A frozen view of the state machine, taken by StateMachine.snapshot(). */
export interface StateMachineView {
  /**
   * The content, computed lazily a chunk at a time as it is pulled (so that a large state is written out in
   * small slices between other work). Each chunk is self-contained; restore() receives them as produced.
   */
  chunks(): Iterable<Uint8Array>;
  /** The view is no longer needed (called exactly once, whether or not chunks() was read to the end). */
  release(): void;
}

/** A cancellable timer of the Clock. */
export interface Timer {
  cancel(): void;
}

/** Time and scheduling: the loop never reads the system clock or sets a timer except through this port. */
export interface Clock {
  /** Milliseconds on a monotonic-enough clock (only differences are used). */
  now(): number;
  /** Calls `fn` every `ms` milliseconds until cancelled. */
  every(ms: number, fn: () => void): Timer;
  /** Calls `fn` once after `ms` milliseconds unless cancelled. */
  after(ms: number, fn: () => void): Timer;
  /** Calls `fn` soon, after the current turn of the event loop (inputs that arrive meanwhile batch up). */
  defer(fn: () => void): void;
}

/** Where the loop writes what an operator should read. Nest's Logger fits; the simulator keeps a trace. */
export interface NodeLogger {
  debug(message: string): void;
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Outcome of a client proposal, as counted by the metrics. */
export type ProposalOutcome = 'committed' | 'lost' | 'timeout' | 'rejected';

/** What the loop counts. Production binds prom-client metrics; the simulator binds nothing. */
export interface NodeMetrics {
  messageSent(type: MessageType): void;
  messageReceived(type: MessageType): void;
  proposal(outcome: ProposalOutcome, seconds?: number): void;
  readServed(seconds: number): void;
  leaderChanged(): void;
  electionStarted(): void;
  /** A snapshot of the state machine was written (seconds from taking the view to durable). */
  snapshotTaken(seconds: number): void;
  /** A snapshot received from the leader was installed. */
  snapshotInstalled(seconds: number): void;
}

/**
 * Tracing hooks: called in production as in the simulator (where the safety checker sits on them), with
 * values the caller must not modify.
 */
export interface NodeObserver {
  /** A Ready was taken from the core, before any of it is acted on. */
  onReady?(rd: Ready): void;
}

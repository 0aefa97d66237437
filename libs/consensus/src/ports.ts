import { Entry, HardState, Message, MessageType, NodeId, Ready } from './core/types';
import { Storage } from './core/storage';

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
   * share one fsync. `done(error)` means durability can no longer be promised: the node must stop. `done`
   * is never called synchronously from within save().
   */
  save(hardState: HardState | undefined, entries: Entry[], done: SaveCallback): void;
  /** Identity recorded when the node first started with this directory, or undefined on first start. */
  readonly meta: Record<string, unknown> | undefined;
  /** Replaces the identity record durably (write to a temporary file, fsync, rename, fsync the directory). */
  setMeta(meta: Record<string, unknown>): Promise<void>;
}

export const PEER_TRANSPORT = Symbol('PEER_TRANSPORT');

/** Receives the batches of messages that peers send to this node. */
export type MessageReceiver = (messages: Message[]) => void;

/** Carries Raft messages between members. Members are identified by their advertised URL. */
export interface PeerTransport {
  /** Registers the receiver of incoming messages (called once, before the node starts). */
  listen(receiver: MessageReceiver): void;
  /**
   * Queues messages for their recipients (`message.to`). Never blocks and never throws: a message that
   * cannot be delivered is dropped (Raft retransmits) and the recipient is reported through onUnreachable.
   */
  send(messages: Message[]): void;
  /** Registers a callback for peers whose last send failed. */
  onUnreachable(callback: (peer: NodeId) => void): void;
  /** The NODE_ID a peer announced in its requests, if it has sent any. */
  peerName(peer: NodeId): string | undefined;
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
}

/**
 * Tracing hooks: called in production as in the simulator (where the safety checker sits on them), with
 * values the caller must not modify.
 */
export interface NodeObserver {
  /** A Ready was taken from the core, before any of it is acted on. */
  onReady?(rd: Ready): void;
}

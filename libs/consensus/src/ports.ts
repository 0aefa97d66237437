import { Entry, HardState, Message, NodeId } from './core/types';
import { Storage } from './core/storage';

/**
 * Ports of the consensus driver: what it needs from the outside, implemented by other libraries and
 * injected by these symbol tokens (storage: the WAL; transport: cluster RPC; state machine: the KV store).
 */

export const RAFT_STORAGE = Symbol('RAFT_STORAGE');

/** Durable storage of the Raft log and hard state. */
export interface RaftStorage {
  /** Read view of what is durable, for the core (synchronous). save() extends it once durable. */
  readonly storage: Storage;
  /**
   * Appends entries (an entry at or below the last index first discards the stored suffix from there) and
   * the hard state; resolves once both are durable (fsynced). Calls are ordered; concurrent calls may share
   * one fsync. A rejection means durability can no longer be promised: the node must stop.
   */
  save(hardState: HardState | undefined, entries: Entry[]): Promise<void>;
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

/** The replicated state machine. Committed entries are applied in log order, each exactly once per process. */
export interface StateMachine {
  /** Applies a committed Normal entry with non-empty data; returns the result handed to its proposer. */
  apply(entry: Entry): unknown;
}

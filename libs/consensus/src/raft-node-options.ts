import { RaftConfig } from './core/config';
import { NodeId } from './core/types';
import { Clock, NodeLogger, NodeMetrics, NodeObserver, PeerTransport, RaftStorage, StateMachine } from './ports';

/** Limits and switches of the core that a deployment (or the simulator) may set; the rest are fixed. */
export type CoreTuning = Pick<
  RaftConfig,
  | 'maxSizePerMsg'
  | 'maxEntriesPerMsg'
  | 'maxInflightMsgs'
  | 'maxUncommittedEntriesSize'
  | 'maxCommittedSizePerReady'
  | 'checkQuorum'
  | 'preVote'
>;

export interface RaftNodeOptions {
  /** This member's identity in the Raft group (its advertised URL in production). */
  id: NodeId;
  /** Human name (NODE_ID), reported as the leader's name. */
  name: string;
  /** Every voter's identity, this node's included. */
  members: NodeId[];
  /** Milliseconds per tick of the core (the heartbeat interval). */
  tickMs: number;
  /** Election timeout in ticks (randomized by the core in [electionTick, 2 x electionTick)). */
  electionTick: number;
  /** Heartbeat interval in ticks. Default 1. */
  heartbeatTick?: number;
  /** How long a proposal or a linearizable read may wait before its client is answered. */
  requestTimeoutMs: number;
  /**
   * At most this many proposals, and this many linearizable reads, wait on the node at once; more are
   * refused at once with OverloadedError (nothing proposed or read). Default 10,000.
   */
  maxPendingRequests?: number;
  /** Source of randomness for election timeouts, values in [0, 1). */
  random: () => number;
  /** Overrides of the core's limits and switches (defaults: check-quorum and pre-vote on). */
  tuning?: Partial<CoreTuning>;
  /**
   * Called once when the node cannot go on safely (a failed fsync, corruption found while reading the log,
   * a broken invariant). The node has already stopped; production exits so that a supervisor restarts it
   * and recovery runs from what is really on disk.
   */
  onFatal(error: Error): void;
}

/** The ports a node runs on. */
export interface RaftNodePorts {
  storage: RaftStorage;
  transport: PeerTransport;
  stateMachine: StateMachine;
  clock: Clock;
  logger?: NodeLogger;
  metrics?: NodeMetrics;
  observer?: NodeObserver;
}

export const silentLogger: NodeLogger = { debug() {}, log() {}, warn() {}, error() {} };
export const uncountedMetrics: NodeMetrics = {
  messageSent() {},
  messageReceived() {},
  proposal() {},
  readServed() {},
  leaderChanged() {},
  electionStarted() {},
};

import { RaftConfig } from './core/config';
import { RawNode } from './core/raw-node';
import { Storage } from './core/storage';
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
  /** This member's identity in the Raft group (its NODE_ID in production). */
  id: NodeId;
  /** Human name (NODE_ID), reported as the leader's name. */
  name: string;
  /**
   * The voters the log starts from (the cluster's initial configuration, before any ConfChange entry),
   * this node's included unless it joins later; empty for a node that learns the configuration from the
   * leader. Ignored when the storage holds a snapshot (its configuration wins). Production gives it through
   * useIdentity() instead (the cluster is found at start). Default: none.
   */
  members?: NodeId[];
  /** Where the storage keeps the log (WAL_DIR), named in the warning logged when the disk refuses writes. */
  walDir?: string;
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
  /**
   * A snapshot of the state machine is written every this many applied entries, after which the log is
   * compacted. Default 10,000; 0 never takes one (the log then grows without bound).
   */
  snapshotEntries?: number;
  /**
   * Entries kept in the log behind the newest snapshot, so that a follower slightly behind catches up from
   * the log rather than with a whole snapshot. Default 5,000. The log is also kept back to the previous
   * snapshot, so that a damaged newest snapshot can be replaced by the previous one plus the log.
   */
  snapshotCatchUpEntries?: number;
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
  /**
   * Called once this node applied its own removal from the configuration; it has stopped taking part and
   * answers every request with RemovedFromClusterError. Production records it and exits.
   */
  onRemoved?(): void;
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
  snapshotTaken() {},
  snapshotInstalled() {},
};

/** The core a node runs: its options applied over the defaults (check-quorum and pre-vote on). */
export function newRawNode(options: RaftNodeOptions, storage: Storage, applied: number, logger: NodeLogger): RawNode {
  return new RawNode({
    id: options.id,
    peers: options.members ?? [],
    storage,
    applied,
    heartbeatTick: options.heartbeatTick ?? 1,
    electionTick: options.electionTick,
    checkQuorum: true,
    preVote: true,
    ...options.tuning,
    random: options.random,
    logger: { debug: (m) => logger.debug(m), info: (m) => logger.debug(m), warn: (m) => logger.warn(m) },
  });
}

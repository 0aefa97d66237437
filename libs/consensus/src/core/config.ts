import { RaftConfigError } from './errors';
import { Storage } from './storage';
import { NodeId } from './types';

export interface RaftLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}

/** Configuration of one Raft node. Everything the core needs from the outside comes through here. */
export interface RaftConfig {
  id: NodeId;
  /**
   * All voters (including id, unless it starts as a learner); used when storage.initialState().confState
   * has no voters (first boot). Empty for a node joining a running cluster: it starts with no
   * configuration, never campaigns, and waits for the leader, whose snapshot brings the configuration.
   */
  peers: NodeId[];
  /** Learners of the bootstrap configuration, alongside `peers` (same rule). Default none. */
  learners?: NodeId[];
  /** The stable log the core reads. The driver appends to it what it made durable, before advance(). */
  storage: Storage;
  /** Election timeout in ticks; the effective timeout is randomized in [electionTick, 2 * electionTick). */
  electionTick: number;
  /** Heartbeat interval in ticks; must be smaller than electionTick. */
  heartbeatTick: number;
  /** Last index the state machine already applied; committed entries above it are re-delivered. Default 0. */
  applied?: number;
  /** Max bytes of entry data per MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Max entries per MsgApp. Default 4096. */
  maxEntriesPerMsg?: number;
  /** Pipelining window: MsgApps in flight per follower in Replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Bytes of uncommitted entry data a leader accepts before dropping proposals; 0 = unlimited. Default 0. */
  maxUncommittedEntriesSize?: number;
  /** Max bytes of entry data in one Ready's committedEntries (at least one entry). Default unlimited. */
  maxCommittedSizePerReady?: number;
  /** A leader that has not heard from a quorum within an election timeout steps down. Default true. */
  checkQuorum?: boolean;
  /** Run a pre-vote round (no term change) before a real election. Default true. */
  preVote?: boolean;
  /** Injected generator of values in [0, 1); the only source of randomness (election timeouts). */
  random: () => number;
  logger?: RaftLogger;
}

/** A RaftConfig with every optional field filled in; what the state machine actually runs with. */
export type ResolvedRaftConfig = Required<Omit<RaftConfig, 'logger'>> & { logger: RaftLogger };

const silentLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
export const DEFAULT_MAX_ENTRIES_PER_MSG = 4096;
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;

/** Validates the configuration and fills in the defaults. Throws RaftConfigError. */
export function resolveConfig(c: RaftConfig): ResolvedRaftConfig {
  if (!c.id) throw new RaftConfigError('id must be a non-empty string');
  if (!Number.isInteger(c.heartbeatTick) || c.heartbeatTick <= 0) {
    throw new RaftConfigError('heartbeatTick must be a positive integer');
  }
  if (!Number.isInteger(c.electionTick) || c.electionTick <= c.heartbeatTick) {
    throw new RaftConfigError('electionTick must be an integer greater than heartbeatTick');
  }
  if (typeof c.random !== 'function') throw new RaftConfigError('random must be a function returning [0, 1)');
  const positive = (name: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isFinite(v) || v <= 0) throw new RaftConfigError(`${name} must be positive`);
    return v;
  };
  const maxUncommitted = c.maxUncommittedEntriesSize ?? 0;
  if (maxUncommitted < 0) throw new RaftConfigError('maxUncommittedEntriesSize must be >= 0');
  return {
    id: c.id,
    peers: c.peers,
    learners: c.learners ?? [],
    storage: c.storage,
    electionTick: c.electionTick,
    heartbeatTick: c.heartbeatTick,
    applied: c.applied ?? 0,
    maxSizePerMsg: positive('maxSizePerMsg', c.maxSizePerMsg, DEFAULT_MAX_SIZE_PER_MSG),
    maxEntriesPerMsg: positive('maxEntriesPerMsg', c.maxEntriesPerMsg, DEFAULT_MAX_ENTRIES_PER_MSG),
    maxInflightMsgs: positive('maxInflightMsgs', c.maxInflightMsgs, DEFAULT_MAX_INFLIGHT_MSGS),
    maxUncommittedEntriesSize: maxUncommitted === 0 ? Infinity : maxUncommitted,
    maxCommittedSizePerReady: positive('maxCommittedSizePerReady', c.maxCommittedSizePerReady, Infinity),
    checkQuorum: c.checkQuorum ?? true,
    preVote: c.preVote ?? true,
    random: c.random,
    logger: c.logger ?? silentLogger,
  };
}

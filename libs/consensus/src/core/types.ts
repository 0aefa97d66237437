/**
 * The vocabulary of the Raft core: entries, hard state, messages and the Ready hand-off.
 *
 * These types are the contract between the pure core (this folder), the storage library (which persists
 * entries and hard state), the cluster RPC library (which carries messages between nodes) and the driver
 * (which runs the core with real timers). Names follow the Raft paper and etcd-io/raft.
 */

/** Opaque identity of a cluster member. The empty string means "none" (no vote, no known leader). */
export type NodeId = string;
export const None: NodeId = '';

export enum StateType {
  Follower = 'StateFollower',
  PreCandidate = 'StatePreCandidate',
  Candidate = 'StateCandidate',
  Leader = 'StateLeader',
}

/**
 * Kind of a log entry. A leader's no-op at the start of its term is a Normal entry with empty data.
 * A ConfChange entry's data is an encoded ConfChange (confchange.ts): one membership change at a time.
 */
export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** Opaque command for the state machine; empty for the leader's no-op. */
  data: Uint8Array;
}

/** The state that must be durable before any message that depends on it is sent. */
export interface HardState {
  term: number;
  /** Candidate this node voted for in `term`, or None. */
  vote: NodeId;
  commit: number;
}

/**
 * The cluster configuration: voters (count in quorums, may campaign) and learners (receive the log, never
 * vote). `addresses` is carried for the node layer (each member's URL), recorded with snapshots; the core
 * never reads it and its confState() does not return it.
 */
export interface ConfState {
  voters: NodeId[];
  learners?: NodeId[];
  addresses?: Record<NodeId, string>;
}

/**
 * One membership change (etcd's simple ConfChange): changes take effect when their entry is applied
 * (RawNode.applyConfChange), and only one may be in flight (pendingConfIndex).
 * - AddNode: adds a voter, or promotes a learner; a no-op for an existing voter.
 * - AddLearnerNode: adds a learner; a no-op for an existing learner; refused (no-op) for a voter.
 * - RemoveNode: removes a voter or learner; a no-op for an unknown id; refused (no-op) for the last voter.
 * `context` is opaque to the core (the node layer puts the member's URL there).
 */
export enum ConfChangeType {
  AddNode = 0,
  AddLearnerNode = 1,
  RemoveNode = 2,
}

export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context?: string;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

/**
 * The state machine as of entry `metadata.index` (term `metadata.term`), with the configuration at that
 * point. A leader sends it (MsgSnap) to a follower whose next entry it has compacted; `data` is opaque to
 * the core (it may be empty when the content travels out of band).
 */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

/**
 * Message types. Local ones (Hup, Beat, Prop, TransferLeader, ReadIndex from the local node, Unreachable,
 * SnapStatus, CheckQuorum) never cross the network; step() rejects local types coming from the network
 * except where noted in the core.
 */
export enum MessageType {
  MsgHup = 0,
  MsgBeat = 1,
  MsgProp = 2,
  MsgApp = 3,
  MsgAppResp = 4,
  MsgVote = 5,
  MsgVoteResp = 6,
  MsgSnap = 7,
  MsgHeartbeat = 8,
  MsgHeartbeatResp = 9,
  MsgUnreachable = 10,
  MsgSnapStatus = 11,
  MsgCheckQuorum = 12,
  MsgTransferLeader = 13,
  MsgTimeoutNow = 14,
  MsgReadIndex = 15,
  MsgReadIndexResp = 16,
  MsgPreVote = 17,
  MsgPreVoteResp = 18,
}

/**
 * A Raft message. Field meanings by type (as in etcd-io/raft):
 * - MsgApp: `index`/`logTerm` identify the entry preceding `entries`; `commit` is the leader's commit.
 * - MsgAppResp: `index` is the last index now matching (accept) or the rejected `index` (reject), with
 *   `rejectHint` (the follower's last index or conflict index) and `logTerm` (the follower's term at the
 *   hint) for fast backtracking.
 * - MsgVote / MsgPreVote: `index`/`logTerm` are the candidate's last log index and term; `context` is
 *   "transfer" for a campaign forced by leadership transfer.
 * - MsgHeartbeat: `commit` is min(leader commit, follower match); `context` carries a ReadIndex round id.
 * - MsgReadIndex / MsgReadIndexResp: `context` is the caller's request context; the response's `index`
 *   is the read index.
 */
export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  logTerm: number;
  index: number;
  commit: number;
  reject: boolean;
  rejectHint: number;
  entries?: Entry[];
  context?: string;
  snapshot?: Snapshot;
}

/** Volatile state, reported in Ready when it changes. */
export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

/** A linearizable read became safe: once applied >= index, the state machine may serve `requestCtx`. */
export interface ReadState {
  index: number;
  requestCtx: string;
}

/**
 * What the driver must do, in this order:
 * 1. Persist `snapshot` when present: it becomes the storage's snapshot and the stored log restarts right
 *    after it (every stored entry is discarded; the core installs a snapshot only when its log does not
 *    hold the snapshot's last entry). From then on storage.snapshot() reports it (or firstIndex() is
 *    above its index).
 * 2. Persist `hardState` (if present) and `entries` durably (fsync). If entries[0].index is at or below the
 *    last stored index, first discard the stored suffix from entries[0].index on (a new leader overwrote
 *    uncommitted entries).
 * 3. Send `messages`. Messages that acknowledge something (votes, append responses) are only correct once
 *    steps 1 and 2 are durable; the simple rule is: never send a Ready's messages before its persistence
 *    finished.
 * 4. With a `snapshot`, restore the state machine from it. Then apply `committedEntries`, in order (they
 *    start after the snapshot's index), and serve `readStates` once applied >= index.
 * 5. Call advance(): the snapshot counts as applied, and applied moves to the last committed entry.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  /** A snapshot received from the leader, to install (with mustSync); its index is then the commit index. */
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** True when the snapshot, hardState or entries must be fsynced before messages go out. */
  mustSync: boolean;
  /**
   * The leader's commit index passed a configuration change it proposed: the hard state must be durable
   * before ANY of this Ready's messages go out (canSendBeforePersist included). Otherwise a member the
   * change removes could learn of it, stop, and leave a leader restarted below it waiting for its vote.
   */
  commitsConfChange?: boolean;
}

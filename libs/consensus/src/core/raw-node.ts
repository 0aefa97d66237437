import { RaftConfig, resolveConfig, ResolvedRaftConfig } from './config';
import { ReadyProtocolError, StepLocalMessageError } from './errors';
import { isLocalMsg, isResponseMsg, newMessage } from './message';
import { ProgressState } from './progress';
import { CampaignType, Raft } from './raft';
import { ConfChange, ConfState, Entry, HardState, Message, MessageType, NodeId, Ready, SoftState, StateType } from './types';

export type { RaftConfig, RaftLogger } from './config';

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  /** MsgApps in flight (Replicate state). */
  inflight: number;
  /** Snapshot state: the index of the snapshot sent (MsgSnap). */
  pendingSnapshot?: number;
  /** A learner: replicated to, never counted in a quorum. */
  isLearner: boolean;
}

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  lead: NodeId;
  raftState: StateType;
  applied: number;
  lastIndex: number;
  leadTransferee: NodeId;
  /** Leader only (voters and learners); {} otherwise. */
  progress: Record<NodeId, ProgressStatus>;
}

/** What the outstanding Ready asked the driver to do, remembered until advance(). */
interface Outstanding {
  lastEntryIndex: number;
  lastEntryTerm: number;
  /** Index of the Ready's snapshot, 0 without one. */
  snapshotIndex: number;
  committedEntries: Entry[];
}

/**
 * The public face of the Raft core, in the style of etcd-io/raft's RawNode: a deterministic state machine
 * driven by tick(), step(), propose(), readIndex() and transferLeadership(), whose output is collected by
 * ready() and acknowledged by advance(). It does no I/O, keeps no timers and draws randomness only from
 * config.random.
 *
 * The driver loop, one Ready at a time:
 *
 *     if (node.hasReady()) {
 *       const rd = node.ready();
 *       // (early-send drivers may send now the messages for which canSendBeforePersist(m) is true)
 *       if (rd.snapshot) install(rd.snapshot);  // the stored log now starts right after it
 *       persist(rd.hardState, rd.entries);   // truncating the stored suffix from rd.entries[0].index;
 *                                            // fsync when rd.mustSync; then append to config.storage
 *       send(rd.messages);                   // all of them (or the remaining ones)
 *       if (rd.snapshot) restoreStateMachine(rd.snapshot);
 *       apply(rd.committedEntries);          // in order (a ConfChange entry: node.applyConfChange(
 *                                            // decodeConfChange(e.data))); serve rd.readStates once applied >= index
 *       node.advance();
 *     }
 *
 * Between ready() and advance() the driver may keep calling tick(), step(), propose(), ...; their output
 * goes into the next Ready. ready() must not be called again before advance().
 */
export class RawNode {
  private readonly raft: Raft;
  private readonly cfg: ResolvedRaftConfig;
  private prevSoftSt: SoftState;
  private prevHardSt: HardState;
  private outstanding: Outstanding | undefined;

  /** Builds the node from config.storage: the persisted hard state and log (empty on first boot). */
  constructor(config: RaftConfig) {
    this.cfg = resolveConfig(config);
    this.raft = new Raft(this.cfg);
    this.prevSoftSt = this.raft.softState();
    this.prevHardSt = this.raft.storedHardState;
  }

  /** Advances logical time by one tick (election timeouts, heartbeats, check-quorum). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (a pre-vote round first when preVote is on). No-op on the leader. */
  campaign(): void {
    this.raft.hup(this.cfg.preVote ? CampaignType.PreElection : CampaignType.Election);
  }

  /**
   * Leader only. Appends one Normal entry and returns where it landed; it is committed when it appears in
   * a Ready's committedEntries at that index with that term (another entry there means it was lost).
   * `data` is kept by reference: do not modify it afterwards. Throws ProposalDroppedError when this node
   * is not the leader, during a leadership transfer, or when maxUncommittedEntriesSize would be exceeded.
   */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.raft.propose(data);
  }

  /**
   * Leader only. Proposes a membership change: appends a ConfChange entry (data encodeConfChange(cc)) and
   * returns where it landed, like propose(). Nothing changes until the driver applies the committed entry
   * with applyConfChange(). One change at a time: throws ProposalDroppedError when not leader, during a
   * leadership transfer, beyond maxUncommittedEntriesSize, or while an earlier ConfChange entry (of this
   * leader, or any in its log when it was elected) is not applied yet.
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    return this.raft.proposeConfChange(cc);
  }

  /**
   * The driver is applying a committed ConfChange entry (decodeConfChange of its data): call this in log
   * order, at the point of the entry among the committed entries, also when re-applying entries after a
   * restart. Returns the configuration now in force, to record (and to put in later snapshots). A change
   * that would leave no voter, or demote a voter, is refused: the configuration stays, a warning is logged.
   * A leader that is no longer a voter steps down at once (after telling a caught-up voter to campaign).
   */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Feeds a message received from the network. Messages for another node, responses from nodes that are
   * not members, and messages without a term (other than a forwarded MsgReadIndex) are dropped; stale
   * terms are handled per Raft. Throws StepLocalMessageError for message types that never cross the
   * network (MsgHup, MsgBeat, MsgProp, ...).
   */
  step(m: Message): void {
    if (isLocalMsg(m.type)) throw new StepLocalMessageError(MessageType[m.type] ?? String(m.type));
    if (m.to !== this.raft.id) {
      this.cfg.logger.debug(`${this.raft.id} dropped ${MessageType[m.type]} addressed to ${m.to}`);
      return;
    }
    // Term 0 marks a message without a term; only a forwarded MsgReadIndex legitimately has none. Anything
    // else would bypass the term rules.
    if (m.term === 0 && m.type !== MessageType.MsgReadIndex) {
      this.cfg.logger.debug(`${this.raft.id} dropped ${MessageType[m.type]} from ${m.from} without a term`);
      return;
    }
    if (isResponseMsg(m.type) && !this.raft.trk.isMember(m.from)) {
      this.cfg.logger.debug(`${this.raft.id} dropped ${MessageType[m.type]} from unknown node ${m.from}`);
      return;
    }
    this.raft.step(m);
  }

  /**
   * Requests a linearizable read identified by `ctx` (unique among this cluster's pending reads). On the
   * leader: once an entry of its own term is committed and a heartbeat round confirmed its leadership, a
   * ReadState {index, requestCtx: ctx} appears in a later Ready. On a follower: forwarded to the leader
   * (MsgReadIndex) and the ReadState appears when the answer arrives. Serve the read once applied >= index.
   * Requests can be lost (leader change, message loss): retry after a timeout. Throws
   * ProposalDroppedError when no leader is known.
   */
  readIndex(ctx: string): void {
    this.raft.readIndex(ctx);
  }

  /**
   * Asks the leader to hand leadership to `to`: it stops accepting proposals, brings `to` up to date, then
   * sends it MsgTimeoutNow, which makes it campaign at once. Abandoned after an election timeout. On a
   * follower the request is forwarded to the leader.
   */
  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  /** The transport failed to deliver to `id`: the leader stops streaming to it and probes instead. */
  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  /**
   * The outcome of a MsgSnap this node sent to `id`: `failed` false once `id` received the whole snapshot,
   * true when the transfer failed. Report exactly one outcome per MsgSnap. The leader then probes `id`
   * again: after a failure at the next heartbeat response (which sends a snapshot again if still needed),
   * after a success once `id` answers the snapshot. Ignored unless this node leads and waits for a
   * snapshot to reach `id`.
   */
  reportSnapshot(id: NodeId, failed: boolean): void {
    const m = newMessage(MessageType.MsgSnapStatus, this.raft.id, id, 0);
    m.reject = failed;
    this.raft.step(m);
  }

  /**
   * The current configuration (the voters, and the learners when there are any, in the order they
   * joined), for the snapshots the driver takes: record it as the snapshot's metadata.confState.
   */
  confState(): ConfState {
    return this.raft.confState();
  }

  /** Whether ready() would return something to do. False while a Ready is outstanding (not advanced). */
  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    r.flush();
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.raftLog.unstable.nextSnapshot()) return true;
    if (r.raftLog.hasNextUnstableEnts() || r.raftLog.hasNextCommittedEnts()) return true;
    if (r.lead !== this.prevSoftSt.lead || r.state !== this.prevSoftSt.raftState) return true;
    const hs = this.prevHardSt;
    return r.term !== hs.term || r.vote !== hs.vote || r.raftLog.committed !== hs.commit;
  }

  /**
   * Everything the driver must do now (see Ready in types.ts and docs/consensus.md for the contract).
   * Must be followed by advance() before the next ready(); throws ReadyProtocolError otherwise.
   */
  ready(): Ready {
    if (this.outstanding) throw new ReadyProtocolError('ready() called again before advance()');
    const r = this.raft;
    const log = r.raftLog;
    r.flush();
    const snapshot = log.unstable.nextSnapshot();
    const entries = log.nextUnstableEnts();
    // After the snapshot's index when there is one: the state machine gets those entries from it.
    const committedEntries = log.nextCommittedEnts(this.cfg.maxCommittedSizePerReady);
    const rd: Ready = { entries, committedEntries, messages: r.msgs, readStates: r.readStates, mustSync: false };
    if (snapshot) rd.snapshot = snapshot;
    if (r.lead !== this.prevSoftSt.lead || r.state !== this.prevSoftSt.raftState) {
      rd.softState = r.softState();
      this.prevSoftSt = rd.softState;
    }
    const prev = this.prevHardSt;
    if (r.term !== prev.term || r.vote !== prev.vote || log.committed !== prev.commit) {
      rd.hardState = r.hardState();
      // A commit-only change need not be fsynced: the commit index can be recovered from a quorum. Except
      // the leader's commit of its own configuration change (Ready.commitsConfChange).
      rd.mustSync = r.term !== prev.term || r.vote !== prev.vote;
      if (r.state === StateType.Leader && r.pendingConfIndex > prev.commit && log.committed >= r.pendingConfIndex) {
        rd.commitsConfChange = true;
        rd.mustSync = true;
      }
      this.prevHardSt = rd.hardState;
    }
    if (entries.length > 0) rd.mustSync = true;
    if (snapshot) rd.mustSync = true;
    r.msgs = [];
    r.readStates = [];
    log.unstable.acceptInProgress();
    if (snapshot) log.acceptApplying(snapshot.metadata.index);
    if (committedEntries.length > 0) log.acceptApplying(committedEntries[committedEntries.length - 1].index);
    const last = entries.length > 0 ? entries[entries.length - 1] : undefined;
    this.outstanding = {
      lastEntryIndex: last ? last.index : 0,
      lastEntryTerm: last ? last.term : 0,
      snapshotIndex: snapshot ? snapshot.metadata.index : 0,
      committedEntries,
    };
    return rd;
  }

  /**
   * The last Ready was fully handled: its snapshot, hard state and entries are durable and in
   * config.storage, its messages sent, the state machine restored from its snapshot and its committed
   * entries applied. Throws ReadyProtocolError without an outstanding Ready, or when config.storage does
   * not show the Ready's snapshot or last entry.
   */
  advance(): void {
    const o = this.outstanding;
    if (!o) throw new ReadyProtocolError('advance() called without an outstanding ready()');
    this.outstanding = undefined;
    const r = this.raft;
    const storage = r.raftLog.storage;
    if (o.snapshotIndex > 0) {
      if (storage.firstIndex() <= o.snapshotIndex && storage.snapshot().metadata.index < o.snapshotIndex) {
        throw new ReadyProtocolError(`advance(): the snapshot at ${o.snapshotIndex} of the Ready was not installed in storage`);
      }
      r.raftLog.unstable.stableSnapTo(o.snapshotIndex);
      r.raftLog.appliedTo(o.snapshotIndex);
    }
    if (o.lastEntryIndex > 0) {
      // Entries the storage compacted meanwhile (the driver snapshots what it applied) were persisted.
      const compacted = storage.firstIndex() > o.lastEntryIndex;
      if (!compacted && (storage.lastIndex() < o.lastEntryIndex || storage.term(o.lastEntryIndex) !== o.lastEntryTerm)) {
        throw new ReadyProtocolError(`advance(): entry ${o.lastEntryIndex} of the Ready was not appended to storage`);
      }
      r.raftLog.unstable.stableTo(o.lastEntryIndex, o.lastEntryTerm);
    }
    const ce = o.committedEntries;
    if (ce.length > 0) {
      r.raftLog.appliedTo(ce[ce.length - 1].index);
      r.reduceUncommittedSize(ce);
    }
    r.onPersisted();
    r.onApplied();
  }

  status(): Status {
    const r = this.raft;
    const progress: Record<NodeId, ProgressStatus> = {};
    if (r.state === StateType.Leader) {
      for (const [id, pr] of r.trk.progress) {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          inflight: pr.inflights.count,
          isLearner: r.trk.isLearner(id),
        };
        if (pr.state === 'Snapshot') progress[id].pendingSnapshot = pr.pendingSnapshot;
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.raftLog.committed,
      lead: r.lead,
      raftState: r.state,
      applied: r.raftLog.applied,
      lastIndex: r.raftLog.lastIndex(),
      leadTransferee: r.leadTransferee,
      progress,
    };
  }
}

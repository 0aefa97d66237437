import { ResolvedRaftConfig } from './config';
import { applySimpleChange, describeConfChange, encodeConfChange } from './confchange';
import { payloadSize } from './entries';
import { ProposalDroppedError, RaftConfigError } from './errors';
import { CAMPAIGN_TRANSFER, newMessage, voteRespMsgType } from './message';
import { Progress } from './progress';
import { ProgressTracker } from './progress-tracker';
import { VoteResult } from './quorum';
import { RaftLog } from './raft-log';
import { ReadOnly } from './read-only';
import { CompactedError, SnapshotTemporarilyUnavailableError } from './storage';
import {
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  None,
  NodeId,
  ReadState,
  Snapshot,
  SoftState,
  StateType,
} from './types';

export enum CampaignType {
  /** A pre-vote round (thesis 9.6): asks whether an election could be won, without changing the term. */
  PreElection = 'CampaignPreElection',
  /** A normal election (§5.2). */
  Election = 'CampaignElection',
  /** An election forced by leadership transfer (MsgTimeoutNow): skips pre-vote and bypasses leases. */
  Transfer = 'CampaignTransfer',
}

const EMPTY = new Uint8Array(0);

/** Heartbeat rounds answered without any MsgAppResp, with MsgApps in flight, before they count as lost. */
const STALLED_HEARTBEATS = 2;

/** Committed entries read at a time when looking for an unapplied ConfChange before a campaign. */
const CONF_SCAN_PAGE = 256;

/**
 * The Raft state machine (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
 * and Ongaro's thesis), after etcd-io/raft. Pure and deterministic: all input comes from tick(), step(),
 * propose(), readIndex(), ...; all output is collected in `msgs`, `readStates`, the log's unstable tail
 * and the commit index, which RawNode packages into a Ready.
 *
 * Persistence contract with RawNode: the leader counts itself toward a commit quorum only for entries
 * already durable (its own match is set to raftLog.stableIndex() in onPersisted()), so its MsgApps may be
 * sent before its own fsync completes.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = None;
  lead: NodeId = None;
  state: StateType = StateType.Follower;
  /** The term in which a MsgTimeoutNow waits for committed configuration changes to be applied (onApplied). */
  private transferDueTerm: number | undefined;
  /** Target of a leadership transfer in progress (leader only); proposals are dropped meanwhile. */
  leadTransferee: NodeId = None;
  /**
   * Leader only: index of the latest ConfChange entry this leader may have in its log, unapplied. A new
   * ConfChange is refused while it is above the applied index (one change in flight at a time: the
   * quorums of two consecutive simple configurations always overlap, those of three need not).
   */
  pendingConfIndex = 0;
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;
  /** Messages to send, in order; taken by RawNode.ready(). */
  msgs: Message[] = [];
  /** Reads that became safe; taken by RawNode.ready(). */
  readStates: ReadState[] = [];
  /**
   * The hard state found in storage at start. The state may start above it (commit raised to `applied` or
   * to the snapshot, term raised to the snapshot's): the first Ready then carries the difference.
   */
  readonly storedHardState: HardState;

  private readonly cfg: ResolvedRaftConfig;
  private readOnly = new ReadOnly();
  /** ReadIndex requests received before this leader committed an entry of its own term. */
  private pendingReadIndexMessages: Message[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Bytes of entry data appended by this leader and not yet applied. */
  private uncommittedSize = 0;
  /** Some follower may have entries or a commit index to receive: flush() sends them, coalesced. */
  private appendsDirty = false;
  /** A ReadIndex request needs a heartbeat round: flush() sends one round for all of them. */
  private readHeartbeatDirty = false;
  /**
   * Tags the reads this incarnation forwards to the leader, so that an answer meant for a previous
   * incarnation (before a restart) is never taken for a new request that reuses its context.
   */
  private readonly readNonce: string;

  constructor(cfg: ResolvedRaftConfig) {
    this.cfg = cfg;
    this.id = cfg.id;
    this.readNonce = `${Math.floor(cfg.random() * 0x100000000).toString(36)}:`;
    const { hardState, confState } = cfg.storage.initialState();
    this.storedHardState = { ...hardState };
    // The storage's configuration (a snapshot's) wins: the bootstrap one is history by then. Both may be
    // empty: a node joining a running cluster starts with no configuration (see handleAppendEntries).
    const stored = confState.voters.length > 0;
    const voters = stored ? confState.voters : cfg.peers;
    const learners = stored ? (confState.learners ?? []) : cfg.learners;
    if (voters.length === 0 && learners.length > 0) throw new RaftConfigError('learners without voters');
    const both = learners.filter((id) => voters.includes(id));
    if (both.length > 0) throw new RaftConfigError(`${both.join(',')} both voter and learner`);
    this.raftLog = new RaftLog(cfg.storage);
    this.trk = new ProgressTracker(voters, learners, cfg.maxInflightMsgs);
    if (hardState.term !== 0 || hardState.vote !== None || hardState.commit !== 0) this.loadState(hardState);
    this.raiseTermToSnapshot();
    if (cfg.applied > 0) this.restoreApplied(cfg.applied);
    this.becomeFollower(this.term, None);
    cfg.logger.info(
      `${this.id} newRaft [peers: ${this.trk.voters.join(',')}, learners: ${this.trk.learners.join(',')}, term: ${this.term}, commit: ${this.raftLog.committed}, ` +
        `applied: ${this.raftLog.applied}, lastIndex: ${this.raftLog.lastIndex()}, lastTerm: ${this.raftLog.lastTerm()}]`,
    );
  }

  private loadState(hs: HardState): void {
    if (hs.commit > this.raftLog.lastIndex()) {
      throw new RaftConfigError(
        `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      );
    }
    // A durable commit index below the storage's snapshot is a crash between installing a snapshot and
    // saving the hard state that came with it: the snapshot's index is committed (it is how far the log
    // starts), so the commit index stays there.
    if (hs.commit > this.raftLog.committed) this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /**
   * A crash between installing a snapshot and saving the hard state that came with it leaves a durable term
   * below the snapshot's. Campaigning from there could make this node a second leader of the snapshot's
   * term (voters that never voted in it would grant it). No vote was given in that term either (a vote is
   * durable before it is sent), so the node resumes at the snapshot's term without a vote.
   */
  private raiseTermToSnapshot(): void {
    const snapTerm = this.raftLog.term(this.raftLog.firstIndex() - 1);
    if (this.term >= snapTerm) return;
    this.cfg.logger.info(`${this.id} raising term ${this.term} to the term ${snapTerm} of its snapshot`);
    this.term = snapTerm;
    this.vote = None;
  }

  /**
   * The state machine already applied up to `applied`. Commit-only hard state updates need not be fsynced,
   * so the durable commit index may lag what was applied; the entries are durable (persisted before they
   * were applied), so the commit index is raised to match.
   */
  private restoreApplied(applied: number): void {
    const log = this.raftLog;
    if (applied > log.lastIndex()) {
      throw new RaftConfigError(`applied ${applied} is beyond the last log index ${log.lastIndex()}`);
    }
    if (applied > log.committed) {
      this.cfg.logger.info(`${this.id} raising commit ${log.committed} to applied ${applied}`);
      log.committed = applied;
    }
    if (applied > log.applied) log.appliedTo(applied);
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** The current configuration, as the driver records it in the snapshots it takes. */
  confState(): ConfState {
    const cs: ConfState = { voters: [...this.trk.voters] };
    if (this.trk.learners.length > 0) cs.learners = [...this.trk.learners];
    return cs;
  }

  /** Whether this node may campaign (it is a voter: not a learner, not removed, not still joining). */
  promotable(): boolean {
    return this.trk.isVoter(this.id);
  }

  // ---------------------------------------------------------------------------------------------------
  // State transitions
  // ---------------------------------------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = None;
    }
    this.lead = None;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = None;
    this.trk.resetVotes();
    this.trk.resetProgress(this.raftLog.lastIndex() + 1);
    const self = this.trk.progress.get(this.id);
    // The leader's own match is its durable prefix, not its last index: see onPersisted().
    if (self) self.match = this.raftLog.stableIndex();
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
    this.appendsDirty = false;
    this.readHeartbeatDirty = false;
  }

  private resetRandomizedElectionTimeout(): void {
    const e = this.cfg.electionTick;
    this.randomizedElectionTimeout = e + Math.floor(this.cfg.random() * e);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.cfg.logger.info(`${this.id} became follower at term ${this.term}`);
  }

  becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('invalid transition [leader -> pre-candidate]');
    // Neither the term nor the vote changes: a pre-vote round leaves no trace if it fails.
    this.trk.resetVotes();
    this.lead = None;
    this.state = StateType.PreCandidate;
    this.cfg.logger.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.cfg.logger.info(`${this.id} became candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    if (this.state === StateType.Follower) throw new Error('invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    // A ConfChange of an earlier term may sit unapplied in our log: no new change until it is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    const self = this.trk.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    // The no-op of §8: committing an entry of the new term also commits everything before it, and is
    // what ReadIndex waits for. It is Normal with empty data and does not count as uncommitted size.
    this.appendEntry({ term: this.term, index: this.raftLog.lastIndex() + 1, type: EntryType.Normal, data: EMPTY });
    this.cfg.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  // ---------------------------------------------------------------------------------------------------
  // Time
  // ---------------------------------------------------------------------------------------------------

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.cfg.preVote ? CampaignType.PreElection : CampaignType.Election);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) this.checkQuorumRound();
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== None) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** Check-quorum (thesis 6.2): a leader that has not heard from a quorum for an election timeout steps down. */
  private checkQuorumRound(): void {
    if (!this.trk.quorumActive(this.id)) {
      this.cfg.logger.warn(`${this.id} stepped down to follower since quorum is not active`);
      this.becomeFollower(this.term, None);
      return;
    }
    for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
  }

  // ---------------------------------------------------------------------------------------------------
  // Elections
  // ---------------------------------------------------------------------------------------------------

  /** Starts a campaign unless this node is the leader or not a voter. */
  hup(t: CampaignType): void {
    if (this.state === StateType.Leader) {
      this.cfg.logger.debug(`${this.id} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.cfg.logger.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.cfg.logger.warn(`${this.id} cannot campaign at term ${this.term}: committed configuration changes are not applied yet`);
      // A leader handing over (one that removed itself, say) just committed them: campaign once applied.
      if (t === CampaignType.Transfer) this.transferDueTerm = this.term;
      return;
    }
    this.campaign(t);
  }

  /**
   * The driver applied committed entries (RawNode.advance): a campaign MsgTimeoutNow asked for while
   * configuration changes waited to be applied starts now, if nothing happened in between (same term,
   * still a follower).
   */
  onApplied(): void {
    if (this.transferDueTerm === undefined || this.hasUnappliedConfChanges()) return;
    const due = this.transferDueTerm === this.term && this.state === StateType.Follower;
    this.transferDueTerm = undefined;
    if (due) this.hup(CampaignType.Transfer);
  }

  /**
   * Whether a committed ConfChange entry waits to be applied (etcd's hasUnappliedConfChanges). The cluster
   * already uses the configuration it makes; one counted with the older configuration need not overlap it,
   * so a campaign (and the commits of a leader it elects) could go without a quorum of the real voters.
   * Example: a node restarted from a snapshot taken when it was the only voter, with a committed AddNode
   * after it, would elect itself alone and commit entries no other voter holds.
   */
  private hasUnappliedConfChanges(): boolean {
    const log = this.raftLog;
    const hi = log.committed + 1;
    // Entries below the log's start are in a snapshot, whose configuration is already the tracker's.
    for (let lo = Math.max(log.applied, log.firstIndex() - 1) + 1; lo < hi; lo += CONF_SCAN_PAGE) {
      for (const e of log.slice(lo, Math.min(hi, lo + CONF_SCAN_PAGE), Infinity)) if (e.type === EntryType.ConfChange) return true;
    }
    return false;
  }

  private campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.MsgPreVote;
      // A pre-vote asks for the term we would campaign in, without moving to it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.VoteWon) {
      // A single-voter cluster wins at once.
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voters) {
      if (id === this.id) continue;
      const m = newMessage(voteMsg, id, this.id, term);
      m.index = lastIndex;
      m.logTerm = lastTerm;
      if (t === CampaignType.Transfer) m.context = CAMPAIGN_TRANSFER;
      this.msgs.push(m);
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    this.trk.recordVote(id, granted);
    return this.trk.voteResult();
  }

  // ---------------------------------------------------------------------------------------------------
  // Messages
  // ---------------------------------------------------------------------------------------------------

  private send(m: Message): void {
    this.msgs.push(m);
  }

  /**
   * Handles a message: first the term rules common to every state (§5.1, pre-vote, leases), then the
   * state-specific handler. Term 0 marks a message without a term (a forwarded MsgReadIndex).
   */
  step(m: Message): void {
    if (m.term === 0) {
      // No term: handled by the current state as is.
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const force = m.context === CAMPAIGN_TRANSFER;
        const inLease = this.cfg.checkQuorum && this.lead !== None && this.electionElapsed < this.cfg.electionTick;
        if (!force && inLease) {
          // We heard from a leader within the minimum election timeout: a disruptive candidate (for
          // example one rejoining after a partition) must not depose it (thesis 4.2.3).
          this.cfg.logger.info(`${this.id} [term: ${this.term}] ignored ${MessageType[m.type]} from ${m.from} at term ${m.term}: lease is not expired`);
          return;
        }
      }
      if (m.type === MessageType.MsgPreVote) {
        // Never change our term in response to a pre-vote.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // A granted pre-vote carries the term we asked for; we move to it only if we win the pre-vote.
      } else if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, None);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)) {
        // A stale leader (e.g. back from a partition) would never learn the new term: with check-quorum or
        // pre-vote we may never campaign against it, so tell it.
        this.send(newMessage(MessageType.MsgAppResp, m.from, this.id, this.term));
      } else if (m.type === MessageType.MsgPreVote || m.type === MessageType.MsgVote) {
        // Refused with our term (§5.1: a reply carries the current term), so that the candidate catches up.
        // A candidate that does not count this node as a voter never asks it, and would never learn of the
        // higher term otherwise: without pre-vote, two nodes whose configurations differ (one has applied a
        // membership change the other has not) could each campaign forever in its own term (seed 57330).
        const r = newMessage(voteRespMsgType(m.type), m.from, this.id, this.term);
        r.reject = true;
        this.send(r);
      }
      return;
    }

    if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.state) {
      case StateType.Leader:
        this.stepLeader(m);
        break;
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.stepCandidate(m);
        break;
      default:
        this.stepFollower(m);
    }
  }

  private handleVoteRequest(m: Message): void {
    // We can vote for the node we already voted for (a retransmission), or anyone if we have not voted
    // and know no leader in this term; a pre-vote for a future term is granted on the log alone.
    const canVote =
      this.vote === m.from ||
      (this.vote === None && this.lead === None) ||
      (m.type === MessageType.MsgPreVote && m.term > this.term);
    const respType = voteRespMsgType(m.type);
    if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
      // The response carries the request's term: for a pre-vote it is the candidate's future term.
      this.send(newMessage(respType, m.from, this.id, m.term));
      if (m.type === MessageType.MsgVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      const r = newMessage(respType, m.from, this.id, this.term);
      r.reject = true;
      this.send(r);
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.MsgReadIndex:
        this.leaderReadIndex(m.from, m.context ?? '');
        return;
      case MessageType.MsgTransferLeader:
        this.handleTransferLeader(m.from);
        return;
    }
    const pr = this.trk.progress.get(m.from);
    if (!pr) {
      this.cfg.logger.debug(`${this.id} no progress available for ${m.from}`);
      return;
    }
    switch (m.type) {
      case MessageType.MsgAppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.MsgHeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      case MessageType.MsgSnapStatus:
        this.handleSnapshotStatus(m, pr);
        return;
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteRespType = this.state === StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
    switch (m.type) {
      case MessageType.MsgApp:
        // A leader exists in our term (m.term === term here).
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteRespType:
        this.onVoteResult(this.poll(m.from, !m.reject));
        return;
    }
  }

  private onVoteResult(res: VoteResult): void {
    if (res === VoteResult.VoteWon) {
      if (this.state === StateType.PreCandidate) this.campaign(CampaignType.Election);
      else this.becomeLeader();
    } else if (res === VoteResult.VoteLost) {
      // A pre-vote loss leaves the term unchanged; a vote loss keeps the (already incremented) term.
      this.becomeFollower(this.term, None);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.MsgTimeoutNow:
        // The leader is handing over to us: campaign at once, skipping pre-vote and leases.
        this.hup(CampaignType.Transfer);
        return;
      case MessageType.MsgReadIndexResp: {
        const ctx = m.context ?? '';
        if (ctx.startsWith(this.readNonce)) this.readStates.push({ index: m.index, requestCtx: ctx.slice(this.readNonce.length) });
        return;
      }
      // MsgReadIndex and MsgTransferLeader from other nodes are not relayed (no forwarding loops); local
      // ones are forwarded by readIndex() and transferLeadership().
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Log replication: follower side
  // ---------------------------------------------------------------------------------------------------

  private handleAppendEntries(m: Message): void {
    const log = this.raftLog;
    if (m.index < log.committed) {
      const r = newMessage(MessageType.MsgAppResp, m.from, this.id, this.term);
      r.index = log.committed;
      this.send(r);
      return;
    }
    if (m.index === 0 && this.trk.isEmpty()) {
      // A joining node cannot rebuild the configuration from the log: the bootstrap configuration (peers)
      // is in no entry, so replaying the ConfChanges from index 1 would give it a wrong one (e.g. itself
      // as the only voter). Refusing the entries at index 0, where every log matches, asks for a snapshot.
      this.cfg.logger.info(`${this.id} has no configuration: refused entries from index 1 on, needs a snapshot from ${m.from}`);
      const r = newMessage(MessageType.MsgAppResp, m.from, this.id, this.term);
      r.reject = true;
      this.send(r);
      return;
    }
    const lastNew = log.maybeAppend(m.index, m.logTerm, m.commit, m.entries ?? []);
    if (lastNew !== undefined) {
      const r = newMessage(MessageType.MsgAppResp, m.from, this.id, this.term);
      r.index = lastNew;
      this.send(r);
      return;
    }
    // Reject, with a hint for fast backtracking: the largest index <= m.index whose term is <= m.logTerm.
    // The leader can then skip every entry of the conflicting terms in one round trip.
    const hint = log.findConflictByTerm(Math.min(m.index, log.lastIndex()), m.logTerm);
    const r = newMessage(MessageType.MsgAppResp, m.from, this.id, this.term);
    r.index = m.index;
    r.reject = true;
    r.rejectHint = hint.index;
    r.logTerm = hint.term;
    this.send(r);
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(its commit, our match), so we hold every entry up to it.
    this.raftLog.commitTo(m.commit);
    const r = newMessage(MessageType.MsgHeartbeatResp, m.from, this.id, this.term);
    if (m.context !== undefined) r.context = m.context;
    this.send(r);
  }

  /**
   * InstallSnapshot (Figure 13 of the paper, the rules of etcd-io/raft). The answer is a MsgAppResp whose
   * index is the last entry known to match the leader's log: the snapshot's index once installed (or
   * fast-forwarded to), the commit index when the snapshot is ignored.
   */
  private handleSnapshot(m: Message): void {
    const r = newMessage(MessageType.MsgAppResp, m.from, this.id, this.term);
    r.index = m.snapshot && this.restore(m.snapshot, m.from) ? this.raftLog.lastIndex() : this.raftLog.committed;
    this.send(r);
  }

  /** Installs the snapshot if it brings something new; returns whether the log was replaced by it. */
  private restore(s: Snapshot, from: NodeId): boolean {
    const { index, term, confState } = s.metadata;
    const log = this.raftLog;
    if (index <= log.committed) {
      // Everything it holds is already committed here (a late or duplicated MsgSnap).
      this.cfg.logger.info(`${this.id} [commit: ${log.committed}] ignored snapshot [index: ${index}, term: ${term}] from ${from}`);
      return false;
    }
    const member = confState.voters.includes(this.id) || (confState.learners ?? []).includes(this.id);
    if (!member && this.trk.isMember(this.id)) {
      // A configuration without us: installing it would leave this node, a member, in a cluster it is not
      // part of. A node still joining (no configuration yet, or one from an earlier snapshot that predates
      // its admission too) takes it: the ConfChange adding it follows in the log (seed 444428: a joining
      // node that had installed one such snapshot refused the next, and the cluster waited for it forever).
      this.cfg.logger.warn(`${this.id} ignored snapshot [index: ${index}, term: ${term}] from ${from}: not in its configuration`);
      return false;
    }
    if (log.matchTerm(index, term)) {
      // We already hold the snapshot's last entry, hence (Log Matching) everything before it: commit up to
      // it and keep the entries that follow (Figure 13, step 6). Only the prefix is known to match the
      // leader's log, so the caller answers with the commit index, not our last index.
      this.cfg.logger.info(`${this.id} [commit: ${log.committed}] fast-forwarded commit to snapshot [index: ${index}, term: ${term}]`);
      log.commitTo(index);
      return false;
    }
    log.restore(s);
    this.trk.restore(confState, log.lastIndex() + 1);
    this.cfg.logger.info(
      `${this.id} restored snapshot [index: ${index}, term: ${term}] from ${from}, voters: ${this.trk.voters.join(',')}` +
        `, learners: ${this.trk.learners.join(',')}`,
    );
    return true;
  }

  // ---------------------------------------------------------------------------------------------------
  // Log replication: leader side
  // ---------------------------------------------------------------------------------------------------

  /**
   * Leader only. Appends one Normal entry and returns where it landed. Nothing is sent now: flush()
   * (called by RawNode when building a Ready) sends every new entry to each follower in as few MsgApps
   * as the size limits and inflight windows allow.
   */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.proposeEntry(EntryType.Normal, data);
  }

  /**
   * Leader only. Appends a ConfChange entry; it takes effect when applied (applyConfChange). Refused
   * (ProposalDroppedError) like propose(), and while an earlier change is not applied yet. Proposals only
   * originate on the leader (MsgProp is local: followers do not forward), so this is the only door.
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    this.checkCanPropose();
    if (this.pendingConfIndex > this.raftLog.applied) {
      throw new ProposalDroppedError(
        `a configuration change is pending (entry ${this.pendingConfIndex}, applied ${this.raftLog.applied})`,
      );
    }
    const at = this.proposeEntry(EntryType.ConfChange, encodeConfChange(cc));
    this.pendingConfIndex = at.index;
    this.cfg.logger.info(`${this.id} proposed ${describeConfChange(cc)} at index ${at.index}`);
    return at;
  }

  private checkCanPropose(): void {
    if (this.state !== StateType.Leader) {
      throw new ProposalDroppedError(this.lead === None ? 'not the leader, no leader known' : `not the leader (leader is ${this.lead})`);
    }
    if (this.leadTransferee !== None) {
      throw new ProposalDroppedError(`leadership transfer to ${this.leadTransferee} in progress`);
    }
  }

  private proposeEntry(type: EntryType, data: Uint8Array): { index: number; term: number } {
    this.checkCanPropose();
    const e: Entry = { term: this.term, index: this.raftLog.lastIndex() + 1, type, data };
    if (!this.appendEntry(e)) throw new ProposalDroppedError('too many uncommitted entries (maxUncommittedEntriesSize)');
    return { index: e.index, term: e.term };
  }

  private appendEntry(e: Entry): boolean {
    const size = e.data.byteLength;
    if (this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > this.cfg.maxUncommittedEntriesSize) {
      return false;
    }
    this.uncommittedSize += size;
    this.raftLog.unstable.truncateAndAppend([e]);
    this.appendsDirty = true;
    return true;
  }

  /** Applied entries no longer count as uncommitted (leader flow control). */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.state !== StateType.Leader || this.uncommittedSize === 0) return;
    const s = payloadSize(ents);
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  /**
   * The driver made the log durable up to raftLog.stableIndex(). A leader now counts itself for those
   * entries (and only those): this is what makes sending its MsgApps before its own fsync safe.
   */
  onPersisted(): void {
    if (this.state !== StateType.Leader) return;
    const self = this.trk.progress.get(this.id);
    if (self && self.maybeUpdate(this.raftLog.stableIndex()) && this.maybeCommit()) this.onCommitAdvanced();
  }

  /** Advances the commit index to the quorum's match if that entry is of the current term (§5.4.2). */
  private maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  private onCommitAdvanced(): void {
    this.appendsDirty = true; // followers learn the new commit index
    this.releasePendingReadIndexMessages();
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.stalledHeartbeats = 0;
    if (m.reject) {
      if (m.index === 0) {
        // Every log matches at index 0: the follower has no configuration and needs a snapshot.
        if (pr.state !== 'Probe') return; // a late answer; a snapshot is already on its way
        pr.needsSnapshot = true;
        pr.msgAppFlowPaused = false;
        this.sendAppend(m.from, pr, true);
        return;
      }
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) {
        // The follower's term at rejectHint is m.logTerm: find the last index where our log could agree.
        nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
      }
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === 'Replicate') pr.becomeProbe();
        this.sendAppend(m.from, pr, true);
      }
      return;
    }
    // An empty probe answered at exactly our match also proves where the follower is.
    if (pr.maybeUpdate(m.index) || (pr.state === 'Probe' && pr.match === m.index && pr.next - 1 === m.index)) {
      if (pr.state === 'Probe') {
        pr.becomeReplicate();
      } else if (pr.state === 'Snapshot' && pr.match + 1 >= this.raftLog.firstIndex()) {
        // The follower can be caught up from the log again (it installed the snapshot, or another one, or
        // a late answer shows it needs nothing compacted): resume replication, whatever the transport
        // reports later about the snapshot. Probe first so that `next` accounts for the snapshot.
        this.cfg.logger.debug(`${this.id} resumed replication to ${m.from} at match ${pr.match} after a snapshot`);
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'Replicate') {
        pr.inflights.freeLE(m.index);
      }
      if (this.maybeCommit()) this.onCommitAdvanced();
      this.appendsDirty = true; // the window moved: more entries may go out
      if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
        this.cfg.logger.info(`${this.id} sent MsgTimeoutNow to ${m.from} after it caught up`);
        this.sendTimeoutNow(m.from);
      }
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    if (pr.match < this.raftLog.lastIndex()) {
      if (pr.state === 'Replicate' && pr.inflights.count > 0 && ++pr.stalledHeartbeats < STALLED_HEARTBEATS) {
        // MsgApps are in flight and may simply be slower than heartbeats: give them time.
      } else {
        // In Probe state this is the once-per-heartbeat probe. In Replicate state our MsgApps went
        // unanswered while the follower answers heartbeats: they were probably lost. An (empty if need
        // be) MsgApp makes the follower reveal where it is; a full window gives up its oldest slot.
        pr.stalledHeartbeats = 0;
        if (pr.state === 'Replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
        this.sendAppend(m.from, pr, true);
      }
    }
    if (m.context === undefined) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks || this.trk.config.voteResult(acks) !== VoteResult.VoteWon) return;
    for (const rs of this.readOnly.advance(m.context)) this.respondReadIndex(rs.from, rs.ctx, rs.index);
  }

  /**
   * Sends one MsgApp to `to` if flow control allows: the entries from pr.next on (up to the size limits),
   * or, with sendIfEmpty, an empty one carrying the commit index. Returns whether a message was sent.
   */
  private sendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false;
    if (pr.needsSnapshot) return this.sendSnapshot(to, pr);
    const log = this.raftLog;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[] = [];
    try {
      prevTerm = log.term(prevIndex);
      if (pr.next <= log.lastIndex()) ents = log.entries(pr.next, this.cfg.maxSizePerMsg, this.cfg.maxEntriesPerMsg);
    } catch (e) {
      if (e instanceof CompactedError) return this.sendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    const m = newMessage(MessageType.MsgApp, to, this.id, this.term);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = ents;
    m.commit = log.committed;
    this.send(m);
    pr.sentEntries(ents.length, ents.length > 0 ? ents[ents.length - 1].index : prevIndex);
    pr.recordSentCommit(log.committed);
    return true;
  }

  /**
   * The entries a follower needs were compacted: send it the newest snapshot (MsgSnap) and wait in Snapshot
   * state (nothing else goes to it) until the transport reports the outcome or the follower's MsgAppResp
   * shows it caught up. Returns whether a MsgSnap was sent.
   */
  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) {
      // Not heard from since the last check-quorum round: a snapshot would likely go nowhere, and it is
      // costly. The next answer from it makes it active again.
      this.cfg.logger.debug(`${this.id} ignored sending a snapshot to ${to}: it is not recently active`);
      return false;
    }
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) {
        this.cfg.logger.debug(`${this.id} failed to send a snapshot to ${to}: the snapshot is temporarily unavailable`);
        return false;
      }
      throw e;
    }
    const { index, term } = snapshot.metadata;
    if (index === 0 && pr.needsSnapshot) {
      // Nothing compacted, but a joining follower needs the configuration only a snapshot holds: wait for
      // the driver to take one, asking again at each heartbeat response (not at every flush).
      this.cfg.logger.info(`${this.id} has no snapshot yet for joining node ${to}; waiting for one`);
      pr.msgAppFlowPaused = true;
      return false;
    }
    if (index === 0) {
      throw new Error(`${this.id}: follower ${to} needs entries that were compacted, and the storage holds no snapshot`);
    }
    pr.becomeSnapshot(index);
    // Installing it commits up to its index: no commit-only MsgApp needed for that afterwards.
    pr.recordSentCommit(index);
    const m = newMessage(MessageType.MsgSnap, to, this.id, this.term);
    m.snapshot = snapshot;
    this.send(m);
    this.cfg.logger.info(`${this.id} sent snapshot [index: ${index}, term: ${term}] to ${to} [match: ${pr.match}]`);
    return true;
  }

  /**
   * The transport's outcome of a MsgSnap (RawNode.reportSnapshot). Either way the follower is probed
   * again, but not at once: after a failure, at the next heartbeat response (from match + 1, which finds
   * the entries compacted and sends a snapshot again); after a success, when the follower's MsgAppResp to
   * the snapshot arrives (or the next heartbeat response), from after the snapshot.
   */
  private handleSnapshotStatus(m: Message, pr: Progress): void {
    if (pr.state !== 'Snapshot') return;
    if (m.reject) {
      // Before becomeProbe, which would otherwise probe from the snapshot the follower never got.
      pr.pendingSnapshot = 0;
      this.cfg.logger.debug(`${this.id} snapshot to ${m.from} failed, will probe from ${pr.match + 1}`);
    } else {
      this.cfg.logger.debug(`${this.id} snapshot to ${m.from} succeeded, waiting for its MsgAppResp`);
    }
    pr.becomeProbe();
    pr.msgAppFlowPaused = true;
  }

  private bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingKey();
    for (const [id, pr] of this.trk.progress) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.raftLog.committed);
      const m = newMessage(MessageType.MsgHeartbeat, id, this.id, this.term);
      m.commit = commit;
      if (ctx !== undefined) m.context = ctx;
      this.send(m);
      pr.recordSentCommit(commit);
    }
  }

  /**
   * Emits the deferred MsgApps and the ReadIndex heartbeat round. Called by RawNode before it reports or
   * builds a Ready, so any number of proposals (and reads) between two Readies costs about one MsgApp
   * (and one heartbeat) per follower, split only by the size limits and the inflight window.
   */
  flush(): void {
    if (this.state !== StateType.Leader) {
      this.appendsDirty = false;
      this.readHeartbeatDirty = false;
      return;
    }
    if (this.readHeartbeatDirty) {
      this.readHeartbeatDirty = false;
      this.bcastHeartbeat();
    }
    if (!this.appendsDirty) return;
    this.appendsDirty = false;
    const committed = this.raftLog.committed;
    for (const [id, pr] of this.trk.progress) {
      if (id === this.id) continue;
      let sent = false;
      while (this.sendAppend(id, pr, false)) sent = true;
      if (!sent && pr.canBumpCommit(committed)) this.sendAppend(id, pr, true);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // ReadIndex (thesis 6.4)
  // ---------------------------------------------------------------------------------------------------

  /**
   * A linearizable read. Leader: answered (ReadState or MsgReadIndexResp) once it has committed an entry
   * of its term and a heartbeat round confirmed its leadership. Follower: forwarded to the leader.
   * Throws ProposalDroppedError when no leader is known. Requests may be dropped silently on leader
   * changes or message loss; callers retry after a timeout with a new context.
   */
  readIndex(ctx: string): void {
    if (this.state === StateType.Leader) {
      this.leaderReadIndex(this.id, ctx);
      return;
    }
    if (this.lead === None) throw new ProposalDroppedError('no leader known to serve the read');
    const m = newMessage(MessageType.MsgReadIndex, this.lead, this.id, 0);
    m.context = this.readNonce + ctx;
    this.send(m);
  }

  private leaderReadIndex(from: NodeId, ctx: string): void {
    // A new leader's commit index may lag entries committed by its predecessor until it commits an entry
    // of its own term (the no-op); until then the read waits.
    if (!this.committedEntryInCurrentTerm()) {
      const m = newMessage(MessageType.MsgReadIndex, this.id, from, 0);
      m.context = ctx;
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.startReadIndex(from, ctx);
  }

  private startReadIndex(from: NodeId, ctx: string): void {
    const key = this.readOnly.addRequest(this.raftLog.committed, from, ctx);
    if (key === undefined) return;
    const acks = this.readOnly.recvAck(this.id, key)!;
    if (this.trk.config.voteResult(acks) === VoteResult.VoteWon) {
      // Single voter: this node alone is the quorum.
      for (const rs of this.readOnly.advance(key)) this.respondReadIndex(rs.from, rs.ctx, rs.index);
      return;
    }
    this.readHeartbeatDirty = true;
  }

  private respondReadIndex(from: NodeId, ctx: string, index: number): void {
    if (from === this.id) {
      this.readStates.push({ index, requestCtx: ctx });
      return;
    }
    const m = newMessage(MessageType.MsgReadIndexResp, from, this.id, this.term);
    m.index = index;
    m.context = ctx;
    this.send(m);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.startReadIndex(m.from, m.context ?? '');
  }

  // ---------------------------------------------------------------------------------------------------
  // Membership changes (thesis 4.1: one server at a time, as etcd-io/raft's simple ConfChange)
  // ---------------------------------------------------------------------------------------------------

  /**
   * A committed ConfChange entry is being applied (the driver calls this in log order, also when it
   * re-applies entries after a restart). The configuration changes now, on every node alike; a refused
   * change (see applySimpleChange) leaves it as it is, with a warning. Returns the configuration in force.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const next = applySimpleChange({ voters: [...this.trk.voters], learners: [...this.trk.learners] }, cc);
    if (typeof next === 'string') {
      this.cfg.logger.warn(`${this.id} refused to apply ${describeConfChange(cc)}: ${next}`);
      return this.confState();
    }
    const added = this.trk.switchTo(next, this.raftLog.lastIndex() + 1);
    this.cfg.logger.info(
      `${this.id} applied ${describeConfChange(cc)}: voters ${next.voters.join(',')}, learners ${next.learners.join(',') || '-'}`,
    );
    if (this.state === StateType.Leader) {
      this.leaderSwitchedConfig(added);
    } else if (this.state !== StateType.Follower) {
      // The votes received so far may decide the election under the new quorum; a candidate that is no
      // longer a voter gives up.
      if (this.promotable()) this.onVoteResult(this.trk.voteResult());
      else this.becomeFollower(this.term, None);
    }
    return this.confState();
  }

  private leaderSwitchedConfig(added: NodeId[]): void {
    if (!this.trk.isVoter(this.id)) {
      this.stepDownAfterRemoval();
      return;
    }
    if (this.leadTransferee !== None && !this.trk.isVoter(this.leadTransferee)) {
      this.cfg.logger.info(`${this.id} aborted the transfer to ${this.leadTransferee}: no longer a voter`);
      this.abortLeaderTransfer();
    }
    // A smaller quorum may already hold entries the old one did not.
    if (this.maybeCommit()) this.onCommitAdvanced();
    // An empty probe makes each new member reveal where its log stands (a joining one asks for a snapshot).
    for (const id of added) this.sendAppend(id, this.trk.progress.get(id)!, true);
  }

  /**
   * This leader applied its own removal (or it is no longer a voter): it steps down in its term, so that
   * the remaining voters elect a leader among them. If one of them holds the whole log, it is told to
   * campaign at once (MsgTimeoutNow) rather than after an election timeout.
   */
  private stepDownAfterRemoval(): void {
    this.flush(); // the commit index that includes the change goes out first
    let best: NodeId = None;
    let bestMatch = -1;
    for (const id of this.trk.voters) {
      const pr = this.trk.progress.get(id);
      if (pr && pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best !== None && bestMatch === this.raftLog.lastIndex()) {
      this.cfg.logger.info(`${this.id} removed from the configuration: sent MsgTimeoutNow to ${best}`);
      this.sendTimeoutNow(best);
    }
    this.cfg.logger.info(`${this.id} removed from the configuration: stepping down`);
    this.becomeFollower(this.term, None);
  }

  // ---------------------------------------------------------------------------------------------------
  // Leadership transfer (thesis 3.10)
  // ---------------------------------------------------------------------------------------------------

  /** Local request: on the leader, start the transfer; on a follower, forward it to the leader. */
  transferLeadership(to: NodeId): void {
    if (this.state === StateType.Leader) {
      this.handleTransferLeader(to);
      return;
    }
    if (this.lead === None) {
      this.cfg.logger.info(`${this.id} no leader at term ${this.term}; dropping leader transfer msg`);
      return;
    }
    // As in etcd, a MsgTransferLeader's `from` names the transferee.
    this.send(newMessage(MessageType.MsgTransferLeader, this.lead, to, this.term));
  }

  private handleTransferLeader(to: NodeId): void {
    const pr = this.trk.progress.get(to);
    if (!pr || !this.trk.isVoter(to)) {
      // A learner could not win an election, and a non-member would not even campaign.
      this.cfg.logger.info(`${this.id} ignored transfer leadership to ${to}: not a voter`);
      return;
    }
    if (this.leadTransferee !== None) {
      if (this.leadTransferee === to) return; // already under way
      this.abortLeaderTransfer();
    }
    if (to === this.id) return; // already the leader
    // The transfer must complete within one election timeout, or it is aborted (tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = to;
    if (pr.match === this.raftLog.lastIndex()) {
      this.sendTimeoutNow(to);
    } else {
      // Catch the target up first; handleAppendResponse sends MsgTimeoutNow once it matches.
      this.sendAppend(to, pr, true);
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(newMessage(MessageType.MsgTimeoutNow, to, this.id, this.term));
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = None;
  }

  /** The transport could not reach `id`: stop streaming to it optimistically. */
  reportUnreachable(id: NodeId): void {
    if (this.state !== StateType.Leader) return;
    const pr = this.trk.progress.get(id);
    if (pr && id !== this.id && pr.state === 'Replicate') pr.becomeProbe();
  }
}

import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { randomInt } from 'node:crypto';
import { ProposalDroppedError, StepLocalMessageError } from './core/errors';
import { canSendBeforePersist } from './core/message';
import { RawNode } from './core/raw-node';
import { Entry, EntryType, HardState, Message, MessageType, NodeId, None, ReadState, Ready, SoftState, StateType } from './core/types';
import {
  IdentityMismatchError,
  NoLeaderError,
  NotLeaderError,
  ProposalLostError,
  ProposalRejectedError,
  ProposalTimeoutError,
  ReadTimeoutError,
  ShuttingDownError,
} from './errors';
import { PEER_TRANSPORT, PeerTransport, RAFT_STORAGE, RaftStorage, STATE_MACHINE, StateMachine } from './ports';
import { RaftMetrics } from './raft.metrics';

export const CONSENSUS_OPTIONS = Symbol('CONSENSUS_OPTIONS');

export interface ConsensusOptions {
  /** This member's identity in the Raft group: its advertised URL. */
  id: NodeId;
  /** Human name (NODE_ID), reported as the leader's name. */
  name: string;
  /** Every voter's identity, this node's included. */
  members: NodeId[];
  /** Fingerprint of the member set, recorded in the data directory at first start. */
  clusterId: string;
  heartbeatIntervalMs: number;
  /** Base election timeout; the core randomizes each election wait in [base, 2 x base). */
  electionTimeoutMs: number;
  /** How long a proposal or a linearizable read may wait before the client is answered. */
  requestTimeoutMs: number;
  /** Bounds the leader's uncommitted tail (bytes): proposals beyond are refused instead of queued. */
  maxUncommittedBytes?: number;
  /** Source of randomness for election timeouts (default: crypto). */
  random?: () => number;
  /**
   * Called when the node cannot go on safely (a failed fsync, corruption found while reading the log, a
   * broken invariant). Default: exit the process with code 70, so that a supervisor restarts it and recovery
   * runs from what is really on disk.
   */
  onFatal?: (error: Error) => void;
}

/** What GET /status reports about one peer (leader only). */
export interface PeerStatus {
  id: NodeId;
  name?: string;
  match: number;
  next: number;
  state: string;
  /** Milliseconds since this node last received a message from the peer (undefined: never). */
  lastContactMs?: number;
}

export interface NodeStatus {
  id: NodeId;
  name: string;
  state: StateType;
  term: number;
  lead: NodeId;
  leaderName?: string;
  commit: number;
  applied: number;
  lastIndex: number;
  peers: PeerStatus[];
}

interface PendingProposal {
  term: number;
  started: number;
  deadline: number;
  resolve(applied: Applied): void;
  reject(error: Error): void;
}

/** A proposal applied: where it landed and what the state machine returned. */
export interface Applied {
  index: number;
  result: unknown;
}

interface PendingRead {
  started: number;
  resolve(): void;
  reject(error: Error): void;
}

interface ReadBatch {
  index: number;
  deadline: number;
  waiters: PendingRead[];
}

/**
 * Drives the pure Raft core with real time, storage, transport and state machine.
 *
 * One loop, never concurrent with itself: take a Ready; send early messages; persist (one fsync for all
 * that accumulated while the previous batch was being made durable: group commit); send the rest; apply
 * committed entries; answer reads; advance. Inputs (ticks, peer messages, proposals, reads) land in the
 * core at any time and only schedule the loop, so a slow disk or peer never blocks the event loop.
 */
@Injectable()
export class RaftNodeService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Raft');
  private node!: RawNode;
  private tickTimer?: NodeJS.Timeout;
  private scheduled = false;
  private running = false;
  private idle?: () => void;
  private stopping = false;
  private stopped = false;
  private failed?: Error;

  private soft: SoftState = { lead: None, raftState: StateType.Follower };
  /** A commit-only hard state not written yet (see handle()). */
  private unsavedHardState?: HardState;
  private term = 0;
  private applied = 0;
  private readonly proposals = new Map<number, PendingProposal[]>();
  private queuedReads: PendingRead[] = [];
  private readonly issuedReads = new Map<string, ReadBatch>();
  private readonly waitingReads: ReadBatch[] = [];
  private readSeq = 0;
  private readonly lastContact = new Map<NodeId, number>();
  private readonly leaderWaiters: Array<() => void> = [];

  constructor(
    @Inject(CONSENSUS_OPTIONS) private readonly options: ConsensusOptions,
    @Inject(RAFT_STORAGE) private readonly storage: RaftStorage,
    @Inject(PEER_TRANSPORT) private readonly transport: PeerTransport,
    @Inject(STATE_MACHINE) private readonly stateMachine: StateMachine,
    private readonly metrics: RaftMetrics,
  ) {}

  onApplicationBootstrap(): Promise<void> {
    return this.start();
  }

  onModuleDestroy(): Promise<void> {
    return this.stop();
  }

  /**
   * Checks the data directory's identity, restores the core from storage and starts ticking. Throws
   * IdentityMismatchError when the directory belongs to another node or another cluster.
   */
  async start(): Promise<void> {
    await this.checkIdentity();
    const { heartbeatIntervalMs, electionTimeoutMs } = this.options;
    this.node = new RawNode({
      id: this.options.id,
      peers: this.options.members,
      storage: this.storage.storage,
      heartbeatTick: 1,
      electionTick: Math.max(2, Math.round(electionTimeoutMs / heartbeatIntervalMs)),
      checkQuorum: true,
      preVote: true,
      maxUncommittedEntriesSize: this.options.maxUncommittedBytes ?? 64 * 1024 * 1024,
      random: this.options.random ?? (() => randomInt(0x100000000) / 0x100000000),
      logger: {
        debug: (msg) => this.logger.debug(msg),
        info: (msg) => this.logger.debug(msg),
        warn: (msg) => this.logger.warn(msg),
      },
    });
    const status = this.node.status();
    this.term = status.term;
    this.metrics.bind(() => ({
      term: this.term,
      state: this.soft.raftState,
      commit: this.node.status().commit,
      applied: this.applied,
      lastIndex: this.storage.storage.lastIndex(),
    }));
    this.transport.listen((messages) => this.receive(messages));
    this.transport.onUnreachable((peer) => {
      if (this.stopped) return;
      this.node.reportUnreachable(peer);
      this.schedule();
    });
    this.logger.log(
      `${this.options.name} starting at term ${status.term} with commit ${status.commit}, last index ` +
        `${this.storage.storage.lastIndex()}; members: ${this.options.members.join(', ')}`,
    );
    this.tickTimer = setInterval(() => this.tick(), heartbeatIntervalMs);
    // A single-node cluster has nobody to wait for: elect itself now rather than after a timeout.
    if (this.options.members.length === 1) this.node.campaign();
    this.schedule();
  }

  private async checkIdentity(): Promise<void> {
    const { id, name, clusterId, members } = this.options;
    const meta = this.storage.meta;
    if (!meta) {
      await this.storage.setMeta({ nodeId: name, url: id, clusterId, members });
      return;
    }
    const problems: string[] = [];
    if (meta.nodeId !== name) problems.push(`it belongs to node '${String(meta.nodeId)}', this process is '${name}'`);
    if (meta.url !== id) problems.push(`it was created for URL ${String(meta.url)}, this node advertises ${id}`);
    if (meta.clusterId !== clusterId) {
      const recorded = Array.isArray(meta.members) ? meta.members.join(', ') : String(meta.members);
      problems.push(`it belongs to a cluster of [${recorded}], this node is configured for [${members.join(', ')}]`);
    }
    if (problems.length > 0) {
      throw new IdentityMismatchError(
        `the data directory does not match this node's configuration: ${problems.join('; ')}. ` +
          `Fix NODE_ID / ADVERTISE_URL / PEER_URLS, or point WAL_DIR at this node's own directory`,
      );
    }
  }

  /**
   * Stops the node. When it leads and `transferLeadership` is set, first hands leadership to the most
   * caught-up peer (waiting at most one election timeout), so the cluster does not wait for an election.
   */
  async stop(options: { transferLeadership?: boolean } = {}): Promise<void> {
    if (this.stopping || !this.node) return;
    this.stopping = true;
    if (options.transferLeadership && this.soft.raftState === StateType.Leader && this.options.members.length > 1) {
      await this.handOver();
    }
    clearInterval(this.tickTimer);
    await this.whenIdle();
    this.stopped = true;
    this.failAll(new ShuttingDownError());
  }

  private async handOver(): Promise<void> {
    // Only a peer that answered within an election timeout can take over; when every peer is gone (the
    // whole cluster stopping), waiting for a transfer that cannot happen only delays the shutdown.
    const now = Date.now();
    const progress = this.node.status().progress;
    const target = Object.entries(progress)
      .filter(([peer]) => peer !== this.options.id)
      .filter(([peer]) => now - (this.lastContact.get(peer) ?? -Infinity) < this.options.electionTimeoutMs)
      .sort(([, a], [, b]) => b.match - a.match)[0]?.[0];
    if (!target) {
      this.logger.log(`${this.options.name} stopping as leader: no peer is reachable to take over`);
      return;
    }
    this.logger.log(`${this.options.name} transferring leadership to ${this.transport.peerName(target) ?? target}`);
    this.node.transferLeadership(target);
    this.schedule();
    const deadline = Date.now() + 2 * this.options.electionTimeoutMs;
    while (this.soft.raftState === StateType.Leader && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private whenIdle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => (this.idle = resolve));
  }

  /**
   * Proposes a command and resolves with its index and the state machine's result once it is applied here.
   * Rejects with NotLeaderError / NoLeaderError (nothing was proposed), ProposalRejectedError (refused),
   * ProposalLostError (definitely not applied), ProposalTimeoutError (outcome unknown).
   */
  propose(data: Uint8Array): Promise<Applied> {
    this.assertServing();
    this.assertLeader();
    let at: { index: number; term: number };
    try {
      at = this.node.propose(data);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      this.metrics.proposal('rejected');
      this.assertLeader();
      throw new ProposalRejectedError(error.message);
    }
    this.schedule();
    return new Promise((resolve, reject) => {
      const now = Date.now();
      const pending: PendingProposal = {
        term: at.term,
        started: now,
        deadline: now + this.options.requestTimeoutMs,
        resolve,
        reject,
      };
      const list = this.proposals.get(at.index);
      if (list) list.push(pending);
      else this.proposals.set(at.index, [pending]);
    });
  }

  /**
   * Resolves once this node's state machine reflects every write committed before the call (ReadIndex:
   * the leader confirms with a quorum that it still leads, then waits until it has applied its commit
   * index). Leader only: rejects with NotLeaderError / NoLeaderError elsewhere, ReadTimeoutError when a
   * quorum cannot be reached in time. Reads arriving together share one confirmation round.
   */
  readBarrier(): Promise<void> {
    this.assertServing();
    this.assertLeader();
    return new Promise((resolve, reject) => {
      this.queuedReads.push({ started: Date.now(), resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when a leader is known (or after timeoutMs). */
  waitForLeader(timeoutMs: number): Promise<boolean> {
    if (this.soft.lead !== None) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.soft.lead !== None), timeoutMs);
      this.leaderWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  get isLeader(): boolean {
    return this.soft.raftState === StateType.Leader;
  }

  /** The known leader's identity (URL) and name; lead is None when unknown. */
  leader(): { lead: NodeId; name?: string } {
    const lead = this.soft.lead;
    if (lead === None) return { lead };
    return { lead, name: lead === this.options.id ? this.options.name : this.transport.peerName(lead) };
  }

  /** A failed node (fsync error) has stopped serving: readiness reports it. */
  get failure(): Error | undefined {
    return this.failed;
  }

  status(): NodeStatus {
    const s = this.node.status();
    const now = Date.now();
    const leader = this.leader();
    const peers: PeerStatus[] = [];
    for (const [id, p] of Object.entries(s.progress)) {
      if (id === this.options.id) continue;
      const contact = this.lastContact.get(id);
      peers.push({
        id,
        name: this.transport.peerName(id),
        match: p.match,
        next: p.next,
        state: p.state,
        lastContactMs: contact === undefined ? undefined : now - contact,
      });
    }
    return {
      id: this.options.id,
      name: this.options.name,
      state: s.raftState,
      term: s.term,
      lead: s.lead,
      leaderName: leader.name,
      commit: s.commit,
      applied: this.applied,
      lastIndex: s.lastIndex,
      peers,
    };
  }

  private assertServing(): void {
    if (this.failed) throw this.failed;
    if (this.stopping) throw new ShuttingDownError();
  }

  private assertLeader(): void {
    if (this.soft.raftState === StateType.Leader) return;
    const { lead, name } = this.leader();
    if (lead === None) throw new NoLeaderError();
    throw new NotLeaderError(name ?? lead, lead);
  }

  private receive(messages: Message[]): void {
    if (this.stopped || !this.node) return;
    const now = Date.now();
    for (const m of messages) {
      this.metrics.messageReceived(m.type);
      this.lastContact.set(m.from, now);
      try {
        this.node.step(m);
      } catch (error) {
        if (!(error instanceof StepLocalMessageError)) {
          // Anything else (a storage read that found corruption, a broken invariant) means this node can no
          // longer be trusted to act: stop it rather than carry on with a half-applied step.
          this.fail(error as Error);
          return;
        }
        this.logger.debug(`dropped ${MessageType[m.type]} from ${m.from}: ${(error as Error).message}`);
      }
    }
    this.schedule();
  }

  private tick(): void {
    if (this.stopped) return;
    this.node.tick();
    this.expire(Date.now());
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => void this.run());
  }

  /** The Ready loop. Only one instance runs; inputs that arrive meanwhile are picked up by its next turn. */
  private async run(): Promise<void> {
    this.scheduled = false;
    if (this.running || this.stopped || this.failed) return;
    this.running = true;
    try {
      this.issueReads();
      while (this.node.hasReady() && !this.failed) {
        await this.handle(this.node.ready());
        this.node.advance();
        this.issueReads();
      }
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.running = false;
      this.idle?.();
      this.idle = undefined;
    }
  }

  private async handle(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState);
    if (rd.hardState) this.term = rd.hardState.term;
    // The leader's replication messages leave before its own fsync (Raft thesis 10.2.1, canSendBeforePersist):
    // followers write in parallel with the leader. Everything else promises durable state and waits for it.
    const late: Message[] = [];
    const early: Message[] = [];
    for (const m of rd.messages) (canSendBeforePersist(m) ? early : late).push(m);
    this.send(early);
    if (rd.mustSync) {
      await this.storage.save(rd.hardState ?? this.unsavedHardState, rd.entries);
      this.unsavedHardState = undefined;
    } else if (rd.hardState) {
      // Only the commit index moved: it can be learned again from a quorum after a crash, so it is not worth
      // an fsync (which would sit between a commit and its answer to the client). It is written with the
      // next save that must be durable anyway.
      this.unsavedHardState = rd.hardState;
    }
    this.send(late);
    if (rd.committedEntries.length > 0) this.apply(rd.committedEntries);
    if (rd.readStates.length > 0) this.onReadStates(rd.readStates);
  }

  private send(messages: Message[]): void {
    if (messages.length === 0) return;
    for (const m of messages) this.metrics.messageSent(m.type);
    this.transport.send(messages);
  }

  private onSoftState(soft: SoftState): void {
    const previous = this.soft;
    this.soft = soft;
    const term = this.node.status().term;
    if (soft.lead !== previous.lead) {
      this.metrics.leaderChanges.inc();
      const name = soft.lead === None ? 'none' : (this.leader().name ?? soft.lead);
      this.logger.log(`${this.options.name} term ${term}: leader is ${name}`);
      if (soft.lead !== None) for (const wake of this.leaderWaiters.splice(0)) wake();
    }
    if (soft.raftState !== previous.raftState) {
      if (soft.raftState === StateType.Candidate) this.metrics.elections.inc();
      this.logger.log(`${this.options.name} term ${term}: ${previous.raftState} -> ${soft.raftState}`);
      if (previous.raftState === StateType.Leader) {
        // Pending confirmations of a deposed leader can never complete here; the client may retry elsewhere.
        const error = this.leaderErrorOr(new NoLeaderError());
        for (const batch of this.issuedReads.values()) for (const w of batch.waiters) w.reject(error);
        this.issuedReads.clear();
        for (const w of this.queuedReads.splice(0)) w.reject(error);
      }
    }
  }

  private leaderErrorOr(fallback: Error): Error {
    try {
      this.assertLeader();
      return fallback;
    } catch (error) {
      return error as Error;
    }
  }

  private apply(entries: Entry[]): void {
    const now = Date.now();
    for (const entry of entries) {
      let result: unknown;
      if (entry.type === EntryType.Normal && entry.data.length > 0) result = this.stateMachine.apply(entry);
      this.applied = entry.index;
      const waiters = this.proposals.get(entry.index);
      if (!waiters) continue;
      this.proposals.delete(entry.index);
      for (const w of waiters) {
        if (w.term === entry.term) {
          this.metrics.proposal('committed');
          this.metrics.proposalDuration.observe((now - w.started) / 1000);
          w.resolve({ index: entry.index, result });
        } else {
          this.metrics.proposal('lost');
          w.reject(new ProposalLostError(entry.index));
        }
      }
    }
    this.releaseReads(now);
  }

  private issueReads(): void {
    if (this.queuedReads.length === 0) return;
    const waiters = this.queuedReads;
    this.queuedReads = [];
    const ctx = String(++this.readSeq);
    try {
      this.node.readIndex(ctx);
    } catch (error) {
      const reason = error instanceof ProposalDroppedError ? this.leaderErrorOr(new NoLeaderError()) : (error as Error);
      for (const w of waiters) w.reject(reason);
      return;
    }
    this.issuedReads.set(ctx, { index: 0, deadline: waiters[0].started + this.options.requestTimeoutMs, waiters });
  }

  private onReadStates(states: ReadState[]): void {
    for (const rs of states) {
      const batch = this.issuedReads.get(rs.requestCtx);
      if (!batch) continue;
      this.issuedReads.delete(rs.requestCtx);
      batch.index = rs.index;
      this.waitingReads.push(batch);
    }
    this.releaseReads(Date.now());
  }

  private releaseReads(now: number): void {
    if (this.waitingReads.length === 0) return;
    let kept = 0;
    for (const batch of this.waitingReads) {
      if (batch.index <= this.applied) {
        for (const w of batch.waiters) {
          this.metrics.readIndexDuration.observe((now - w.started) / 1000);
          w.resolve();
        }
      } else {
        this.waitingReads[kept++] = batch;
      }
    }
    this.waitingReads.length = kept;
  }

  /** Answers requests whose deadline passed. Runs once per tick: deadlines are honoured to within a tick. */
  private expire(now: number): void {
    for (const [index, waiters] of this.proposals) {
      const alive = waiters.filter((w) => {
        if (w.deadline > now) return true;
        this.metrics.proposal('timeout');
        w.reject(new ProposalTimeoutError(index, this.options.requestTimeoutMs));
        return false;
      });
      if (alive.length === 0) this.proposals.delete(index);
      else if (alive.length !== waiters.length) this.proposals.set(index, alive);
    }
    const timeout = new ReadTimeoutError(this.options.requestTimeoutMs);
    for (const [ctx, batch] of this.issuedReads) {
      if (batch.deadline > now) continue;
      this.issuedReads.delete(ctx);
      for (const w of batch.waiters) w.reject(timeout);
    }
    let kept = 0;
    for (const batch of this.waitingReads) {
      if (batch.deadline > now) this.waitingReads[kept++] = batch;
      else for (const w of batch.waiters) w.reject(timeout);
    }
    this.waitingReads.length = kept;
  }

  private failAll(error: Error): void {
    for (const [index, waiters] of this.proposals) {
      // The entries may still commit elsewhere: for the client, the outcome is unknown.
      for (const w of waiters) w.reject(new ProposalTimeoutError(index, this.options.requestTimeoutMs));
    }
    this.proposals.clear();
    for (const batch of this.issuedReads.values()) for (const w of batch.waiters) w.reject(error);
    this.issuedReads.clear();
    for (const batch of this.waitingReads) for (const w of batch.waiters) w.reject(error);
    this.waitingReads.length = 0;
    for (const w of this.queuedReads.splice(0)) w.reject(error);
  }

  private fail(error: Error): void {
    if (this.failed) return;
    this.failed = new Error(`this node stopped serving: ${error.message}`);
    this.logger.error(`${this.options.name}: ${this.failed.message}`);
    clearInterval(this.tickTimer);
    this.stopped = true;
    this.failAll(this.failed);
    (this.options.onFatal ?? (() => process.exit(70)))(error);
  }
}

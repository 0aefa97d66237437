import { ProposalDroppedError, StepLocalMessageError } from './core/errors';
import { RawNode, Status } from './core/raw-node';
import { Entry, Message, MessageType, NodeId, None, ReadState, Snapshot, SoftState, StateType } from './core/types';
import { NoLeaderError, NotLeaderError, OverloadedError, ProposalRejectedError, ShuttingDownError } from './errors';
import { handOver } from './leadership-handover';
import { describeStatus, NodeStatus } from './node-status';
import { NodeLogger, NodeMetrics, Timer } from './ports';
import { newRawNode, RaftNodeOptions, RaftNodePorts, silentLogger, uncountedMetrics } from './raft-node-options';
import { Applied, ProposalTracker, ProposalWaiter } from './proposal-tracker';
import { ReadBatcher, ReadWaiter } from './read-batcher';
import { ReadyLoop } from './ready-loop';
import { Snapshotter } from './snapshotter';

/**
 * One Raft member: the pure core driven by the Ready loop on the given ports, with the bookkeeping around
 * it (proposals waiting for their entry, reads waiting for their read index, contact times, leadership).
 * The same class runs in production (RaftNodeService binds real ports) and in the simulator (fakes).
 * Inputs land in the core at any time and only schedule the loop: a slow disk or peer never blocks callers.
 * Snapshots (taking, compacting after them, restoring) are the Snapshotter's.
 */
export class RaftNode {
  private raw!: RawNode;
  private loop!: ReadyLoop;
  private ticker?: Timer;
  private stopping = false;
  private stopped = false;
  private failed?: Error;
  private soft: SoftState = { lead: None, raftState: StateType.Follower };
  private appliedIndex = 0;
  private snapshots!: Snapshotter;
  private readonly proposals: ProposalTracker;
  private readonly reads: ReadBatcher;
  private readonly lastContact = new Map<NodeId, number>();
  private readonly leaderWaiters: Array<() => void> = [];
  private readonly logger: NodeLogger;
  private readonly metrics: NodeMetrics;
  private readonly maxPending: number;

  constructor(
    private readonly options: RaftNodeOptions,
    private readonly ports: RaftNodePorts,
  ) {
    this.logger = ports.logger ?? silentLogger;
    this.metrics = ports.metrics ?? uncountedMetrics;
    this.maxPending = options.maxPendingRequests ?? 10_000;
    this.proposals = new ProposalTracker(options.requestTimeoutMs, this.metrics);
    this.reads = new ReadBatcher(options.requestTimeoutMs, this.metrics);
  }

  /**
   * Restores the state machine (newest snapshot) and the core from storage, then starts ticking and listening.
   * Call once. `done(error?)` once started or failed (an error without `done` is fatal: onFatal).
   */
  start(done?: (error?: Error) => void): void {
    const { storage, stateMachine, clock } = this.ports;
    this.snapshots = new Snapshotter({
      name: this.options.name,
      storage,
      stateMachine,
      clock,
      logger: this.logger,
      metrics: this.metrics,
      every: this.options.snapshotEntries ?? 10_000,
      catchUp: this.options.snapshotCatchUpEntries ?? 5_000,
      confState: () => this.raw.confState(),
    });
    this.snapshots.start(
      (applied) => this.boot(applied),
      (error) => {
        if (!error) return done?.();
        this.logger.error(`${this.options.name}: ${error.message}`);
        if (done) done(error);
        else this.options.onFatal(error);
      },
    );
  }

  private boot(applied: number): void {
    const { members, tickMs } = this.options;
    const { storage, transport, clock } = this.ports;
    this.appliedIndex = applied;
    this.raw = newRawNode(this.options, storage.storage, applied, this.logger);
    this.loop = new ReadyLoop(
      this.raw,
      storage,
      clock,
      {
        beforeReady: () => this.issueReads(),
        onSoftState: (soft) => this.onSoftState(soft),
        send: (messages) => this.send(messages),
        apply: (entries) => this.apply(entries),
        restore: (snapshot, done) => this.installed(snapshot, done),
        onReadStates: (states) => this.onReadStates(states),
        fail: (error) => this.fail(error),
      },
      this.ports.observer,
    );
    transport.listen((messages) => this.receive(messages));
    transport.onUnreachable((peer) => {
      if (this.stopped) return;
      this.raw.reportUnreachable(peer);
      this.loop.schedule();
    });
    transport.onSnapshotStatus((peer, failed) => {
      if (this.stopped) return;
      this.raw.reportSnapshot(peer, failed);
      this.loop.schedule();
    });
    const s = this.raw.status();
    this.logger.log(
      `${this.options.name} starting at term ${s.term} with commit ${s.commit}, last index ${s.lastIndex}` +
        (applied > 0 ? `, state restored from the snapshot at ${applied}` : '') +
        `; members: ${members.join(', ')}`,
    );
    this.ticker = clock.every(tickMs, () => this.tick());
    // A single-node cluster has nobody to wait for: elect itself now rather than after a timeout.
    if (members.length === 1) this.raw.campaign();
    this.loop.schedule();
  }

  /**
   * Stops the node: no new requests, pending ones answered (outcome unknown for proposals), no further
   * turn of the loop once the save in flight (if any) completes. When it leads and `transferLeadership` is
   * set, first hands leadership to the most caught-up reachable peer, waiting at most two election timeouts.
   */
  async stop(options: { transferLeadership?: boolean } = {}): Promise<void> {
    if (this.stopping || !this.raw) return;
    this.stopping = true;
    if (options.transferLeadership && this.isLeader && this.options.members.length > 1) await this.handOver();
    this.ticker?.cancel();
    // Stop the loop from within the idle callback itself: the save's callback would otherwise go on to take
    // the next Ready before this function's continuation runs.
    await new Promise<void>((resolve) =>
      this.loop.whenIdle(() => {
        this.loop.stop();
        resolve();
      }),
    );
    this.stopped = true;
    this.snapshots.stop();
    this.failAll(new ShuttingDownError());
  }

  private handOver(): Promise<void> {
    return handOver({
      name: this.options.name,
      status: () => this.raw.status(),
      lastContact: this.lastContact,
      clock: this.ports.clock,
      electionTimeoutMs: this.options.electionTick * this.options.tickMs,
      logger: this.logger,
      peerName: (peer) => this.ports.transport.peerName(peer),
      transfer: (to) => {
        this.raw.transferLeadership(to);
        this.loop.schedule();
      },
      leading: () => this.isLeader && !this.stopped,
    });
  }

  /**
   * Proposes a command; resolves with its index and the state machine's result once applied here. Rejects
   * with NotLeaderError / NoLeaderError (nothing was proposed), ProposalRejectedError (refused),
   * ProposalLostError (definitely not applied), ProposalTimeoutError (outcome unknown).
   */
  propose(data: Uint8Array): Promise<Applied> {
    return new Promise((resolve, reject) => {
      try {
        this.submit(data, { resolve, reject });
      } catch (error) {
        reject(error as Error);
      }
    });
  }

  /** propose() with callbacks (the simulator): returns where the entry went; throws what propose() rejects with. */
  submit(data: Uint8Array, waiter: ProposalWaiter): { index: number; term: number } {
    this.assertServing();
    this.assertLeader();
    if (this.proposals.waiters >= this.maxPending) {
      this.metrics.proposal('rejected');
      throw new OverloadedError('write', this.maxPending);
    }
    let at: { index: number; term: number };
    try {
      at = this.raw.propose(data);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      this.metrics.proposal('rejected');
      this.assertLeader();
      throw new ProposalRejectedError(error.message);
    }
    this.proposals.track(at.index, at.term, this.ports.clock.now(), waiter);
    this.loop.schedule();
    return at;
  }

  /**
   * Resolves, with the read index, once this node's state machine reflects every write committed before the
   * call (ReadIndex: the leader confirms with a quorum that it still leads; this node then waits until it
   * has applied that index). Leader only unless `onFollower` (the core forwards the request to the leader).
   * Rejects with NotLeaderError / NoLeaderError, or ReadTimeoutError when a quorum cannot be reached in time.
   * Reads arriving together share one confirmation round.
   */
  readBarrier(options: { onFollower?: boolean } = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      try {
        this.read({ resolve, reject }, options);
      } catch (error) {
        reject(error as Error);
      }
    });
  }

  /** readBarrier() for callers that take callbacks. Throws what readBarrier() would reject with at once. */
  read(waiter: ReadWaiter, options: { onFollower?: boolean } = {}): void {
    this.assertServing();
    if (options.onFollower) {
      if (this.soft.lead === None) throw new NoLeaderError();
    } else {
      this.assertLeader();
    }
    if (this.reads.waiters >= this.maxPending) throw new OverloadedError('read', this.maxPending);
    this.reads.queue(waiter, this.ports.clock.now());
    this.loop.schedule();
  }

  /** Resolves when a leader is known (true) or after timeoutMs (whether one is known then). */
  waitForLeader(timeoutMs: number): Promise<boolean> {
    if (this.soft.lead !== None) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = this.ports.clock.after(timeoutMs, () => resolve(this.soft.lead !== None));
      this.leaderWaiters.push(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  get isLeader(): boolean {
    return this.soft.raftState === StateType.Leader;
  }

  /** The known leader's identity and name; lead is None when unknown. */
  leader(): { lead: NodeId; name?: string } {
    const lead = this.soft.lead;
    if (lead === None) return { lead };
    return { lead, name: lead === this.options.id ? this.options.name : this.ports.transport.peerName(lead) };
  }

  /** Set once the node stopped on an error it cannot go on from; readiness reports it. */
  get failure(): Error | undefined {
    return this.failed;
  }

  /** Index of the last entry applied to the state machine by this process. */
  get applied(): number {
    return this.appliedIndex;
  }

  status(): NodeStatus {
    return describeStatus(this.raw.status(), {
      name: this.options.name,
      applied: this.appliedIndex,
      storage: this.ports.storage.storage,
      leaderName: this.leader().name,
      now: this.ports.clock.now(),
      lastContact: this.lastContact,
      peerName: (peer) => this.ports.transport.peerName(peer),
    });
  }

  /** The core's own status: term, vote, commit, lead, state, last index, transferee, followers' progress. */
  raftStatus(): Status {
    return this.raw.status();
  }

  /**
   * Hands leadership to `to` (on a follower, the request is forwarded to the leader). It happens once `to`
   * has caught up; proposals are refused meanwhile.
   */
  transferLeadership(to: NodeId): void {
    this.assertServing();
    this.raw.transferLeadership(to);
    this.loop.schedule();
  }

  /** Starts an election now instead of waiting for the election timeout (no-op on the leader). */
  campaign(): void {
    this.assertServing();
    this.raw.campaign();
    this.loop.schedule();
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

  private leaderErrorOr(fallback: Error): Error {
    try {
      this.assertLeader();
      return fallback;
    } catch (error) {
      return error as Error;
    }
  }

  private receive(messages: Message[]): void {
    if (this.stopped) return;
    const now = this.ports.clock.now();
    for (const m of messages) {
      this.metrics.messageReceived(m.type);
      this.lastContact.set(m.from, now);
      try {
        this.raw.step(m);
      } catch (error) {
        if (!(error instanceof StepLocalMessageError)) {
          // Anything else (a storage read that found corruption, a broken invariant) means this node can no
          // longer be trusted to act: stop it rather than carry on with a half-applied step.
          this.fail(error as Error);
          return;
        }
        this.logger.debug(`dropped ${MessageType[m.type]} from ${m.from}: ${error.message}`);
      }
    }
    this.loop.schedule();
  }

  private tick(): void {
    if (this.stopped) return;
    this.raw.tick();
    const now = this.ports.clock.now();
    this.proposals.expire(now);
    this.reads.expire(now);
    this.loop.schedule();
  }

  private send(messages: Message[]): void {
    for (const m of messages) this.metrics.messageSent(m.type);
    this.ports.transport.send(messages);
  }

  private onSoftState(soft: SoftState): void {
    const previous = this.soft;
    this.soft = soft;
    const term = this.raw.status().term;
    if (soft.lead !== previous.lead) {
      this.metrics.leaderChanged();
      const name = soft.lead === None ? 'none' : (this.leader().name ?? soft.lead);
      this.logger.log(`${this.options.name} term ${term}: leader is ${name}`);
      if (soft.lead !== None) for (const wake of this.leaderWaiters.splice(0)) wake();
    }
    if (soft.raftState !== previous.raftState) {
      if (soft.raftState === StateType.Candidate) this.metrics.electionStarted();
      this.logger.log(`${this.options.name} term ${term}: ${previous.raftState} -> ${soft.raftState}`);
      // Confirmations a deposed leader asked for can never complete here; the client may retry elsewhere.
      if (previous.raftState === StateType.Leader) this.reads.abandonUnconfirmed(this.leaderErrorOr(new NoLeaderError()));
    }
  }

  private apply(entries: Entry[]): void {
    const now = this.ports.clock.now();
    for (const entry of entries) {
      const result = this.ports.stateMachine.apply(entry);
      this.appliedIndex = entry.index;
      this.proposals.applied(entry, result, now);
    }
    this.reads.applied(this.appliedIndex, now);
    this.snapshots.applied(this.appliedIndex, entries[entries.length - 1].term);
  }

  /** The leader's snapshot is durable here: the state machine takes its content. */
  private installed(snapshot: Snapshot, done: (error?: Error) => void): void {
    this.snapshots.install(snapshot, (error) => {
      if (!error) {
        this.appliedIndex = snapshot.metadata.index;
        this.reads.applied(this.appliedIndex, this.ports.clock.now());
      }
      done(error);
    });
  }

  private issueReads(): void {
    if (!this.reads.hasQueued) return;
    this.reads.issue(
      (ctx) => this.raw.readIndex(ctx),
      (error) => (error instanceof ProposalDroppedError ? this.leaderErrorOr(new NoLeaderError()) : (error as Error)),
    );
  }

  private onReadStates(states: ReadState[]): void {
    this.reads.onReadStates(states, this.appliedIndex, this.ports.clock.now());
  }

  private failAll(error: Error): void {
    this.proposals.failAll();
    this.reads.failAll(error);
  }

  private fail(error: Error): void {
    if (this.failed) return;
    this.failed = new Error(`this node stopped serving: ${error.message}`);
    this.logger.error(`${this.options.name}: ${this.failed.message}`);
    this.ticker?.cancel();
    this.loop.stop();
    this.stopped = true;
    this.snapshots?.stop();
    this.failAll(this.failed);
    this.options.onFatal(error);
  }
}

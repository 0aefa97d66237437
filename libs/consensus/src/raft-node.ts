import { StepLocalMessageError } from './core/errors';
import { RawNode, Status } from './core/raw-node';
import { Entry, EntryType, Message, MessageType, NodeId, None, Snapshot, SoftState, StateType } from './core/types';
import { NoLeaderError, ShuttingDownError } from './errors';
import { handOver } from './leadership-handover';
import { LeaderWatch } from './leader-watch';
import { Members } from './members';
import { ClusterIdentity, MembershipChange, MembersView, RemovedFromClusterError } from './membership';
import { describeStatus, NodeStatus, notStartedStatus } from './node-status';
import { NodeLogger, NodeMetrics, Timer } from './ports';
import { newRawNode, RaftNodeOptions, RaftNodePorts, silentLogger, uncountedMetrics } from './raft-node-options';
import { Applied, ProposalWaiter } from './proposal-tracker';
import { ReadWaiter } from './read-batcher';
import { promised, Requests } from './requests';
import { ReadyLoop } from './ready-loop';
import { Snapshotter } from './snapshotter';
import { StorageFreeze } from './storage-freeze';

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
  private appliedIndex = 0;
  private snapshots!: Snapshotter;
  private removed = false;
  /** The configuration the log starts from (options.members unless an identity says otherwise). */
  private initialVoters: NodeId[];
  private readonly directory: Members;
  private readonly requests: Requests;
  private readonly lastContact = new Map<NodeId, number>();
  private readonly watch: LeaderWatch;
  private readonly logger: NodeLogger;
  private readonly metrics: NodeMetrics;
  /** Set while the disk refuses writes (the node is frozen: see StorageFreeze). */
  protected readonly freeze: StorageFreeze;

  constructor(
    private readonly options: RaftNodeOptions,
    private readonly ports: RaftNodePorts,
  ) {
    this.logger = ports.logger ?? silentLogger;
    this.metrics = ports.metrics ?? uncountedMetrics;
    this.freeze = new StorageFreeze({ name: options.name, walDir: options.walDir, clock: ports.clock, logger: this.logger,
      onFreeze: (refusal) => this.requests.reads.failAll(refusal) });
    this.requests = new Requests({
      requestTimeoutMs: options.requestTimeoutMs,
      maxPending: options.maxPendingRequests ?? 10_000,
      clock: ports.clock,
      metrics: this.metrics,
      raw: () => this.raw,
      schedule: () => this.loop.schedule(),
      assertServing: () => this.assertServing(),
      assertLeader: () => this.watch.assertLeader(),
      hasLeader: () => this.watch.lead !== None,
      leaderErrorOr: (fallback) => this.watch.leaderErrorOr(fallback),
      refusal: (kind) => this.freeze.refusal(kind),
    });
    const { id, name } = options;
    this.watch = new LeaderWatch({ id, name, url: (member) => this.directory.url(member), clock: ports.clock, logger: this.logger, metrics: this.metrics });
    this.initialVoters = options.members ?? [];
    this.directory = new Members({
      self: options.id,
      confState: () => this.raw?.confState() ?? { voters: [] },
      applyConfChange: (cc) => this.raw.applyConfChange(cc),
      transport: ports.transport,
      logger: this.logger,
      onRemoved: () => this.onRemoved(),
    });
  }

  /**
   * Before start(): the initial voters and the members' addresses (production's bootstrap). A node not among
   * the initial voters joined later: it starts with no configuration and learns it from the leader's snapshot.
   */
  protected useIdentity(identity: ClusterIdentity): void {
    // (joinedAt: it joined, even under the NODE_ID of an initial voter removed since.)
    const initial = identity.joinedAt === undefined && identity.initialVoters.includes(identity.nodeId);
    this.initialVoters = initial ? identity.initialVoters : [];
    this.directory.useIdentity(identity);
  }

  /**
   * Restores the state machine (newest snapshot) and the core from storage, then starts ticking and listening.
   * Call once. `done(error?)` once started or failed (an error without `done` is fatal: onFatal).
   */
  start(done?: (error?: Error) => void): void {
    // stop() came first (a SIGTERM while the bootstrap resolved the cluster): the storage is closed next.
    if (this.stopping) return done?.(new ShuttingDownError());
    const { storage, stateMachine, clock } = this.ports;
    const { name, snapshotEntries, snapshotCatchUpEntries } = this.options;
    this.snapshots = new Snapshotter({ name, storage, stateMachine, clock, logger: this.logger, metrics: this.metrics,
      every: snapshotEntries ?? 10_000, catchUp: snapshotCatchUpEntries ?? 5_000, confState: () => this.directory.snapshotConfState() });
    this.snapshots.start(
      (applied) => this.boot(applied),
      (error) => {
        // Stopped meanwhile: whatever the restore said, the node is not started, and that is no fault.
        if (this.stopping) return done?.(new ShuttingDownError());
        if (!error) return done?.();
        this.logger.error(`${this.options.name}: ${error.message}`);
        if (done) done(error);
        else this.options.onFatal(error);
      },
    );
  }

  private boot(applied: number): void {
    if (this.stopping) return; // stopped during the restore
    const { tickMs, id } = this.options;
    const { storage, transport, clock } = this.ports;
    this.appliedIndex = applied;
    this.raw = newRawNode({ ...this.options, members: this.initialVoters }, storage.storage, applied, this.logger);
    this.directory.restored(storage.storage.snapshot().metadata.confState.addresses);
    this.loop = new ReadyLoop(
      this.raw,
      storage,
      clock,
      {
        beforeReady: () => this.requests.issueReads(),
        onSoftState: (soft) => this.onSoftState(soft),
        send: (messages) => this.send(messages),
        apply: (entries) => this.apply(entries),
        restore: (snapshot, done) => this.installed(snapshot, done),
        onReadStates: (states) => this.requests.onReadStates(states, this.appliedIndex),
        onStorageFull: (error) => this.freeze.full(error),
        onStorageRecovered: () => this.freeze.recovered(),
        fail: (error) => this.fail(error),
      },
      this.ports.observer,
    );
    const report = (tell: () => void) => {
      if (this.stopped) return;
      tell();
      this.loop.schedule();
    };
    transport.listen((messages) => this.receive(messages));
    transport.onUnreachable((peer) => report(() => this.raw.reportUnreachable(peer)));
    transport.onSnapshotStatus((peer, failed) => report(() => this.raw.reportSnapshot(peer, failed)));
    transport.onRemoved?.(() => this.onRemoved());
    const s = this.raw.status();
    this.logger.log(
      `${this.options.name} starting at term ${s.term} with commit ${s.commit}, last index ${s.lastIndex}` +
        (applied > 0 ? `, state restored from the snapshot at ${applied}` : '') +
        `; voters: ${this.raw.confState().voters.join(', ') || 'none yet (joining)'}`,
    );
    this.ticker = clock.every(tickMs, () => this.tick());
    // A single-node cluster has nobody to wait for: elect itself now rather than after a timeout.
    if (this.raw.confState().voters.join() === id) this.raw.campaign();
    this.loop.schedule();
  }

  /**
   * Stops the node: no new requests, pending ones answered (outcome unknown for proposals), no further
   * turn of the loop once the save in flight (if any) completes. When it leads and `transferLeadership` is
   * set, first hands leadership to the most caught-up reachable peer, waiting at most two election timeouts.
   */
  async stop(options: { transferLeadership?: boolean } = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // Not booted yet (start() and a restore in progress then boot nothing): no loop to wait for.
    if (this.raw) {
      // A frozen leader (full disk) could not send the handover's MsgTimeoutNow: its followers elect without it.
      if (options.transferLeadership && this.isLeader && !this.freeze.frozen && this.raw.confState().voters.length > 1) await this.handOver();
      this.ticker?.cancel();
      // Stop the loop from within the idle callback itself: the save's callback would otherwise go on to take
      // the next Ready before this function's continuation runs.
      await new Promise<void>((resolve) =>
        this.loop.whenIdle(() => {
          this.loop.stop();
          resolve();
        }),
      );
    }
    this.halt(new ShuttingDownError(), () => undefined);
  }

  private handOver(): Promise<void> {
    const { name, electionTick, tickMs } = this.options;
    return handOver({ name, clock: this.ports.clock, electionTimeoutMs: electionTick * tickMs, logger: this.logger, lastContact: this.lastContact,
      status: () => this.raw.status(),
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
    return promised((resolve, reject) => this.submit(data, { resolve, reject }));
  }

  /** propose() with callbacks (the simulator): returns where the entry went; throws what propose() rejects with. */
  submit(data: Uint8Array, waiter: ProposalWaiter): { index: number; term: number } {
    return this.requests.submit(data, waiter);
  }

  /**
   * Resolves, with the read index, once this node's state machine reflects every write committed before the
   * call (ReadIndex: the leader confirms with a quorum that it still leads; this node then waits until it
   * has applied that index). Leader only unless `onFollower` (the core forwards the request to the leader).
   * Rejects with NotLeaderError / NoLeaderError, or ReadTimeoutError when a quorum cannot be reached in time.
   * Reads arriving together share one confirmation round.
   */
  readBarrier(options: { onFollower?: boolean } = {}): Promise<number> {
    return promised((resolve, reject) => this.read({ resolve, reject }, options));
  }

  /** readBarrier() for callers that take callbacks. Throws what readBarrier() would reject with at once. */
  read(waiter: ReadWaiter, options: { onFollower?: boolean } = {}): void {
    this.requests.read(waiter, options);
  }

  /** Resolves when a leader is known (true) or after timeoutMs (whether one is known then). */
  waitForLeader(timeoutMs: number): Promise<boolean> {
    return this.watch.waitForLeader(timeoutMs);
  }

  get isLeader(): boolean {
    return this.watch.isLeader;
  }

  /** The known leader's identity (None when unknown), name and URL. */
  leader(): { lead: NodeId; name?: string; url?: string } {
    return this.watch.leader();
  }

  /**
   * Asks for a membership change (leader only): resolves once its entry is committed and applied here.
   * Rejects with MembershipChangeRefusedError when it cannot be made now (nothing proposed), and otherwise
   * as propose() does.
   */
  changeMembership(change: MembershipChange): Promise<{ index: number }> {
    return promised((resolve, reject) => {
      this.assertServing();
      this.watch.assertLeader();
      this.freeze.assertWritable();
      const now = this.ports.clock.now();
      const reachable = (id: NodeId) => now - (this.lastContact.get(id) ?? -Infinity) <= this.options.electionTick * this.options.tickMs;
      const cc = this.directory.plan(change, this.raw.status(), reachable);
      const at = this.directory.propose(cc, () => this.raw.proposeConfChange(cc), () => this.watch.assertLeader());
      this.requests.track(at, { resolve: ({ index }) => resolve({ index }), reject });
    });
  }

  /** The members as this node knows them (the leader adds each one's match index and last contact). */
  members(): MembersView {
    return this.directory.view(this.raftStatus(), this.lastContact, this.ports.clock.now());
  }

  /** Whether this node was removed from the cluster (it answers nothing but 410 from then on). */
  get isRemoved(): boolean {
    return this.removed;
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
    return describeStatus(this.raftStatus(), {
      name: this.options.name,
      applied: this.appliedIndex,
      storage: this.ports.storage.storage,
      leaderName: this.leader().name,
      now: this.ports.clock.now(),
      lastContact: this.lastContact,
      storageFull: this.freeze.status(),
    });
  }

  /** The core's own status: term, vote, commit, lead, state, last index, transferee, followers' progress. */
  raftStatus(): Status {
    return this.raw ? this.raw.status() : notStartedStatus(this.options.id, this.ports.storage.storage);
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
    if (this.removed) throw new RemovedFromClusterError();
    if (!this.raw) throw new NoLeaderError(); // still finding its cluster (production's bootstrap)
    if (this.failed) throw this.failed;
    if (this.stopping) throw new ShuttingDownError();
  }

  private receive(messages: Message[]): void {
    if (this.stopped || this.freeze.drop(messages.length)) return;
    const now = this.ports.clock.now();
    for (const m of messages) {
      this.metrics.messageReceived(m.type);
      this.lastContact.set(m.from, now);
      try {
        this.raw.step(m);
      } catch (error) {
        if (!(error instanceof StepLocalMessageError)) {
          // Anything else (corruption found reading the log, a broken invariant): stop rather than half-step.
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
    // Frozen (a full disk): no campaign from a node that cannot write its vote; requests still time out.
    if (!this.freeze.frozen) this.raw.tick();
    const now = this.ports.clock.now();
    this.requests.expire(now);
    this.loop.schedule();
  }

  private send(messages: Message[]): void {
    for (const m of messages) this.metrics.messageSent(m.type);
    this.ports.transport.send(messages);
  }

  private onSoftState(soft: SoftState): void {
    const previous = this.watch.update(soft, this.raw.status().term);
    // Confirmations a deposed leader asked for can never complete here; the client may retry elsewhere.
    if (previous.raftState === StateType.Leader && soft.raftState !== StateType.Leader) {
      this.requests.reads.abandonUnconfirmed(this.watch.leaderErrorOr(new NoLeaderError()));
    }
  }

  private apply(entries: Entry[]): void {
    const now = this.ports.clock.now();
    for (const entry of entries) {
      // A new member catches up from a snapshot (the core sends one to a joining node): have one to send.
      if (entry.type === EntryType.ConfChange && this.directory.apply(entry) && this.snapshots.index === 0) this.snapshots.due();
      const result = this.ports.stateMachine.apply(entry);
      this.appliedIndex = entry.index;
      this.requests.applied(entry, result, now);
    }
    this.requests.reads.applied(this.appliedIndex, now);
    this.snapshots.applied(this.appliedIndex, entries[entries.length - 1].term);
  }

  /** The leader's snapshot is durable here: the state machine takes its content. */
  private installed(snapshot: Snapshot, done: (error?: Error) => void): void {
    this.snapshots.install(snapshot, (error) => {
      if (!error) {
        this.appliedIndex = snapshot.metadata.index;
        this.directory.restored(this.ports.storage.storage.snapshot().metadata.confState.addresses);
        this.requests.reads.applied(this.appliedIndex, this.ports.clock.now());
      }
      done(error);
    });
  }

  /**
   * This node applied its own removal (or a peer said so): no more requests; it stops after two election
   * timeouts, meanwhile still answering its peers (whoever did not learn the removal's commit can still be
   * elected by the old configuration, commit it and move on), then RaftNodeOptions.onRemoved.
   */
  private onRemoved(): void {
    if (this.removed) return;
    this.removed = true;
    this.logger.warn(`${this.options.name} was removed from the cluster; it stops taking part shortly`);
    const grace = 2 * this.options.electionTick * this.options.tickMs;
    this.ports.clock.after(grace, () => this.halt(new RemovedFromClusterError(), () => this.options.onRemoved?.()));
  }

  private fail(error: Error): void {
    if (this.failed) return;
    this.failed = new Error(`this node stopped serving: ${error.message}`);
    this.logger.error(`${this.options.name}: ${this.failed.message}`);
    this.halt(this.failed, () => this.options.onFatal(error));
  }

  private halt(error: Error, then: () => void): void {
    this.ticker?.cancel();
    this.loop?.stop();
    this.stopped = true;
    this.snapshots?.stop();
    this.requests.failAll(error);
    then();
  }
}

import {
  Applied,
  Clock,
  Entry,
  HardState,
  isStorageFull,
  MembershipChange,
  MembershipChangeRefusedError,
  MemoryStorage,
  Message,
  MessageReceiver,
  MessageType,
  NodeId,
  NoLeaderError,
  NotLeaderError,
  OverloadedError,
  ProposalLostError,
  ProposalRejectedError,
  ProposalTimeoutError,
  RaftNode,
  RaftNodeOptions,
  RaftNodePorts,
  RaftStorage,
  Ready,
  RemovedFromClusterError,
  SaveCallback,
  ShuttingDownError,
  Snapshot,
  SnapshotMetadata,
  StateMachine,
  StateMachineView,
  StateType,
  Status,
  StorageFullError,
  Timer,
} from '@app/consensus';
import { EventQueue } from './event-queue';
import { entryIdent, InvariantChecker, InvariantViolation, ReadyHashes, SimConfig } from './invariants';
import { Network, NetworkConfig, RELIABLE } from './network';
import { Rng } from './rng';
import { decodeChunks, decodeState, encodeChunks, SimStateMachine } from './sim-state-machine';

/** Virtual time units (milliseconds of the node's clock) per tick. Delays and latencies are in the same units. */
export const TICK = 10;

export interface ClusterOptions {
  size: number;
  seed: number;
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxSizePerMsg?: number;
  maxEntriesPerMsg?: number;
  maxInflightMsgs?: number;
  maxUncommittedEntriesSize?: number;
  maxCommittedSizePerReady?: number;
  /** Range of fsync latency per save, in time units. Default [0, 3]. */
  persistDelay?: [number, number];
  net?: NetworkConfig;
  /** On a crash or a failed fsync during a save, a random prefix of its entries is durable (no hard state). */
  tornWrites?: boolean;
  /** Requests (proposals, reads) time out after this many ticks. Default 100. */
  requestTimeoutTicks?: number;
  /** The state machine of each incarnation (default: one that records each entry's identity). */
  stateMachine?: (id: NodeId) => StateMachine;
  /** Keep the last N trace lines, printed with a failure. 0 disables. */
  traceSize?: number;
  /**
   * Each node snapshots its state machine every this many applied entries and compacts its log after it
   * (RaftNodeOptions.snapshotEntries). Default 0: never, the log is kept whole.
   */
  snapshotEntries?: number;
  /** Entries kept behind the newest snapshot when compacting (RaftNodeOptions.snapshotCatchUpEntries). Default 0. */
  snapshotCatchUpEntries?: number;
  /** Range of the time a snapshot write or install takes, in time units. Default [1, 10]. */
  snapshotDelay?: [number, number];
  /** Probability that a snapshot write fails (the node keeps running and tries again later). Default 0. */
  snapshotWriteFailure?: number;
}

/** The error a simulated disk fault reports: the node stops, as the real one exits on a failed fsync. */
export class SimulatedDiskError extends Error {
  constructor(id: NodeId) {
    super(`simulated fsync failure on ${id} (EIO)`);
    this.name = 'SimulatedDiskError';
  }
}

/**
 * The RaftNode the simulator runs, given its identity as production's bootstrap gives it: the initial
 * members' addresses (`sim://<id>`), so that a follower names the leader's address as production's does (a
 * leader without a known address is "no leader"). A node added later learns the addresses from the leader.
 */
class SimRaftNode extends RaftNode {
  constructor(options: RaftNodeOptions, ports: RaftNodePorts) {
    super(options, ports);
    const members = options.members ?? [];
    this.useIdentity({ clusterId: 'sim', nodeId: options.id, initialVoters: members, addresses: Object.fromEntries(members.map((m) => [m, `sim://${m}`])) });
  }
}

/** The node refused a request (nothing was proposed or read); anything else thrown is a failure of the run. */
function isRefusal(error: unknown): boolean {
  return (
    // A frozen node's disk is full: it refuses writes and the reads it would serve itself.
    isStorageFull(error) ||
    error instanceof NotLeaderError ||
    error instanceof NoLeaderError ||
    error instanceof ProposalRejectedError ||
    error instanceof ShuttingDownError ||
    error instanceof RemovedFromClusterError
  );
}

/** Why a membership change the node accepted did not complete: leadership lost, entry lost, node stopped. */
function isChangeFailure(error: unknown): boolean {
  return (
    isRefusal(error) ||
    error instanceof ProposalLostError ||
    error instanceof ProposalTimeoutError ||
    error instanceof OverloadedError ||
    // A node stopped by a disk fault answers what was pending with its failure.
    (error instanceof Error && error.message.startsWith('this node stopped serving'))
  );
}

/** A membership change asked of a leader (Cluster.changeMembership), and what came of it. */
export interface MembershipRequest {
  leader: NodeId;
  change: MembershipChange;
  /** Virtual time it was asked. */
  at: number;
  /**
   * Unset until the node answered: `committed` (its entry is committed and applied on the leader),
   * `refused` (MembershipChangeRefusedError: nothing was proposed), `failed` (not leader, lost, timed out,
   * shutting down: the entry may still commit).
   */
  outcome?: 'committed' | 'refused' | 'failed';
  /** The ConfChange entry's index, once committed. */
  index?: number;
  error?: Error;
}

/** A save handed to the simulated disk and not completed yet. */
interface PendingSave {
  hardState: HardState | undefined;
  entries: Entry[];
  hashes: ReadyHashes;
  done: SaveCallback;
  /** The fsync will fail (a disk fault was injected before it completed). */
  fails: boolean;
}

/** A snapshot write (RaftStorage.createSnapshot) in progress on the simulated disk. */
interface PendingSnapshotWrite {
  metadata: SnapshotMetadata;
  view: StateMachineView;
  done: SaveCallback;
  /** The write will fail (an injected fault): nothing changes, the node tries again later. */
  fails: boolean;
}

/** A snapshot from the leader being installed (RaftStorage.installSnapshot) on the simulated disk. */
interface PendingInstall {
  snapshot: Snapshot;
  done: SaveCallback;
  /** The write will fail as a failed fsync does: the node stops. */
  fails: boolean;
}

/** One MsgSnap on the wire: it gets exactly one outcome, reported to the incarnation that sent it. */
interface SnapshotTransfer {
  from: SimNode;
  incarnation: number;
  to: NodeId;
  /** Copies (a duplicated message has two) whose fate is not known yet. */
  copies: number;
  reported: boolean;
}

/** What the cluster counts of snapshots and compaction, over all nodes and incarnations. */
export interface SnapshotStats {
  /** Snapshot writes that completed (the storage's newest snapshot moved). */
  taken: number;
  /** Snapshot writes refused: not newer than the stored snapshot (an install landed meanwhile). */
  refused: number;
  /** Snapshot writes failed by an injected fault. */
  failedWrites: number;
  /** compact() calls that released entries. */
  compactions: number;
  /** MsgSnap sent, and their outcomes as reported to the sender. */
  sent: number;
  delivered: number;
  failed: number;
  /** Snapshots from the leader made durable on a follower. */
  installs: number;
  /** State machines restored from a snapshot: at install, and at restart. */
  restoredAtInstall: number;
  restoredAtStart: number;
  /** Crashes while a snapshot write, or an install, was in progress on the crashed node. */
  crashesDuringWrite: number;
  crashesDuringInstall: number;
}

/** What the cluster counts of full disks (SimNode.diskFull), over all nodes. */
export interface DiskFullStats {
  /** Windows during which a node's disk was full (fillDisk), and how many of them ended. */
  windows: number;
  freed: number;
  /** Saves, installs and snapshot writes refused with StorageFullError (nothing kept). */
  refusedSaves: number;
  refusedInstalls: number;
  refusedSnapshotWrites: number;
  /** Saves that went through on a node whose previous save had been refused: the node resumed. */
  resumed: number;
  /** Requests (proposals, reads) the nodes refused with StorageFullError. */
  refusedRequests: number;
}

/** A linearizable read issued through the node's read barrier, and what came of it. */
export interface ReadRequest {
  node: NodeId;
  incarnation: number;
  /** Highest index reported committed anywhere when the read was issued: the read index must cover it. */
  minIndex: number;
  issuedAt: number;
  /** The read index, once the node answered the read (it had applied that index then). */
  index?: number;
}

/**
 * One simulated server: durable storage that survives crashes, and a RaftNode (the production loop) that
 * does not. Everything the node does reaches the world through ports this class binds to the simulator.
 */
export class SimNode {
  readonly storage = new MemoryStorage();
  node: RaftNode | undefined;
  incarnation = 0;
  /** Index up to which this incarnation's state machine applied. */
  smApplied = 0;
  /** The tester's record of what this server ever applied (kept across crashes, like the lab's logs). */
  readonly applied: number[] = [];
  /** The save in flight on the simulated disk (at most one: the loop waits for each). */
  pendingSave: PendingSave | undefined;
  /** The next fsync fails (an injected disk fault). */
  diskFault = false;
  /**
   * The disk is full (fillDisk): saves, installs and snapshot writes that complete meanwhile are refused
   * with StorageFullError and keep nothing. A property of the server: it outlives a crash. The token names
   * the window, so that only its own end frees the disk.
   */
  diskFull: object | undefined;
  /** The last save completed on this server was refused for a full disk (its loop is holding it). */
  lastSaveRefused = false;
  /** Snapshot writes in progress on the simulated disk (lost in a crash). */
  pendingSnapshots: PendingSnapshotWrite[] = [];
  /** The install in progress (at most one: the loop waits for it). */
  pendingInstall: PendingInstall | undefined;
  /** Snapshots from the leader installed on this server (all incarnations). */
  installs = 0;
  /** Hashes of the last Ready's entries, chained onto the durable log (for the checker at persist time). */
  readyHashes: ReadyHashes = { first: 0, hashes: [] };
  receiver: MessageReceiver | undefined;
  snapshotStatus: ((peer: NodeId, failed: boolean) => void) | undefined;
  /** This incarnation's state machine. */
  sm: SimStateMachine | undefined;
  /** Inside RaftNode.start() (which restores the state machine from the newest snapshot synchronously here). */
  starting = false;
  /** The node crashes in the middle of its next snapshot write or install (an armed fault). */
  crashDuring: 'snapshot-write' | 'install' | undefined;
  /** The crash that armed fault scheduled (settle() calls it off). */
  crashScheduled: object | undefined;

  /** It applied its own removal and stopped for good (RaftNodeOptions.onRemoved): it never restarts. */
  removed = false;

  /**
   * @param initialMembers the voters its log starts from: the cluster's bootstrap voters, or none for a node
   *   added later (a joining node, which learns the configuration from the leader's snapshot).
   */
  constructor(
    readonly id: NodeId,
    readonly tickPhase: number,
    readonly initialMembers: readonly NodeId[],
  ) {}

  get alive(): boolean {
    return this.node !== undefined;
  }

  /** A save is waiting for its fsync. */
  get saving(): boolean {
    return this.pendingSave !== undefined;
  }
}

type SimEvent =
  | { kind: 'call'; node: SimNode; incarnation: number; fn: () => void; timer?: SimTimer }
  | { kind: 'deliver'; msg: Message; transfer?: SnapshotTransfer }
  | { kind: 'persist'; node: SimNode; incarnation: number }
  | { kind: 'snapshot-write'; node: SimNode; incarnation: number; write: PendingSnapshotWrite }
  | { kind: 'install'; node: SimNode; incarnation: number }
  | { kind: 'snapshot-status'; transfer: SnapshotTransfer; failed: boolean }
  | { kind: 'crash'; node: SimNode; incarnation: number; token: object }
  | { kind: 'disk-space'; node: SimNode; token: object };

interface SimTimer {
  cancelled: boolean;
  /** Repeat period, for every(). */
  period?: number;
}

export interface MessageStats {
  sent: number;
  delivered: number;
  byType: Map<MessageType, number>;
}

/**
 * A deterministic cluster of production RaftNodes: N nodes, a virtual clock, one event queue, a network
 * that drops, duplicates, delays, reorders and partitions, disks whose fsyncs take time, fail or tear, and
 * nodes that crash and restart from their durable storage. Everything random comes from one seed, so a run
 * is a pure function of it. An InvariantChecker watches every step through the ports and the observer.
 */
export class Cluster {
  /** Every node the cluster ever had, in order of creation: the bootstrap ones, then those addNode() made. */
  readonly ids: NodeId[];
  readonly nodes = new Map<NodeId, SimNode>();
  readonly net: Network;
  readonly checker: InvariantChecker;
  readonly rng: Rng;
  readonly stats: MessageStats = { sent: 0, delivered: 0, byType: new Map() };
  readonly snapshotStats: SnapshotStats = {
    taken: 0,
    refused: 0,
    failedWrites: 0,
    compactions: 0,
    sent: 0,
    delivered: 0,
    failed: 0,
    installs: 0,
    restoredAtInstall: 0,
    restoredAtStart: 0,
    crashesDuringWrite: 0,
    crashesDuringInstall: 0,
  };
  readonly diskStats: DiskFullStats = { windows: 0, freed: 0, refusedSaves: 0, refusedInstalls: 0, refusedSnapshotWrites: 0, resumed: 0, refusedRequests: 0 };
  readonly reads: ReadRequest[] = [];
  /** Proposals acknowledged to their client: index and ident. */
  readonly acked: { index: number; ident: number }[] = [];
  /** Every membership change asked (changeMembership), in order. */
  readonly membershipRequests: MembershipRequest[] = [];
  /** Requests made since answers() last let their answers in. */
  private unanswered = 0;
  /** Committed answers already checked against the committed configurations. */
  private readonly verified = new WeakSet<MembershipRequest>();
  /** An answer to a membership change that no node should give (answers() throws it). */
  private unexpected: Error | undefined;
  /** Drops the messages for which it returns true (targeted faults in scenario tests). */
  dropIf: ((m: Message) => boolean) | undefined;
  /** The next snapshot write or install on any node crashes that node (crashDuringNext). */
  private crashDuringAny: 'snapshot-write' | 'install' | undefined;
  now = 0;
  private readonly opts: Required<Omit<ClusterOptions, 'net' | 'stateMachine'>> & Pick<ClusterOptions, 'stateMachine'>;
  private readonly queue = new EventQueue<SimEvent>();
  private nextIdent = 0;
  private readonly trace: string[] = [];

  constructor(options: ClusterOptions) {
    this.opts = {
      electionTick: 10,
      heartbeatTick: 1,
      preVote: true,
      checkQuorum: true,
      maxSizePerMsg: 1024 * 1024,
      maxEntriesPerMsg: 4096,
      maxInflightMsgs: 256,
      maxUncommittedEntriesSize: 0,
      maxCommittedSizePerReady: Infinity,
      persistDelay: [0, 3],
      tornWrites: false,
      requestTimeoutTicks: 100,
      traceSize: 0,
      snapshotEntries: 0,
      snapshotCatchUpEntries: 0,
      snapshotDelay: [1, 10],
      snapshotWriteFailure: 0,
      ...options,
    };
    this.rng = new Rng(options.seed);
    this.net = new Network(this.rng.fork(), options.net ?? RELIABLE);
    this.ids = Array.from({ length: options.size }, (_, i) => `n${i + 1}`);
    this.checker = new InvariantChecker(this.ids);
    for (const id of this.ids) this.nodes.set(id, new SimNode(id, this.rng.int(TICK), [...this.ids]));
    for (const id of this.ids) this.restart(id);
  }

  get seed(): number {
    return this.opts.seed;
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** The running RaftNode of `id` (throws when it is down). */
  raft(id: NodeId): RaftNode {
    const r = this.node(id).node;
    if (!r) throw new Error(`${id} is down`);
    return r;
  }

  private log(line: string): void {
    if (this.opts.traceSize === 0) return;
    this.trace.push(`t=${this.now} ${line}`);
    if (this.trace.length > this.opts.traceSize) this.trace.shift();
  }

  /** The nodes' own log lines, into the trace (warnings and errors marked). */
  private readonly traceLogger = {
    debug: () => undefined,
    log: (m: string) => this.log(m),
    warn: (m: string) => this.log(`WARN ${m}`),
    error: (m: string) => this.log(`ERROR ${m}`),
  };

  traceLines(): string[] {
    return [...this.trace];
  }

  // -------------------------------------------------------------------------------------------------
  // Time
  // -------------------------------------------------------------------------------------------------

  /** Runs every event up to now + duration (time units). */
  runFor(duration: number): void {
    const end = this.now + duration;
    let sameTime = 0;
    for (;;) {
      const time = this.queue.peekTime();
      if (time > end) break;
      const ev = this.queue.pop()!;
      sameTime = time === this.now ? sameTime + 1 : 0;
      // Virtual time must move: a node that always has another Ready (a livelock) would spin forever.
      if (sameTime > 100_000) throw new InvariantViolation(`livelock: 100000 events at t=${time} without time moving`);
      this.now = time;
      this.checker.now = time;
      this.handle(ev);
    }
    this.now = end;
    this.checker.now = end;
  }

  /**
   * runFor() for runs with promise-based clients: after every event, lets the promise callbacks it settled
   * run (a macrotask turn drains them all) before the next event, so a client sees each answer at the
   * virtual time it was given. Still deterministic: nothing else runs in between.
   */
  async runForAsync(duration: number): Promise<void> {
    const end = this.now + duration;
    for (;;) {
      const time = this.queue.peekTime();
      if (time > end) break;
      const ev = this.queue.pop()!;
      this.now = time;
      this.checker.now = time;
      this.handle(ev);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.now = end;
    this.checker.now = end;
  }

  runTicks(ticks: number): void {
    this.runFor(ticks * TICK);
  }

  /** Runs until pred() holds (checked every tick) or maxTicks pass; returns whether it held. */
  runUntil(pred: () => boolean, maxTicks: number): boolean {
    for (let i = 0; i < maxTicks; i++) {
      if (pred()) return true;
      this.runFor(TICK);
    }
    return pred();
  }

  private handle(ev: SimEvent): void {
    switch (ev.kind) {
      case 'call': {
        const t = ev.timer;
        if (ev.node.incarnation !== ev.incarnation || t?.cancelled) return;
        if (t?.period !== undefined) this.queue.push(this.now + t.period, ev);
        ev.fn();
        return;
      }
      case 'deliver': {
        const m = ev.msg;
        const n = this.nodes.get(m.to);
        const t = ev.transfer;
        if (t) t.copies--;
        // A member with no server behind it (a scenario that added an id without addNode) is unreachable.
        if (!n?.node || !n.receiver || !this.net.connected(m.from, m.to)) {
          if (t && t.copies === 0) this.reportSnapshot(t, true);
          return;
        }
        this.stats.delivered++;
        n.receiver([m]);
        // The whole snapshot reached the peer (it travels inside the message).
        if (t) this.reportSnapshot(t, false);
        return;
      }
      case 'persist':
        if (ev.node.incarnation === ev.incarnation) this.completeSave(ev.node);
        return;
      case 'snapshot-write':
        if (ev.node.incarnation === ev.incarnation) this.completeSnapshotWrite(ev.node, ev.write);
        return;
      case 'install':
        if (ev.node.incarnation === ev.incarnation) this.completeInstall(ev.node);
        return;
      case 'snapshot-status':
        this.reportSnapshot(ev.transfer, ev.failed);
        return;
      case 'crash':
        if (ev.node.incarnation === ev.incarnation && ev.node.crashScheduled === ev.token) this.crash(ev.node.id);
        return;
      case 'disk-space':
        if (ev.node.diskFull === ev.token) this.freeDisk(ev.node.id);
        return;
    }
  }

  // -------------------------------------------------------------------------------------------------
  // The ports of one incarnation
  // -------------------------------------------------------------------------------------------------

  private clockFor(n: SimNode, incarnation: number): Clock {
    const at = (time: number, fn: () => void, period?: number): Timer => {
      const timer: SimTimer = { cancelled: false, period };
      this.queue.push(time, { kind: 'call', node: n, incarnation, fn, timer });
      return { cancel: () => (timer.cancelled = true) };
    };
    return {
      now: () => this.now,
      // Each node's ticks have their own phase, as real nodes' timers do.
      every: (ms, fn) => at(this.now + ms - (n.tickPhase % ms), fn, ms),
      after: (ms, fn) => at(this.now + ms, fn),
      defer: (fn) => this.queue.push(this.now, { kind: 'call', node: n, incarnation, fn }),
    };
  }

  private storageFor(n: SimNode, incarnation: number): RaftStorage {
    return {
      storage: n.storage,
      meta: undefined,
      setMeta: () => Promise.resolve(),
      save: (hardState, entries, done) => {
        if (n.pendingSave) throw new InvariantViolation(`${n.id}: a second save while one is in flight`);
        n.pendingSave = { hardState, entries, hashes: n.readyHashes, done, fails: n.diskFault };
        n.diskFault = false;
        const [lo, hi] = this.opts.persistDelay;
        this.queue.push(this.now + this.rng.range(lo, hi), { kind: 'persist', node: n, incarnation });
      },
      createSnapshot: (metadata, view, done) => {
        const write: PendingSnapshotWrite = { metadata, view, done, fails: false };
        if (this.opts.snapshotWriteFailure > 0) write.fails = this.rng.chance(this.opts.snapshotWriteFailure);
        n.pendingSnapshots.push(write);
        const [lo, hi] = this.opts.snapshotDelay;
        const delay = this.rng.range(lo, hi);
        this.queue.push(this.now + delay, { kind: 'snapshot-write', node: n, incarnation, write });
        if (n.crashDuring === 'snapshot-write' || this.crashDuringAny === 'snapshot-write') this.crashWithin(n, incarnation, delay);
      },
      compact: (index) => this.compact(n, index),
      installSnapshot: (snapshot, done) => {
        if (n.pendingInstall) throw new InvariantViolation(`${n.id}: a second install while one is in flight`);
        if (n.pendingSave) throw new InvariantViolation(`${n.id}: an install while a save is in flight`);
        // A disk fault armed for the next fsync hits the install's: the node stops, nothing installed.
        n.pendingInstall = { snapshot, done, fails: n.diskFault };
        n.diskFault = false;
        this.log(`${n.id} installing snapshot ${snapshot.metadata.index}@${snapshot.metadata.term}`);
        const [lo, hi] = this.opts.snapshotDelay;
        const delay = this.rng.range(lo, hi);
        this.queue.push(this.now + delay, { kind: 'install', node: n, incarnation });
        if (n.crashDuring === 'install' || this.crashDuringAny === 'install') this.crashWithin(n, incarnation, delay);
      },
      snapshotContent: () => {
        const snap = n.storage.snapshot();
        if (snap.metadata.index === 0) throw new Error(`${n.id}: no snapshot to restore from`);
        return decodeChunks(snap.data);
      },
    };
  }

  /** The armed crash: at a random time until a write started now completes (`delay` from now). */
  private crashWithin(n: SimNode, incarnation: number, delay: number): void {
    n.crashDuring = undefined;
    this.crashDuringAny = undefined;
    const token = {};
    n.crashScheduled = token;
    // At `delay` itself the write completes first (it was queued first): a crash right after an install and
    // before the save of the Ready's hard state, which the restart must tolerate.
    this.queue.push(this.now + this.rng.int(delay + 1), { kind: 'crash', node: n, incarnation, token });
  }

  /**
   * A snapshot write completes: the view is read now (the node applied more meanwhile, so a view that is
   * not point-in-time shows), and the snapshot becomes the storage's newest unless one at or above its
   * index is there already (an install landed meanwhile).
   */
  private completeSnapshotWrite(n: SimNode, w: PendingSnapshotWrite): void {
    n.pendingSnapshots = n.pendingSnapshots.filter((p) => p !== w);
    const { index, term, confState } = w.metadata;
    if (n.diskFull) {
      this.diskStats.refusedSnapshotWrites++;
      this.log(`${n.id} snapshot write at ${index} refused: disk full`);
      w.done(this.diskFullError(n));
      return;
    }
    if (w.fails) {
      this.snapshotStats.failedWrites++;
      this.log(`${n.id} snapshot write at ${index} failed`);
      w.done(new Error(`simulated snapshot write failure on ${n.id} (ENOSPC)`));
      return;
    }
    const chunks = [...w.view.chunks()];
    const current = n.storage.snapshot().metadata.index;
    if (index <= current) {
      this.snapshotStats.refused++;
      this.log(`${n.id} snapshot write at ${index} refused (stored snapshot ${current})`);
      w.done(new Error(`snapshot at ${index} is not newer than the stored snapshot at ${current}`));
      return;
    }
    this.checker.onSnapshotWritten(n.id, w.metadata, decodeState(chunks[0]));
    const stored = n.storage.createSnapshot(index, confState, encodeChunks(chunks));
    if (stored.metadata.term !== term) {
      throw new InvariantViolation(`${n.id}: snapshot at ${index} says term ${term}, the log has ${stored.metadata.term}`);
    }
    this.snapshotStats.taken++;
    this.log(`${n.id} snapshot taken at ${index}@${term}`);
    w.done();
  }

  /** RaftStorage.compact: at once (best effort: an index the log already starts after is a no-op). */
  private compact(n: SimNode, index: number): void {
    this.checker.onCompact(n.id, index);
    if (index < n.storage.firstIndex()) return;
    n.storage.compact(index);
    this.snapshotStats.compactions++;
    this.log(`${n.id} compacted to ${index}`);
  }

  /** The install's write completes: the snapshot is the storage's and the log restarts after it. */
  private completeInstall(n: SimNode): void {
    const p = n.pendingInstall;
    if (!p) return;
    n.pendingInstall = undefined;
    if (p.fails) {
      this.log(`${n.id} install failed (disk fault)`);
      p.done(new SimulatedDiskError(n.id));
      return;
    }
    if (n.diskFull) {
      this.diskStats.refusedInstalls++;
      this.log(`${n.id} install of ${p.snapshot.metadata.index} refused: disk full`);
      p.done(this.diskFullError(n));
      return;
    }
    const meta = p.snapshot.metadata;
    this.checker.onInstall(n.id, meta, decodeState(decodeChunks(p.snapshot.data)[0]));
    try {
      n.storage.applySnapshot(p.snapshot);
    } catch (error) {
      throw new InvariantViolation(`${n.id}: installing snapshot ${meta.index}: ${(error as Error).message}`);
    }
    this.snapshotStats.installs++;
    n.installs++;
    this.log(`${n.id} installed snapshot ${meta.index}@${meta.term}`);
    p.done();
  }

  /** The one outcome of a MsgSnap, to the incarnation that sent it (a crashed sender hears nothing). */
  private reportSnapshot(t: SnapshotTransfer, failed: boolean): void {
    if (t.reported) return;
    t.reported = true;
    if (failed) this.snapshotStats.failed++;
    else this.snapshotStats.delivered++;
    if (t.from.incarnation === t.incarnation) t.from.snapshotStatus?.(t.to, failed);
  }

  /** The fsync of the node's pending save completes: its data is durable (or, on a disk fault, torn). */
  private completeSave(n: SimNode): void {
    const p = n.pendingSave;
    if (!p) return;
    n.pendingSave = undefined;
    if (p.fails) {
      this.persistTorn(n, p);
      this.log(`${n.id} fsync failed`);
      p.done(new SimulatedDiskError(n.id));
      return;
    }
    if (n.diskFull) {
      // RaftStorage.save's contract for a full disk: nothing of the save is kept, the storage stays usable.
      this.diskStats.refusedSaves++;
      if (!n.lastSaveRefused) this.log(`${n.id} save refused: disk full (the node freezes and retries)`);
      n.lastSaveRefused = true;
      p.done(this.diskFullError(n));
      return;
    }
    if (n.lastSaveRefused) {
      this.diskStats.resumed++;
      this.log(`${n.id} save went through after refusals: the node resumes`);
      n.lastSaveRefused = false;
    }
    if (p.hardState) n.storage.setHardState(p.hardState);
    if (p.entries.length > 0) {
      n.storage.append(p.entries);
      this.checker.onPersist(n.id, p.entries, p.hashes, p.entries.length);
      // A node holds entries only of terms it has reached: a completed save leaves the durable term at or
      // above its entries' (else a restart could vote again in a term it already acted in).
      const term = n.storage.initialState().hardState.term;
      const top = p.entries[p.entries.length - 1].term;
      if (term < top) throw new InvariantViolation(`${n.id}: saved entries of term ${top} with a durable term of ${term}`);
    }
    p.done();
  }

  /** With torn writes on, a random prefix of an unfinished save's entries reached the disk. */
  private persistTorn(n: SimNode, p: PendingSave): void {
    if (!this.opts.tornWrites || p.entries.length === 0) return;
    const k = this.rng.int(p.entries.length);
    if (k === 0) return;
    n.storage.append(p.entries.slice(0, k));
    this.checker.onPersist(n.id, p.entries, p.hashes, k);
  }

  private transportFor(n: SimNode, incarnation: number) {
    return {
      listen: (receiver: MessageReceiver) => (n.receiver = receiver),
      send: (messages: Message[]) => {
        if (n.incarnation !== incarnation) return;
        for (const m of messages) this.send(m, n, incarnation);
      },
      onUnreachable: () => {},
      setPeers: () => {},
      onSnapshotStatus: (callback: (peer: NodeId, failed: boolean) => void) => {
        if (n.incarnation === incarnation) n.snapshotStatus = callback;
      },
    };
  }

  private stateMachineFor(n: SimNode): StateMachine {
    const sm = new SimStateMachine(
      {
        onApply: (e: Entry) => {
          this.checker.onApply(n.id, e);
          n.smApplied = e.index;
          n.applied[e.index] = entryIdent(e);
        },
        onRestore: (state) => {
          // The checker verifies the restored state against the committed entries 1..index.
          this.checker.onRestore(n.id, state);
          if (n.starting) this.snapshotStats.restoredAtStart++;
          else this.snapshotStats.restoredAtInstall++;
          n.smApplied = state.index;
          // The server holds those entries' effects: record them as applied (the lab's nCommitted counts them).
          for (let i = 1; i <= state.index; i++) if (n.applied[i] === undefined) n.applied[i] = this.checker.appliedIdentAt(i)!;
          this.log(`${n.id} state machine restored at ${state.index}`);
        },
      },
      this.opts.stateMachine?.(n.id),
    );
    n.sm = sm;
    return sm;
  }

  private onReady(n: SimNode, rd: Ready): void {
    if (
      !rd.softState &&
      !rd.hardState &&
      rd.entries.length === 0 &&
      rd.committedEntries.length === 0 &&
      rd.messages.length === 0 &&
      rd.readStates.length === 0 &&
      !rd.snapshot
    ) {
      throw new InvariantViolation(`${n.id}: hasReady() was true but the Ready is empty (at t=${this.now})`);
    }
    n.readyHashes = this.checker.onReady(n.id, rd);
    if (this.opts.traceSize > 0 && (rd.softState || rd.hardState || rd.entries.length > 0)) {
      const last = rd.entries[rd.entries.length - 1];
      const ents = last ? ` entries ${rd.entries[0].index}..${last.index}@${last.term}` : '';
      this.log(`${n.id} ready ${rd.softState ? rd.softState.raftState : ''} ${rd.hardState ? JSON.stringify(rd.hardState) : ''}${ents}`);
    }
  }

  private send(m: Message, from: SimNode, incarnation: number): void {
    this.stats.sent++;
    this.stats.byType.set(m.type, (this.stats.byType.get(m.type) ?? 0) + 1);
    this.checker.onSend(m);
    // Messages are plain data shared with the receiver: freeze them so that a core mutating its input
    // (or an entry it shares with another node) fails loudly.
    Object.freeze(m);
    if (m.entries) {
      Object.freeze(m.entries);
      for (const e of m.entries) if (!Object.isFrozen(e)) Object.freeze(e);
    }
    let transfer: SnapshotTransfer | undefined;
    if (m.snapshot) {
      // The snapshot is the sender's stored one, shared with the receiver's storage once installed.
      Object.freeze(m.snapshot);
      Object.freeze(m.snapshot.metadata);
      Object.freeze(m.snapshot.metadata.confState);
      this.snapshotStats.sent++;
      transfer = { from, incarnation, to: m.to, copies: 0, reported: false };
      this.log(`${m.from} sends snapshot ${m.snapshot.metadata.index}@${m.snapshot.metadata.term} to ${m.to}`);
    }
    const times = !this.net.connected(m.from, m.to) || (this.dropIf && this.dropIf(m)) ? [] : this.net.fate(m.from, m.to, this.now);
    if (transfer) {
      transfer.copies = times.length;
      // A transfer that went nowhere fails, as a real one does after its connection fails, not inside send().
      if (times.length === 0) this.queue.push(this.now + 1, { kind: 'snapshot-status', transfer, failed: true });
    }
    for (const at of times) this.queue.push(at, { kind: 'deliver', msg: m, transfer });
  }

  /**
   * Delivers a copy of a message sent earlier, now (a scenario replays an old MsgSnap this way). It goes
   * through the network's connectivity check like any delivery; it gets no snapshot outcome of its own.
   */
  deliverLate(m: Message): void {
    this.queue.push(this.now, { kind: 'deliver', msg: m });
  }

  // -------------------------------------------------------------------------------------------------
  // Faults
  // -------------------------------------------------------------------------------------------------

  /** The node stops; only its durable storage remains (plus a torn prefix of a save in flight). */
  crash(id: NodeId): void {
    const n = this.node(id);
    if (!n.node) return;
    if (n.pendingSave) this.persistTorn(n, n.pendingSave);
    // A snapshot write or an install in progress is lost whole: nothing of it is durable.
    if (n.pendingSnapshots.length > 0) this.snapshotStats.crashesDuringWrite++;
    if (n.pendingInstall) this.snapshotStats.crashesDuringInstall++;
    const during = `${n.pendingSnapshots.length > 0 ? ' during a snapshot write' : ''}${n.pendingInstall ? ' during an install' : ''}`;
    this.log(`${id} crash${during}`);
    this.halt(n);
  }

  private halt(n: SimNode): void {
    n.node = undefined;
    n.receiver = undefined;
    n.snapshotStatus = undefined;
    n.sm = undefined;
    n.pendingSave = undefined;
    n.pendingSnapshots = [];
    n.pendingInstall = undefined;
    n.crashDuring = undefined;
    n.diskFault = false;
    n.lastSaveRefused = false;
    n.incarnation++;
    n.smApplied = 0;
    this.checker.onCrash(n.id);
  }

  /**
   * A node crashes in the middle of its next snapshot write (`snapshot-write`) or its next install of a
   * leader's snapshot (`install`), whenever that comes: the write is lost whole. `id` undefined: the next
   * such write on any node. Cleared by that node's crash, and by settle().
   */
  crashDuringNext(what: 'snapshot-write' | 'install', id?: NodeId): void {
    if (id === undefined) {
      this.log(`armed: the next ${what} crashes its node`);
      this.crashDuringAny = what;
      return;
    }
    const n = this.node(id);
    if (!n.node) return;
    this.log(`${id} armed to crash during its next ${what}`);
    n.crashDuring = what;
  }

  /**
   * The disk of `id` fills up: from now on its saves, installs and snapshot writes are refused with
   * StorageFullError (nothing kept) until freeDisk(), or for `ticks` ticks when given. The node freezes and
   * retries; it is not stopped. It outlives crashes: a node restarted on a full disk freezes at its first save.
   */
  fillDisk(id: NodeId, ticks?: number): void {
    const n = this.node(id);
    if (n.removed) return;
    const token = {};
    if (!n.diskFull) this.diskStats.windows++;
    n.diskFull = token;
    this.log(`${id} disk full${ticks === undefined ? '' : ` for ${ticks} ticks`}`);
    if (ticks !== undefined) this.queue.push(this.now + ticks * TICK, { kind: 'disk-space', node: n, token });
  }

  /** Space returns on the disk of `id`: the node's next retry goes through. */
  freeDisk(id: NodeId): void {
    const n = this.node(id);
    if (!n.diskFull) return;
    n.diskFull = undefined;
    this.diskStats.freed++;
    this.log(`${id} disk has space again`);
  }

  private diskFullError(n: SimNode): StorageFullError {
    return new StorageFullError(`simulated ENOSPC on ${n.id}: no space left on device`, 'ENOSPC');
  }

  /** The next fsync of `id` fails: the node stops as the real one does (and a supervisor may restart it). */
  failNextSync(id: NodeId): void {
    const n = this.node(id);
    if (!n.node) return;
    this.log(`${id} disk fault armed`);
    n.diskFault = true;
  }

  /** Starts the node (again) from its durable storage: a new RaftNode on fresh ports. A removed node stays down. */
  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.node || n.removed) return;
    const o = this.opts;
    const rng = this.rng.fork();
    const incarnation = n.incarnation;
    const node = new SimRaftNode(
      {
        id,
        name: id,
        members: [...n.initialMembers],
        tickMs: TICK,
        electionTick: o.electionTick,
        heartbeatTick: o.heartbeatTick,
        requestTimeoutMs: o.requestTimeoutTicks * TICK,
        snapshotEntries: o.snapshotEntries,
        snapshotCatchUpEntries: o.snapshotCatchUpEntries,
        random: () => rng.next(),
        tuning: {
          preVote: o.preVote,
          checkQuorum: o.checkQuorum,
          maxSizePerMsg: o.maxSizePerMsg,
          maxEntriesPerMsg: o.maxEntriesPerMsg,
          maxInflightMsgs: o.maxInflightMsgs,
          maxUncommittedEntriesSize: o.maxUncommittedEntriesSize,
          maxCommittedSizePerReady: o.maxCommittedSizePerReady === Infinity ? undefined : o.maxCommittedSizePerReady,
        },
        onFatal: (error) => {
          // A simulated disk fault stops the node as the real one exits; anything else is a bug to report.
          if (!(error instanceof SimulatedDiskError)) throw error;
          if (n.incarnation === incarnation) this.halt(n);
        },
        onRemoved: () => {
          // The node stopped taking part (as production exits): down for good, its storage kept as it is.
          if (n.incarnation !== incarnation) return;
          this.log(`${id} removed: it stops for good`);
          n.removed = true;
          this.halt(n);
        },
      },
      {
        storage: this.storageFor(n, incarnation),
        transport: this.transportFor(n, incarnation),
        stateMachine: this.stateMachineFor(n),
        clock: this.clockFor(n, incarnation),
        observer: { onReady: (rd) => this.onReady(n, rd) },
        logger: this.opts.traceSize > 0 ? this.traceLogger : undefined,
      },
    );
    n.node = node;
    const hs = n.storage.initialState().hardState;
    this.checker.onRestart(id, hs.term, hs.vote, 0);
    this.log(
      `${id} restart term=${hs.term} vote=${hs.vote} commit=${hs.commit} first=${n.storage.firstIndex()} last=${n.storage.lastIndex()}` +
        ` snapshot=${n.storage.snapshot().metadata.index}`,
    );
    n.starting = true;
    try {
      node.start();
    } finally {
      n.starting = false;
    }
    // The simulator's storage hands the snapshot's content synchronously: the node is up when start() returns.
    if (n.storage.snapshot().metadata.index > 0 && n.smApplied !== n.storage.snapshot().metadata.index) {
      throw new InvariantViolation(`${id}: started without restoring its state machine from the snapshot`);
    }
  }

  disconnect(id: NodeId): void {
    this.log(`${id} disconnect`);
    this.net.disconnect(id);
  }

  connect(id: NodeId): void {
    this.log(`${id} connect`);
    this.net.connect(id);
  }

  partition(groups: NodeId[][]): void {
    this.log(`partition ${JSON.stringify(groups)}`);
    this.net.partition(groups);
  }

  heal(): void {
    this.log('heal');
    this.net.heal();
  }

  setNetwork(config: NetworkConfig): void {
    this.net.config = { ...config };
  }

  // -------------------------------------------------------------------------------------------------
  // Clients (through RaftNode's callback API, so answers are seen at the event that gives them)
  // -------------------------------------------------------------------------------------------------

  /** Proposes a fresh command (a unique ident, then `pad` bytes) on `id`; undefined if refused. */
  propose(id: NodeId, pad = 0): { index: number; term: number; ident: number } | undefined {
    const n = this.node(id);
    if (!n.node) return undefined;
    const data = new Uint8Array(4 + pad);
    const serial = ++this.nextIdent;
    for (let k = 0; k < 4; k++) data[k] = (serial >>> (8 * k)) & 0xff;
    for (let k = 4; k < data.length; k++) data[k] = k & 0xff;
    const ident = entryIdent({ index: 0, term: 0, type: 0, data } as Entry);
    let at: { index: number; term: number };
    try {
      at = n.node.submit(data, {
        resolve: (applied: Applied) => {
          // The node answers once it applied the proposal's own entry (whatever its state machine returns).
          if (n.applied[applied.index] !== ident) {
            throw new InvariantViolation(`${id}: proposal ${ident} answered, but another entry was applied at ${applied.index}`);
          }
          this.checker.onAck(applied.index);
          this.acked.push({ index: applied.index, ident });
        },
        reject: () => {},
      });
    } catch (error) {
      if (isStorageFull(error)) this.diskStats.refusedRequests++;
      if (isRefusal(error)) return undefined;
      throw error;
    }
    return { ...at, ident };
  }

  /** Proposes `count` commands back to back (they go out in one Ready), as a busy client would. */
  proposeMany(id: NodeId, count: number, pad = 0): number {
    const n = this.node(id);
    if (!n.node?.isLeader) return 0;
    let ok = 0;
    for (let i = 0; i < count; i++) if (this.propose(id, pad)) ok++;
    return ok;
  }

  /**
   * Issues a linearizable read on `id` (forwarded to the leader when `id` follows); undefined if the node
   * knows no leader (or is down). When answered, the read index must cover every entry committed anywhere
   * before the read was issued, and the node must have applied it.
   */
  readIndex(id: NodeId): ReadRequest | undefined {
    const n = this.node(id);
    if (!n.node) return undefined;
    const r: ReadRequest = { node: id, incarnation: n.incarnation, minIndex: this.checker.commitIndex, issuedAt: this.now };
    try {
      n.node.read(
        {
          resolve: (index) => {
            if (index < r.minIndex) {
              throw new InvariantViolation(
                `stale read: ${id} got read index ${index}, but ${r.minIndex} was committed when it was issued (at t=${this.now})`,
              );
            }
            if (n.smApplied < index) throw new InvariantViolation(`${id}: read answered at ${index} with only ${n.smApplied} applied`);
            r.index = index;
          },
          reject: () => {},
        },
        { onFollower: true },
      );
    } catch (error) {
      if (isStorageFull(error)) this.diskStats.refusedRequests++;
      if (isRefusal(error)) return undefined;
      throw error;
    }
    this.reads.push(r);
    return r;
  }

  /** Issues `count` reads on `id` back to back (they share one confirmation round). */
  readMany(id: NodeId, count: number): ReadRequest[] {
    const out: ReadRequest[] = [];
    for (let i = 0; i < count; i++) {
      const r = this.readIndex(id);
      if (r) out.push(r);
    }
    return out;
  }

  transferLeadership(from: NodeId, to: NodeId): void {
    this.refusable(() => this.node(from).node?.transferLeadership(to));
  }

  campaign(id: NodeId): void {
    this.refusable(() => this.node(id).node?.campaign());
  }

  /** Runs a command a node may refuse (a removed node still running its last election timeouts does). */
  private refusable(command: () => void): void {
    try {
      command();
    } catch (error) {
      if (!isRefusal(error)) throw error;
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Membership
  // -------------------------------------------------------------------------------------------------

  /**
   * A new server (`id`, or the next free `nN`): empty storage, started with no configuration (a joining
   * node). It takes part once a leader adds it and sends it a snapshot. Ids are never reused.
   */
  addNode(id?: NodeId): NodeId {
    let nodeId = id;
    for (let k = this.ids.length + 1; nodeId === undefined; k++) if (!this.nodes.has(`n${k}`)) nodeId = `n${k}`;
    if (this.nodes.has(nodeId)) throw new Error(`${nodeId} exists already (ids are never reused)`);
    this.ids.push(nodeId);
    this.nodes.set(nodeId, new SimNode(nodeId, this.rng.int(TICK), []));
    this.checker.addNode(nodeId);
    this.log(`${nodeId} added (joining, no configuration)`);
    this.restart(nodeId);
    return nodeId;
  }

  /** The newest committed configuration (the checker's model of the committed ConfChange entries). */
  get config(): SimConfig {
    return this.checker.config;
  }

  /** Voters and learners of the newest committed configuration. */
  members(): NodeId[] {
    const { voters, learners } = this.checker.config;
    return [...voters, ...learners];
  }

  /**
   * Asks `leaderId` for a membership change (RaftNode.changeMembership). The answer comes as a promise:
   * it is recorded on the returned request once promise callbacks run (answers(), waitForChange()).
   */
  changeMembership(leaderId: NodeId, change: MembershipChange): MembershipRequest {
    const r: MembershipRequest = { leader: leaderId, change, at: this.now };
    this.membershipRequests.push(r);
    this.unanswered++;
    this.log(`ask ${leaderId}: ${change.op} ${change.nodeId}${change.op === 'add' && change.learner ? ' as learner' : ''}`);
    const node = this.node(leaderId).node;
    if (!node) {
      r.outcome = 'failed';
      r.error = new Error(`${leaderId} is down`);
      return r;
    }
    node.changeMembership(change).then(
      ({ index }) => {
        r.outcome = 'committed';
        r.index = index;
      },
      (error: Error) => {
        r.error = error;
        if (error instanceof MembershipChangeRefusedError) r.outcome = 'refused';
        else if (isChangeFailure(error)) r.outcome = 'failed';
        else this.unexpected ??= error;
      },
    );
    return r;
  }

  /**
   * Lets the answers to membership changes given so far reach their requests (promise callbacks run in a
   * turn of the event loop: nothing else runs meanwhile, so the run stays deterministic). Throws if a
   * change failed with an error no node should give, or if a committed change is not a committed
   * ConfChange entry at its index.
   */
  async answers(): Promise<void> {
    if (this.unanswered > 0) await this.letAnswersIn();
  }

  private async letAnswersIn(): Promise<void> {
    this.unanswered = 0;
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.unexpected) throw this.unexpected;
    for (const r of this.membershipRequests) {
      if (r.outcome !== 'committed' || this.verified.has(r)) continue;
      if (!this.checker.configHistory().some((cfg) => cfg.index === r.index)) {
        throw new InvariantViolation(`${r.leader} answered ${r.change.op} ${r.change.nodeId} as committed at ${r.index}, which is no committed ConfChange`);
      }
      this.verified.add(r);
    }
  }

  /** Runs until the request has its answer (or maxTicks pass); returns it. */
  async waitForChange(r: MembershipRequest, maxTicks = 300): Promise<MembershipRequest> {
    await this.letAnswersIn();
    for (let i = 0; i < maxTicks && r.outcome === undefined; i++) {
      this.runTicks(1);
      await this.letAnswersIn();
    }
    return r;
  }

  // -------------------------------------------------------------------------------------------------
  // Queries (the lab tester's helpers)
  // -------------------------------------------------------------------------------------------------

  status(id: NodeId): Status | undefined {
    return this.nodes.get(id)?.node?.raftStatus();
  }

  /** Live nodes that believe they lead, with their terms. */
  leaders(): { id: NodeId; term: number }[] {
    const out: { id: NodeId; term: number }[] = [];
    for (const n of this.nodes.values()) {
      const s = n.node?.raftStatus();
      if (s && s.raftState === StateType.Leader) out.push({ id: n.id, term: s.term });
    }
    return out;
  }

  /**
   * Waits for a leader among the connected live nodes (lab: checkOneLeader) and returns the one of the
   * highest term. Throws if none emerges within `maxTicks`.
   */
  checkOneLeader(maxTicks = 300): NodeId {
    const deadline = this.now + maxTicks * TICK;
    while (this.now <= deadline) {
      this.runTicks(this.rng.range(20, 30));
      const byTerm = new Map<number, NodeId[]>();
      for (const { id, term } of this.leaders()) {
        if (this.net.isolatedNode(id)) continue;
        byTerm.set(term, [...(byTerm.get(term) ?? []), id]);
      }
      let best = -1;
      for (const [term, ids] of byTerm) {
        if (ids.length > 1) throw new InvariantViolation(`term ${term} has ${ids.length} leaders`);
        if (term > best) best = term;
      }
      if (best >= 0) return byTerm.get(best)![0];
    }
    throw new Error(`expected one leader, got none (t=${this.now})`);
  }

  /** Terms of the live, connected nodes if they agree (lab: checkTerms). */
  checkTerms(): number {
    let term = -1;
    for (const n of this.nodes.values()) {
      if (!n.node || this.net.isolatedNode(n.id)) continue;
      const t = n.node.raftStatus().term;
      if (term === -1) term = t;
      else if (t !== term) throw new Error(`servers disagree on term: ${term} vs ${t}`);
    }
    return term;
  }

  /** How many servers applied `index`, and what (lab: nCommitted). */
  nCommitted(index: number): { count: number; ident: number | undefined } {
    let count = 0;
    let ident: number | undefined;
    for (const n of this.nodes.values()) {
      const v = n.applied[index];
      if (v === undefined) continue;
      if (ident !== undefined && v !== ident) throw new InvariantViolation(`committed values at ${index} differ: ${ident} vs ${v}`);
      ident = v;
      count++;
    }
    return { count, ident };
  }

  /**
   * Proposes a command and waits until at least `expected` servers applied it (lab: cfg.one). With
   * retry, proposes again if it did not commit in time (e.g. the leader failed). Returns its index.
   */
  one(expected: number, retry: boolean, pad = 0): number {
    const deadline = this.now + 1000 * TICK;
    let start = 0;
    const mine = new Set<number>();
    while (this.now < deadline) {
      let index = -1;
      for (let k = 0; k < this.ids.length; k++) {
        const id = this.ids[(start + k) % this.ids.length];
        if (this.net.isolatedNode(id)) continue;
        const p = this.propose(id, pad);
        if (p) {
          index = p.index;
          mine.add(p.ident);
          break;
        }
      }
      start = (start + 1) % this.ids.length;
      if (index !== -1) {
        const until = this.now + 200 * TICK;
        while (this.now < until) {
          const { count, ident } = this.nCommitted(index);
          if (count >= expected && ident !== undefined && mine.has(ident)) return index;
          this.runTicks(2);
        }
        if (!retry) throw new Error(`one(): command at ${index} failed to reach agreement on ${expected} servers (t=${this.now})`);
      } else {
        this.runTicks(5);
      }
    }
    throw new Error(`one(): failed to reach agreement (t=${this.now})`);
  }

  /**
   * Heals everything, restarts every node (but removed ones) and waits until every member of the committed
   * configuration (learners too) applied everything committed and a fresh command commits on all of them
   * (liveness after faults). Nodes outside the configuration (removed, or never admitted) need not follow.
   * Then runs the final invariant checks, on every node's durable state too. Fails if nothing moves (no
   * commit, no apply) for `stallTicks`.
   */
  settle(stallTicks = 600): void {
    this.heal();
    this.crashDuringAny = undefined;
    this.setNetwork(RELIABLE);
    for (const n of this.nodes.values()) {
      // Disk faults armed earlier would stop a node after the restart below, and it would stay down.
      n.diskFault = false;
      if (n.diskFull) this.freeDisk(n.id);
      if (n.pendingSave) n.pendingSave.fails = false;
      if (n.pendingInstall) n.pendingInstall.fails = false;
      n.crashDuring = undefined;
      n.crashScheduled = undefined;
    }
    for (const id of this.ids) this.restart(id);
    let probe: { index: number; ident: number } | undefined;
    let probeAt = 0;
    let progressAt = this.now;
    let mark = '';
    // Progress alone does not bound the wait (re-proposed probes keep committing while a node stays behind).
    const deadline = this.now + 5 * stallTicks * TICK;
    while (this.now - progressAt < stallTicks * TICK && this.now < deadline) {
      if (probe === undefined || this.now - probeAt > 60 * TICK) {
        // (Re)propose a probe command: the previous one may have been lost with a leader change.
        const leader = this.leaders().sort((a, b) => b.term - a.term)[0];
        const p = leader ? this.propose(leader.id) : undefined;
        if (p) {
          probe = p;
          probeAt = this.now;
        }
      }
      this.runTicks(5);
      // Progress: commits, applies, and a lagging follower's log growing (with one tiny MsgApp in flight at a
      // time it may take thousands of ticks to reach the leader's term, before which nothing commits: long
      // seed 103523).
      const now = `${this.checker.commitIndex}:${this.ids.map((id) => `${this.node(id).smApplied}/${this.status(id)?.lastIndex ?? 0}`).join(',')}`;
      if (now !== mark) {
        mark = now;
        progressAt = this.now;
      }
      if (probe !== undefined) {
        const { index, ident } = probe;
        const members = this.members();
        const commit = this.checker.commitIndex;
        const done = members.every((id) => this.node(id).applied[index] === ident && this.node(id).smApplied >= commit);
        if (done && this.nCommitted(index).ident === ident) {
          this.checker.checkAllApplied(members);
          for (const n of this.nodes.values()) this.checker.checkDurableCommit(n.id, n.storage.initialState().hardState.commit);
          return;
        }
      }
    }
    const { voters, learners } = this.config;
    throw new Error(
      `no convergence after healing: commit ${this.checker.commitIndex}, applied ` +
        this.ids.map((id) => `${id}=${this.node(id).smApplied}${this.node(id).removed ? '(removed)' : ''}`).join(' ') +
        `, voters [${voters.join(',')}] learners [${learners.join(',')}], leaders ${JSON.stringify(this.leaders())} (t=${this.now})`,
    );
  }
}

import {
  canSendBeforePersist,
  Entry,
  HardState,
  MemoryStorage,
  Message,
  MessageType,
  NodeId,
  ProposalDroppedError,
  RawNode,
  Ready,
  StateType,
  Status,
} from '@app/consensus';
import { EventQueue } from './event-queue';
import { entryIdent, InvariantChecker, InvariantViolation, ReadyHashes } from './invariants';
import { Network, NetworkConfig, RELIABLE } from './network';
import { Rng } from './rng';

/** Virtual time units per tick. Message delays and persistence latencies are in the same units. */
export const TICK = 10;

/**
 * How a node's driver handles a Ready:
 * - strict: persist the hard state and entries, then send every message, then apply, then advance();
 * - early: send the leader's MsgApp/MsgHeartbeat/MsgSnap first (canSendBeforePersist), persist, send the
 *   rest, apply, advance(). A crash can then hit after the early messages left and before persistence.
 */
export type DriverMode = 'strict' | 'early';

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
  /** Driver mode of every node, or 'mixed' to draw one per node. Default 'mixed'. */
  driver?: DriverMode | 'mixed';
  /** Range of persistence latency per Ready, in time units. Default [0, 3]. */
  persistDelay?: [number, number];
  net?: NetworkConfig;
  /** On a crash during persistence, a random prefix of the Ready's entries is durable (no hard state). */
  tornWrites?: boolean;
  /** The state machine is durable (restart with applied = what it applied), or volatile (applied = 0). */
  durableStateMachine?: boolean | 'mixed';
  /**
   * A hard state that changes only the commit index (Ready.mustSync false) is not fsynced: it becomes
   * durable with the next synced write, and a crash before that loses it.
   */
  lazyCommit?: boolean;
  /** Keep the last N trace lines, printed with a failure. 0 disables. */
  traceSize?: number;
}

interface Inflight {
  rd: Ready;
  hashes: ReadyHashes;
  deferred: Message[];
}

interface PendingProposal {
  term: number;
  ident: number;
}

/** A linearizable read issued through ReadIndex, and what came of it. */
export interface ReadRequest {
  ctx: string;
  node: NodeId;
  incarnation: number;
  /** Highest index reported committed anywhere when the read was issued: the read index must cover it. */
  minIndex: number;
  issuedAt: number;
  /** The read index, once the ReadState arrived. */
  index?: number;
}

/** One simulated server: durable storage that survives crashes, and a RawNode that does not. */
export class SimNode {
  readonly storage = new MemoryStorage();
  raw: RawNode | undefined;
  incarnation = 0;
  inflight: Inflight | undefined;
  /** Index up to which this incarnation's (or, when durable, every incarnation's) state machine applied. */
  smApplied = 0;
  /** The tester's record of what this server ever applied (kept across crashes, like the lab's logs). */
  readonly applied: number[] = [];
  readonly pending = new Map<number, PendingProposal>();
  /** The driver is held (a client is mid-batch): no Ready is taken. */
  held = false;
  /** A commit-only hard state written but not yet fsynced (lazyCommit). */
  unsyncedHardState: HardState | undefined;

  constructor(
    readonly id: NodeId,
    readonly driver: DriverMode,
    readonly durableSM: boolean,
    readonly tickPhase: number,
  ) {}

  get alive(): boolean {
    return this.raw !== undefined;
  }
}

type SimEvent =
  | { kind: 'tick'; node: SimNode }
  | { kind: 'deliver'; msg: Message }
  | { kind: 'persist'; node: SimNode; incarnation: number };

export interface MessageStats {
  sent: number;
  delivered: number;
  byType: Map<MessageType, number>;
}

/**
 * A deterministic Raft cluster: N nodes, a virtual clock, an event queue, a network that drops,
 * duplicates, delays, reorders and partitions, and nodes that crash and restart from their durable
 * storage. Everything random comes from one seed. An InvariantChecker watches every step.
 */
export class Cluster {
  readonly ids: NodeId[];
  readonly nodes = new Map<NodeId, SimNode>();
  readonly net: Network;
  readonly checker: InvariantChecker;
  readonly rng: Rng;
  readonly stats: MessageStats = { sent: 0, delivered: 0, byType: new Map() };
  readonly reads = new Map<string, ReadRequest>();
  /** Proposals acknowledged to their client: index and ident. */
  readonly acked: { index: number; ident: number }[] = [];
  /** Drops the messages for which it returns true (targeted faults in scenario tests). */
  dropIf: ((m: Message) => boolean) | undefined;
  now = 0;
  private readonly opts: Required<Omit<ClusterOptions, 'net'>>;
  private readonly queue = new EventQueue<SimEvent>();
  private nextIdent = 0;
  private readSeq = 0;
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
      driver: 'mixed',
      persistDelay: [0, 3],
      tornWrites: false,
      durableStateMachine: false,
      lazyCommit: false,
      traceSize: 0,
      ...options,
    };
    this.rng = new Rng(options.seed);
    this.net = new Network(this.rng.fork(), options.net ?? RELIABLE);
    this.ids = Array.from({ length: options.size }, (_, i) => `n${i + 1}`);
    this.checker = new InvariantChecker(this.ids);
    for (const id of this.ids) {
      const driver = this.opts.driver === 'mixed' ? (this.rng.chance(0.5) ? 'strict' : 'early') : this.opts.driver;
      const dsm = this.opts.durableStateMachine === 'mixed' ? this.rng.chance(0.5) : this.opts.durableStateMachine;
      const node = new SimNode(id, driver, dsm, this.rng.int(TICK));
      this.nodes.set(id, node);
      this.queue.push(node.tickPhase, { kind: 'tick', node });
    }
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

  private log(line: string): void {
    if (this.opts.traceSize === 0) return;
    this.trace.push(`t=${this.now} ${line}`);
    if (this.trace.length > this.opts.traceSize) this.trace.shift();
  }

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
      case 'tick': {
        const n = ev.node;
        this.queue.push(this.now + TICK, ev);
        if (!n.raw) return;
        n.raw.tick();
        this.pump(n);
        return;
      }
      case 'deliver': {
        const m = ev.msg;
        const n = this.nodes.get(m.to)!;
        if (!n.raw || !this.net.connected(m.from, m.to)) return;
        this.stats.delivered++;
        n.raw.step(m);
        this.pump(n);
        return;
      }
      case 'persist':
        if (ev.node.incarnation === ev.incarnation) this.completePersist(ev.node);
        return;
    }
  }

  // -------------------------------------------------------------------------------------------------
  // The driver
  // -------------------------------------------------------------------------------------------------

  /** Takes the node's next Ready if it has one and none is being persisted. */
  private pump(n: SimNode): void {
    if (!n.raw || n.inflight || n.held || !n.raw.hasReady()) return;
    const rd = n.raw.ready();
    if (
      !rd.softState &&
      !rd.hardState &&
      rd.entries.length === 0 &&
      rd.committedEntries.length === 0 &&
      rd.messages.length === 0 &&
      rd.readStates.length === 0
    ) {
      throw new InvariantViolation(`${n.id}: hasReady() was true but the Ready is empty (at t=${this.now})`);
    }
    const hashes = this.checker.onReady(n.id, rd);
    if (this.opts.traceSize > 0 && (rd.softState || rd.hardState || rd.entries.length > 0)) {
      const ents = rd.entries.length > 0 ? ` entries ${rd.entries[0].index}..${rd.entries[rd.entries.length - 1].index}@${rd.entries[rd.entries.length - 1].term}` : '';
      this.log(`${n.id} ready ${rd.softState ? rd.softState.raftState : ''} ${rd.hardState ? JSON.stringify(rd.hardState) : ''}${ents}`);
    }
    const deferred: Message[] = [];
    for (const m of rd.messages) {
      if (n.driver === 'early' && canSendBeforePersist(m)) this.send(m);
      else deferred.push(m);
    }
    n.inflight = { rd, hashes, deferred };
    // Writing takes time; a Ready with nothing to write is handled at once (still as a separate event).
    const [lo, hi] = this.opts.persistDelay;
    const delay = rd.hardState || rd.entries.length > 0 ? this.rng.range(lo, hi) : 0;
    this.queue.push(this.now + delay, { kind: 'persist', node: n, incarnation: n.incarnation });
  }

  private completePersist(n: SimNode): void {
    const f = n.inflight;
    if (!f || !n.raw) return;
    const { rd } = f;
    if (rd.hardState) {
      if (this.opts.lazyCommit && !rd.mustSync) {
        n.unsyncedHardState = rd.hardState;
      } else {
        n.storage.setHardState(rd.hardState);
        n.unsyncedHardState = undefined;
      }
    } else if (n.unsyncedHardState && rd.mustSync) {
      // The fsync of this Ready's entries makes the earlier commit-only write durable too.
      n.storage.setHardState(n.unsyncedHardState);
      n.unsyncedHardState = undefined;
    }
    if (rd.entries.length > 0) {
      n.storage.append(rd.entries);
      this.checker.onPersist(n.id, rd.entries, f.hashes, rd.entries.length);
    }
    for (const m of f.deferred) this.send(m);
    for (const e of rd.committedEntries) this.apply(n, e);
    for (const rs of rd.readStates) this.onReadState(n, rs.requestCtx, rs.index);
    n.inflight = undefined;
    n.raw.advance();
    this.pump(n);
  }

  private apply(n: SimNode, e: Entry): void {
    this.checker.onApply(n.id, e);
    n.smApplied = e.index;
    const ident = entryIdent(e);
    n.applied[e.index] = ident;
    const p = n.pending.get(e.index);
    if (p === undefined) return;
    n.pending.delete(e.index);
    if (p.term === e.term && p.ident === ident) {
      this.checker.onAck(e.index);
      this.acked.push({ index: e.index, ident });
    }
  }

  private onReadState(n: SimNode, ctx: string, index: number): void {
    const r = this.reads.get(ctx);
    if (!r || r.node !== n.id || r.incarnation !== n.incarnation) return;
    if (index < r.minIndex) {
      throw new InvariantViolation(
        `stale read: ${n.id} got read index ${index} for ${ctx}, but ${r.minIndex} was committed when it was issued (at t=${this.now})`,
      );
    }
    r.index = index;
  }

  private send(m: Message): void {
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
    if (!this.net.connected(m.from, m.to) || (this.dropIf && this.dropIf(m))) return;
    for (const at of this.net.fate(m.from, m.to, this.now)) this.queue.push(at, { kind: 'deliver', msg: m });
  }

  // -------------------------------------------------------------------------------------------------
  // Faults
  // -------------------------------------------------------------------------------------------------

  /** The node stops; only its durable storage remains (plus a torn prefix of a Ready being persisted). */
  crash(id: NodeId): void {
    const n = this.node(id);
    if (!n.raw) return;
    const f = n.inflight;
    if (f && this.opts.tornWrites && f.rd.entries.length > 0) {
      const k = this.rng.int(f.rd.entries.length);
      if (k > 0) {
        n.storage.append(f.rd.entries.slice(0, k));
        this.checker.onPersist(id, f.rd.entries, f.hashes, k);
      }
    }
    this.log(`${id} crash`);
    n.unsyncedHardState = undefined;
    n.raw = undefined;
    n.inflight = undefined;
    n.incarnation++;
    n.pending.clear();
    if (!n.durableSM) n.smApplied = 0;
    this.checker.onCrash(id);
  }

  /** Starts the node (again) from its durable storage. */
  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.raw) return;
    const o = this.opts;
    const rng = this.rng.fork();
    const applied = n.durableSM ? n.smApplied : 0;
    n.raw = new RawNode({
      id,
      peers: this.ids,
      storage: n.storage,
      electionTick: o.electionTick,
      heartbeatTick: o.heartbeatTick,
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      maxSizePerMsg: o.maxSizePerMsg,
      maxEntriesPerMsg: o.maxEntriesPerMsg,
      maxInflightMsgs: o.maxInflightMsgs,
      maxUncommittedEntriesSize: o.maxUncommittedEntriesSize,
      maxCommittedSizePerReady: o.maxCommittedSizePerReady === Infinity ? undefined : o.maxCommittedSizePerReady,
      applied,
      random: () => rng.next(),
    });
    const hs = n.storage.initialState().hardState;
    this.checker.onRestart(id, hs.term, hs.vote, applied);
    this.log(`${id} restart term=${hs.term} vote=${hs.vote} commit=${hs.commit} last=${n.storage.lastIndex()}`);
    this.pump(n);
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
  // Clients
  // -------------------------------------------------------------------------------------------------

  /** Proposes a fresh command (its ident in the first 4 bytes, then `pad` bytes) on `id`; undefined if refused. */
  propose(id: NodeId, pad = 0): { index: number; term: number; ident: number } | undefined {
    const n = this.node(id);
    if (!n.raw) return undefined;
    const ident = ++this.nextIdent;
    const data = new Uint8Array(4 + pad);
    data[0] = ident & 0xff;
    data[1] = (ident >>> 8) & 0xff;
    data[2] = (ident >>> 16) & 0xff;
    data[3] = (ident >>> 24) & 0xff;
    let at: { index: number; term: number };
    try {
      at = n.raw.propose(data);
    } catch (e) {
      if (e instanceof ProposalDroppedError) return undefined;
      throw e;
    }
    n.pending.set(at.index, { term: at.term, ident });
    this.pump(n);
    return { ...at, ident };
  }

  /** Proposes `count` commands back to back (one driver turn), as a busy client would. */
  proposeMany(id: NodeId, count: number, pad = 0): number {
    const n = this.node(id);
    if (!n.raw || n.raw.status().raftState !== StateType.Leader) return 0;
    // Hold the driver back while proposing, so the batch goes out in one Ready.
    n.held = true;
    let ok = 0;
    try {
      for (let i = 0; i < count; i++) if (this.propose(id, pad)) ok++;
    } finally {
      n.held = false;
    }
    this.pump(n);
    return ok;
  }

  /** Issues a ReadIndex request on `id`; undefined if the node knows no leader (or is down). */
  readIndex(id: NodeId): ReadRequest | undefined {
    const n = this.node(id);
    if (!n.raw) return undefined;
    const ctx = `read-${++this.readSeq}`;
    const r: ReadRequest = { ctx, node: id, incarnation: n.incarnation, minIndex: this.checker.commitIndex, issuedAt: this.now };
    try {
      n.raw.readIndex(ctx);
    } catch (e) {
      if (e instanceof ProposalDroppedError) return undefined;
      throw e;
    }
    this.reads.set(ctx, r);
    this.pump(n);
    return r;
  }

  /** Issues `count` reads on `id` back to back (one driver turn). */
  readMany(id: NodeId, count: number): ReadRequest[] {
    const n = this.node(id);
    const out: ReadRequest[] = [];
    n.held = true;
    try {
      for (let i = 0; i < count; i++) {
        const r = this.readIndex(id);
        if (r) out.push(r);
      }
    } finally {
      n.held = false;
    }
    this.pump(n);
    return out;
  }

  transferLeadership(from: NodeId, to: NodeId): void {
    const n = this.node(from);
    if (!n.raw) return;
    n.raw.transferLeadership(to);
    this.pump(n);
  }

  campaign(id: NodeId): void {
    const n = this.node(id);
    if (!n.raw) return;
    n.raw.campaign();
    this.pump(n);
  }

  // -------------------------------------------------------------------------------------------------
  // Queries (the lab tester's helpers)
  // -------------------------------------------------------------------------------------------------

  status(id: NodeId): Status | undefined {
    return this.nodes.get(id)?.raw?.status();
  }

  /** Live nodes that believe they lead, with their terms. */
  leaders(): { id: NodeId; term: number }[] {
    const out: { id: NodeId; term: number }[] = [];
    for (const n of this.nodes.values()) {
      const s = n.raw?.status();
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
      if (!n.raw || this.net.isolatedNode(n.id)) continue;
      const t = n.raw.status().term;
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
   * Heals everything, restarts every node and waits until all of them applied everything committed and a
   * fresh command commits on all of them (liveness after faults). Then runs the final invariant check.
   * Fails if nothing moves (no commit, no apply) for `stallTicks`.
   */
  settle(stallTicks = 600): void {
    this.heal();
    this.setNetwork(RELIABLE);
    for (const id of this.ids) this.restart(id);
    let probe: { index: number; ident: number } | undefined;
    let probeAt = 0;
    let progressAt = this.now;
    let mark = '';
    while (this.now - progressAt < stallTicks * TICK) {
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
      const now = `${this.checker.commitIndex}:${this.ids.map((id) => this.node(id).smApplied).join(',')}`;
      if (now !== mark) {
        mark = now;
        progressAt = this.now;
      }
      if (probe !== undefined) {
        const c = this.nCommitted(probe.index);
        const all = this.ids.every((id) => this.node(id).smApplied >= this.checker.commitIndex);
        if (c.count === this.ids.length && c.ident === probe.ident && all) {
          this.checker.checkAllApplied(this.ids);
          return;
        }
      }
    }
    throw new Error(
      `no progress after healing: commit ${this.checker.commitIndex}, applied ` +
        this.ids.map((id) => `${id}=${this.node(id).smApplied}`).join(' ') +
        `, leaders ${JSON.stringify(this.leaders())} (t=${this.now})`,
    );
  }
}

import {
  ConfChange,
  ConfChangeType,
  decodeConfChange,
  Entry,
  EntryType,
  Message,
  MessageType,
  None,
  NodeId,
  Ready,
  SnapshotMetadata,
  StateType,
} from '@app/consensus';

/** A broken Raft safety property. The message says which one, where and when. */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantViolation';
  }
}

/**
 * Identity of an entry's payload in the simulator: a 32-bit FNV-1a hash of its data (the simulator's
 * proposals carry a unique serial, so distinct proposals have distinct identities up to 2^-32 collisions);
 * 0 for an empty entry (a no-op).
 */
export function entryIdent(e: Entry): number {
  const d = e.data;
  if (d.byteLength === 0) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < d.byteLength; i++) h = Math.imul(h ^ d[i], 0x01000193);
  return (h >>> 0) || 1;
}

/** Hash of the empty log prefix (index 0), the start of every chain. */
export const EMPTY_PREFIX_HASH = 0x811c9dc5;
const HASH_SEED = EMPTY_PREFIX_HASH;

/**
 * Hash of a log prefix, extended one entry at a time. Two logs with equal hashes at index i hold the same
 * entries up to i (up to 2^-32 collisions), so Log Matching and "committed entries never change" are
 * checked in O(1) per entry instead of comparing whole logs.
 */
export function chainHash(prev: number, term: number, ident: number): number {
  let h = Math.imul(prev ^ term, 0x01000193);
  h = Math.imul(h ^ ident, 0x5bd1e995);
  h ^= h >>> 15;
  h = Math.imul(h, 0x27d4eb2d);
  return (h ^ (h >>> 13)) >>> 0;
}

/** Key of an entry by (index, term): the Log Matching witness's and the ConfChange record's. */
function entryKey(index: number, term: number): number {
  return index * (1 << 20) + term;
}

/** What the checker knows of one node: its durable log (as hashes) and what its Readies said. */
class NodeTrack {
  /**
   * The durable log from the compaction point `base` on: hashes[k] is the hash of the prefix up to index
   * base + k, terms[k] that entry's term. Entries at or below `base` are gone (compacted, or replaced by an
   * installed snapshot); the entry at `base` is the snapshot's (or the compacted one's) and still known.
   */
  hashes: number[] = [HASH_SEED];
  terms: number[] = [0];
  base = 0;
  /** Index of the node's newest durable snapshot (0: none). Always at or above `base`. */
  snap = 0;
  term = 0;
  vote: NodeId = None;
  state: StateType = StateType.Follower;
  /** Last index of the node's log as of its last Ready (durable log plus that Ready's entries). */
  viewLast = 0;
  /** Index the node's state machine applied last (in this incarnation, or durably). */
  applied = 0;

  get durableLast(): number {
    return this.base + this.hashes.length - 1;
  }

  /** Hash of the durable prefix up to i; undefined outside [base, durableLast]. */
  hash(i: number): number | undefined {
    return i < this.base ? undefined : this.hashes[i - this.base];
  }

  termAt(i: number): number | undefined {
    return i < this.base ? undefined : this.terms[i - this.base];
  }

  /** Keeps the durable log up to index last (at or above base). */
  truncateAfter(last: number): void {
    this.hashes.length = last - this.base + 1;
    this.terms.length = last - this.base + 1;
  }

  push(hash: number, term: number): void {
    this.hashes.push(hash);
    this.terms.push(term);
  }

  /** The log now starts after `index` (its hash and term kept as the new base). */
  compactTo(index: number): void {
    if (index <= this.base) return;
    this.hashes = this.hashes.slice(index - this.base);
    this.terms = this.terms.slice(index - this.base);
    this.base = index;
  }

  /** The log is replaced by a snapshot at `index`, whose prefix hash and term are given. */
  resetTo(index: number, hash: number, term: number): void {
    this.hashes = [hash];
    this.terms = [term];
    this.base = index;
  }
}

/** A configuration of the cluster, in effect from the committed ConfChange entry at `index` on (0: the bootstrap one). */
export interface SimConfig {
  index: number;
  voters: readonly NodeId[];
  learners: readonly NodeId[];
}

/**
 * The configuration after `cc`: the checker's own model of a simple change (one member at a time), written
 * apart from the core's so that a wrong configuration there does not become the checker's truth. Refused
 * changes (demoting a voter, removing the last voter) and no-ops leave it as it is.
 */
export function nextConfig(cur: SimConfig, cc: ConfChange, index: number): SimConfig {
  const id = cc.nodeId;
  let { voters, learners } = cur;
  if (cc.type === ConfChangeType.AddNode) {
    if (!voters.includes(id)) voters = [...voters, id];
    learners = learners.filter((l) => l !== id);
  } else if (cc.type === ConfChangeType.AddLearnerNode) {
    if (!voters.includes(id) && !learners.includes(id)) learners = [...learners, id];
  } else if (cc.type === ConfChangeType.RemoveNode) {
    learners = learners.filter((l) => l !== id);
    if (voters.length > 1 || voters[0] !== id) voters = voters.filter((v) => v !== id);
  }
  return { index, voters, learners };
}

/** Hashes of a Ready's entries chained onto the node's durable log; kept for the persistence step. */
export interface ReadyHashes {
  first: number;
  hashes: number[];
}

/**
 * The safety checker of the simulator. The cluster calls it at every point where a node's externally
 * visible state changes; each check costs O(1) or O(entries involved), so it runs after every step.
 *
 * Properties (Raft paper, Figure 3, plus the ones the driver contract adds):
 * - Election Safety: at most one leader per term (from Readies and from who sends MsgApp/MsgHeartbeat/
 *   MsgSnap), and no node grants two different votes in one term, across crashes.
 * - Leader Append-Only: a leader never overwrites or deletes entries of its log during its term.
 * - Log Matching: two durable entries with the same index and term have identical prefixes, on any nodes
 *   at any times (only entries a node still holds are compared: compacted ones are gone).
 * - Leader Completeness: a new leader's log contains every entry committed so far (up to its snapshot).
 * - State Machine Safety: no two nodes apply different entries at an index; nodes apply in order, only
 *   committed entries. A snapshot (taken, sent, installed) at index S has the term of the committed entry
 *   S, and the state a node restores from one (at install, at restart) is the state after applying exactly
 *   the committed entries 1..S.
 * - Durability: every committed entry is durable on a quorum when its commit is first reported, and
 *   every acknowledged proposal is durable on a quorum when acknowledged (an entry covered by a node's
 *   durable snapshot counts as durable there); committed entries never vanish from or change in a node's
 *   durable log, nor are they discarded by installing a snapshot. The log is never compacted beyond the
 *   node's newest snapshot.
 *
 * Across membership changes: the checker follows the configuration through the committed ConfChange
 * entries (its own model, nextConfig). Election safety is per term whatever the configuration. A quorum is
 * a majority of the voters (learners never count) of the configuration in effect at the entry, or of the
 * one before it: a change takes effect when applied, so the leader that commits an entry may not have
 * applied the newest change before it yet (it has applied the one before, or it could not have proposed
 * that one). Removed nodes stay tracked: their logs must never contradict the committed entries.
 */
export class InvariantChecker {
  private readonly nodes = new Map<NodeId, NodeTrack>();
  private readonly leaders = new Map<number, NodeId>();
  private readonly votes = new Map<string, NodeId>();
  /** Hash of every durable (index, term) ever seen: the Log Matching witness. */
  private readonly entryHashes = new Map<number, number>();
  /** committed[i] = hash of the committed prefix up to i; committedTerms[i] = term of committed entry i. */
  private readonly committed: number[] = [HASH_SEED];
  private readonly committedTerms: number[] = [0];
  /**
   * commitTerms[i]: the term of the node that first reported i committed, an upper bound of the term in
   * which i was committed (the leader that committed it reports it in its term; others learn it later).
   */
  private readonly commitTerms: number[] = [0];
  /** Identity (term:ident) of the entry applied at each index. */
  private readonly appliedIdent: string[] = [''];
  /** entryIdent() of the entry applied at each index (what SimNode.applied records). */
  private readonly appliedIdentNumber: number[] = [0];
  /** The committed configurations, oldest first: the bootstrap one, then one per committed ConfChange entry. */
  private readonly configs: SimConfig[];
  /** Every ConfChange entry ever appended by a leader, by (index, term): what it changes once committed. */
  private readonly confChanges = new Map<number, ConfChange>();
  now = 0;

  constructor(ids: readonly NodeId[]) {
    for (const id of ids) this.nodes.set(id, new NodeTrack());
    this.configs = [{ index: 0, voters: [...ids], learners: [] }];
  }

  /** A node joins the simulation (with an empty log); it counts once a committed change makes it a voter. */
  addNode(id: NodeId): void {
    if (this.nodes.has(id)) throw new Error(`the checker already tracks ${id}`);
    this.nodes.set(id, new NodeTrack());
  }

  /** The newest committed configuration. */
  get config(): SimConfig {
    return this.configs[this.configs.length - 1];
  }

  /** Every committed configuration, oldest first. */
  configHistory(): readonly SimConfig[] {
    return this.configs;
  }

  /** The highest index reported committed by any node: every acknowledged write is at or below it. */
  get commitIndex(): number {
    return this.committed.length - 1;
  }

  /** Hash of the committed prefix up to i (the state a correct state machine has at i), if committed. */
  committedHash(i: number): number | undefined {
    return this.committed[i];
  }

  /** entryIdent() of the committed entry at i, once some node applied it. */
  appliedIdentAt(i: number): number | undefined {
    return this.appliedIdentNumber[i];
  }

  private fail(what: string): never {
    throw new InvariantViolation(`${what} (at t=${this.now})`);
  }

  private track(id: NodeId): NodeTrack {
    return this.nodes.get(id)!;
  }

  /** A node (re)started from its durable storage (its state machine is restored from its snapshot next). */
  onRestart(id: NodeId, term: number, vote: NodeId, durableApplied: number): void {
    const t = this.track(id);
    t.term = term;
    t.vote = vote;
    t.state = StateType.Follower;
    t.viewLast = t.durableLast;
    t.applied = durableApplied;
  }

  /** A node's volatile state is gone. Its durable log stays as it is. */
  onCrash(id: NodeId): void {
    const t = this.track(id);
    t.state = StateType.Follower;
    t.viewLast = t.durableLast;
  }

  onReady(id: NodeId, rd: Ready): ReadyHashes {
    const t = this.track(id);
    const ents = rd.entries;
    const snap = rd.snapshot?.metadata;
    if (snap) this.checkSnapshotMetadata(id, snap, 'received');
    // With a snapshot the Ready's entries follow it: the node's log is about to be the snapshot alone.
    const prevLast = snap ? snap.index : t.durableLast;
    const prevHash = (i: number): number | undefined => (snap ? (i === snap.index ? this.committed[i] : undefined) : t.hash(i));
    const prevTerm = (i: number): number | undefined => (snap ? (i === snap.index ? snap.term : undefined) : t.termAt(i));
    const first = ents.length > 0 ? ents[0].index : t.viewLast + 1;
    const hashes: number[] = new Array(ents.length);
    if (ents.length > 0) {
      if (first > prevLast + 1) this.fail(`${id}: Ready entries start at ${first}, after durable last ${prevLast}`);
      for (let k = 1; k < ents.length; k++) {
        if (ents[k].index !== first + k) this.fail(`${id}: Ready entries are not consecutive at ${ents[k].index}`);
      }
      let h = prevHash(first - 1);
      if (h === undefined) this.fail(`${id}: Ready entries start at ${first}, at or below its log's start ${snap ? snap.index : t.base}`);
      for (let k = 0; k < ents.length; k++) {
        const e = ents[k];
        h = chainHash(h, e.term, entryIdent(e));
        hashes[k] = h;
        // Every entry passes through its leader's Ready first: the one place to learn what a ConfChange does.
        if (e.type === EntryType.ConfChange) this.recordConfChange(id, e);
      }
    }
    const viewLast = ents.length > 0 ? ents[ents.length - 1].index : prevLast;
    const viewHash = (i: number): number | undefined => {
      if (i > viewLast) return undefined;
      if (ents.length > 0 && i >= first) return hashes[i - first];
      return prevHash(i);
    };
    const viewTerm = (i: number): number | undefined => {
      if (i > viewLast) return undefined;
      if (ents.length > 0 && i >= first) return ents[i - first].term;
      return prevTerm(i);
    };

    const wasLeaderTerm = t.state === StateType.Leader ? t.term : -1;
    if (rd.hardState) {
      const hs = rd.hardState;
      if (hs.term < t.term) this.fail(`${id}: term went back from ${t.term} to ${hs.term}`);
      if (hs.term === t.term && t.vote !== None && hs.vote !== t.vote) {
        this.fail(`${id}: vote changed within term ${hs.term} from ${t.vote} to ${hs.vote}`);
      }
      t.term = hs.term;
      t.vote = hs.vote;
    }
    if (rd.softState) t.state = rd.softState.raftState;

    if (t.state === StateType.Leader) {
      const other = this.leaders.get(t.term);
      if (other !== undefined && other !== id) this.fail(`election safety: ${other} and ${id} both leaders in term ${t.term}`);
      this.leaders.set(t.term, id);
      if (wasLeaderTerm === t.term) {
        if (ents.length > 0 && first <= t.viewLast) {
          this.fail(`leader append-only: ${id} (term ${t.term}) overwrote its log from ${first} (last was ${t.viewLast})`);
        }
      } else {
        // Leader completeness: the entries committed in earlier terms. A vote delayed in the network can still
        // elect a leader of an old term after a newer one committed more (seed 150020): that one never commits.
        let g = this.commitIndex;
        while (g > 0 && this.commitTerms[g] >= t.term) g--;
        if (g > 0 && viewHash(g) !== this.committed[g]) {
          this.fail(`leader completeness: new leader ${id} (term ${t.term}) lacks committed entries up to ${g}`);
        }
      }
    }

    if (rd.hardState) {
      const c = rd.hardState.commit;
      if (c > viewLast) this.fail(`${id}: commit ${c} beyond its log (last ${viewLast})`);
      const g = this.commitIndex;
      // One index suffices: the hash covers the whole prefix.
      const known = Math.min(c, g);
      if (known > 0 && viewHash(known) !== this.committed[known]) {
        this.fail(`${id}: committed prefix at ${known} differs from the cluster's`);
      }
      for (let i = g + 1; i <= c; i++) {
        const h = viewHash(i);
        const term = viewTerm(i);
        if (h === undefined || term === undefined) this.fail(`${id}: reports commit ${c} but no longer holds entry ${i}`);
        this.committed.push(h);
        this.committedTerms.push(term);
        this.commitTerms.push(rd.hardState.term);
        this.checkDurableOnQuorum(i, `commit ${c} reported by ${id}`);
        const cc = this.confChanges.size > 0 ? this.confChanges.get(entryKey(i, term)) : undefined;
        if (cc) this.configs.push(nextConfig(this.config, cc, i));
      }
    }
    t.viewLast = viewLast;
    return { first, hashes };
  }

  private recordConfChange(id: NodeId, e: Entry): void {
    if (e.term >= 1 << 20) this.fail('term too large for the checker');
    const key = entryKey(e.index, e.term);
    if (this.confChanges.has(key)) return;
    try {
      this.confChanges.set(key, decodeConfChange(e.data));
    } catch (error) {
      this.fail(`${id}: undecodable ConfChange entry at ${e.index}: ${(error as Error).message}`);
    }
  }

  /**
   * Entry i is durable on a majority of the voters of the configuration in effect at i, or of the one
   * before it (see the class comment).
   */
  private checkDurableOnQuorum(i: number, what: string): void {
    const want = this.committed[i];
    const holds = (id: NodeId): boolean => {
      const t = this.nodes.get(id);
      // A durable snapshot at or above i holds entry i's effect (checked to be the committed state).
      return t !== undefined && (i <= t.snap || t.hash(i) === want);
    };
    let k = this.configs.length - 1;
    while (this.configs[k].index >= i) k--;
    const counts: string[] = [];
    for (const cfg of k > 0 ? [this.configs[k], this.configs[k - 1]] : [this.configs[k]]) {
      const n = cfg.voters.filter(holds).length;
      if (n >= Math.floor(cfg.voters.length / 2) + 1) return;
      counts.push(`${n} of the voters [${cfg.voters.join(',')}] (configuration of ${cfg.index})`);
    }
    this.fail(`durability: entry ${i} of ${what} is durable on only ${counts.join(', and on ')}`);
  }

  /** A prefix (count entries, all when torn is false) of a Ready's entries became durable. */
  onPersist(id: NodeId, ents: readonly Entry[], rh: ReadyHashes, count: number): void {
    if (count === 0) return;
    const t = this.track(id);
    const first = ents[0].index;
    // Entries at or below the compaction point are ignored by the storage (MemoryStorage.append).
    const skip = Math.max(0, t.base + 1 - first);
    if (skip >= count) return;
    const from = first + skip;
    const prevLast = t.durableLast;
    const lastNew = first + count - 1;
    const g = this.commitIndex;
    if (from > prevLast + 1) this.fail(`${id}: durable log gap: append at ${from} after ${prevLast}`);
    // Committed entries this node holds must survive the write: a node never loses or changes an entry of
    // its committed prefix (the new entries may differ from the committed ones only above that prefix,
    // e.g. when a lagging node takes entries from a deposed leader).
    const top = Math.min(prevLast, g);
    if (from <= top) {
      const held = this.heldCommittedPrefix(t, top);
      if (held >= from) {
        if (lastNew < held) this.fail(`${id}: persisting entries ${from}..${lastNew} truncates committed entries up to ${held}`);
        if (rh.hashes[held - first] !== this.committed[held]) this.fail(`${id}: persisting entries from ${from} overwrites committed entry ${held}`);
      }
    }
    t.truncateAfter(from - 1);
    for (let k = skip; k < count; k++) {
      const e = ents[k];
      const h = rh.hashes[k];
      t.push(h, e.term);
      if (e.term >= 1 << 20) this.fail('term too large for the checker');
      const key = entryKey(e.index, e.term);
      const seen = this.entryHashes.get(key);
      if (seen === undefined) this.entryHashes.set(key, h);
      else if (seen !== h) this.fail(`log matching: entry (index ${e.index}, term ${e.term}) on ${id} has a different prefix than elsewhere`);
    }
    if (t.viewLast < t.durableLast) t.viewLast = t.durableLast;
  }

  /**
   * Largest i in [base, top] with hash(i) === committed[i]; matching is prefix-closed, so binary search.
   * The entry at base always matches: it is covered by a snapshot, or is the empty prefix.
   */
  private heldCommittedPrefix(t: NodeTrack, top: number): number {
    let lo = t.base;
    let hi = top;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (t.hash(mid) === this.committed[mid]) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The node's state machine applied `e` (after its Ready's persistence). */
  onApply(id: NodeId, e: Entry): void {
    const t = this.track(id);
    if (e.index !== t.applied + 1) this.fail(`${id}: applied ${e.index} after ${t.applied} (out of order)`);
    t.applied = e.index;
    if (e.index > this.commitIndex) this.fail(`${id}: applied ${e.index} beyond the commit index ${this.commitIndex}`);
    if (t.hash(e.index) !== this.committed[e.index]) this.fail(`${id}: applied entry ${e.index} is not the committed one`);
    const ident = `${e.term}:${entryIdent(e)}`;
    const prev = this.appliedIdent[e.index];
    if (prev === undefined) {
      if (e.index !== this.appliedIdent.length) this.fail(`${id}: applied ${e.index} with a gap in the applied log`);
      this.appliedIdent.push(ident);
      this.appliedIdentNumber.push(entryIdent(e));
    } else if (prev !== ident) {
      this.fail(`state machine safety: ${id} applied ${ident} at ${e.index}, another node applied ${prev}`);
    }
  }

  /** A snapshot's metadata names a committed entry: index at or below the commit index, and its term. */
  private checkSnapshotMetadata(id: NodeId, m: SnapshotMetadata, what: string): void {
    if (m.index > this.commitIndex) this.fail(`${id}: ${what} snapshot at ${m.index} beyond the commit index ${this.commitIndex}`);
    if (m.term !== this.committedTerms[m.index]) {
      const want = this.committedTerms[m.index];
      this.fail(`${id}: ${what} snapshot at ${m.index} has term ${m.term}, the committed entry ${m.index} has term ${want}`);
    }
  }

  /** The state a snapshot holds (or a state machine was restored to) is the committed prefix's. */
  private checkState(id: NodeId, index: number, state: { index: number; hash: number }, what: string): void {
    if (state.index !== index) this.fail(`${id}: ${what}: the content is the state at ${state.index}, not at ${index}`);
    if (state.index > this.commitIndex || state.hash !== this.committed[state.index]) {
      this.fail(`state machine safety: ${id}: ${what}: the state at ${state.index} is not that of the committed entries 1..${state.index}`);
    }
  }

  /** The node's snapshot write completed: `state` is the content's simulator state. */
  onSnapshotWritten(id: NodeId, m: SnapshotMetadata, state: { index: number; hash: number }): void {
    const t = this.track(id);
    this.checkSnapshotMetadata(id, m, 'taken');
    this.checkState(id, m.index, state, `snapshot taken at ${m.index}`);
    if (m.index <= t.snap) this.fail(`${id}: snapshot at ${m.index} stored over a newer one at ${t.snap}`);
    t.snap = m.index;
  }

  /** The node's storage released its log up to `index`. */
  onCompact(id: NodeId, index: number): void {
    const t = this.track(id);
    if (index > t.snap) this.fail(`${id}: log compacted to ${index}, beyond its newest snapshot at ${t.snap}`);
    t.compactTo(index);
  }

  /** A snapshot from the leader became durable on the node: its log is now the snapshot alone. */
  onInstall(id: NodeId, m: SnapshotMetadata, state: { index: number; hash: number }): void {
    const t = this.track(id);
    this.checkSnapshotMetadata(id, m, 'installed');
    this.checkState(id, m.index, state, `snapshot installed at ${m.index}`);
    if (m.index <= t.snap) this.fail(`${id}: installed snapshot at ${m.index} over a newer one at ${t.snap}`);
    // The core installs only when its log does not hold the snapshot's last entry: then no entry beyond it
    // can be a committed one (Log Matching), and discarding the log loses nothing committed.
    const top = Math.min(t.durableLast, this.commitIndex);
    if (top > m.index) {
      const held = this.heldCommittedPrefix(t, top);
      if (held > m.index) this.fail(`${id}: installing the snapshot at ${m.index} discards committed entries up to ${held}`);
    }
    t.resetTo(m.index, this.committed[m.index], m.term);
    t.snap = m.index;
  }

  /** The node's state machine was restored from its newest snapshot (at install, or at restart). */
  onRestore(id: NodeId, state: { index: number; hash: number }): void {
    const t = this.track(id);
    this.checkState(id, t.snap, state, `state machine restored from the snapshot at ${t.snap}`);
    if (state.index < t.applied) this.fail(`${id}: restoring moved its state machine back from ${t.applied} to ${state.index}`);
    t.applied = state.index;
  }

  /** A client was told its proposal at `index` succeeded. */
  onAck(index: number): void {
    this.checkDurableOnQuorum(index, 'an acknowledged proposal');
  }

  /** Leadership as seen on the wire: only the leader of a term sends MsgApp/MsgHeartbeat/MsgSnap in it. */
  onSend(m: Message): void {
    if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap) {
      const other = this.leaders.get(m.term);
      if (other !== undefined && other !== m.from) this.fail(`election safety: ${other} and ${m.from} both act as leader in term ${m.term}`);
      if (other === undefined) this.leaders.set(m.term, m.from);
      if (m.type === MessageType.MsgSnap) {
        if (!m.snapshot) this.fail(`${m.from}: MsgSnap to ${m.to} without a snapshot`);
        this.checkSnapshotMetadata(m.from, m.snapshot.metadata, `sent ${m.to} a`);
      }
    } else if (m.type === MessageType.MsgVoteResp && !m.reject) {
      const key = `${m.from}@${m.term}`;
      const prev = this.votes.get(key);
      if (prev !== undefined && prev !== m.to) this.fail(`${m.from} voted for ${prev} and ${m.to} in term ${m.term}`);
      this.votes.set(key, m.to);
    }
  }

  /**
   * A node's durable hard state (what it would restart from) agrees with the committed entries: its durable
   * commit index is committed, and its log holds the committed entry there (unless compacted away). Checked
   * at the end on every node, removed ones included.
   */
  checkDurableCommit(id: NodeId, commit: number): void {
    const t = this.track(id);
    if (commit > this.commitIndex) this.fail(`${id}: durable commit ${commit} beyond the cluster's commit index ${this.commitIndex}`);
    if (commit > t.durableLast) this.fail(`${id}: durable commit ${commit} beyond its durable log (last ${t.durableLast})`);
    if (commit >= t.base && t.hash(commit) !== this.committed[commit]) {
      this.fail(`${id}: its durable log contradicts the committed entries at or below its commit index ${commit}`);
    }
  }

  /** Final check after healing: every node applied every committed entry. */
  checkAllApplied(ids: readonly NodeId[]): void {
    for (const id of ids) {
      const t = this.track(id);
      if (t.applied < this.commitIndex) this.fail(`${id} applied ${t.applied} of ${this.commitIndex} committed entries after healing`);
    }
  }
}

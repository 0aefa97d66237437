import { decodeConfChange } from './core/confchange';
import { ProposalDroppedError } from './core/errors';
import { Status } from './core/raw-node';
import { ConfChange, ConfChangeType, ConfState, Entry, NodeId } from './core/types';
import { ClientUrlSource, ClusterIdentity, MemberInfo, MembershipChange, MembershipChangeRefusedError, MembersView } from './membership';
import { NodeLogger, PeerTransport } from './ports';

/** A learner is promoted only once its log is at most this many entries behind the leader's. */
export const PROMOTE_MAX_LAG = 1000;

/** What the member directory works with. */
export interface MembersDeps {
  self: NodeId;
  /** The core's current configuration (voters and learners). */
  confState(): ConfState;
  /** The core applies a committed change and returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState;
  /** With onClientUrl (HttpPeerTransport), the members' client URLs are learned from it (PEER_PORT). */
  transport: Pick<PeerTransport, 'setPeers'> & Partial<ClientUrlSource>;
  logger: NodeLogger;
  /** This node applied its own removal. */
  onRemoved(): void;
}

/**
 * The node layer's side of the configuration: the directory of member URLs (a member is its NODE_ID; the
 * URL is where it is reached), kept in step with the core's configuration as ConfChange entries apply, and
 * handed to the transport; the checks a change must pass before the leader proposes it; the members view.
 *
 * Where addresses come from: the node's identity at start (PEER_URLS discovery or the join answer), each
 * ConfChange that adds a member (its context is the URL), and a snapshot's recorded addresses (the state
 * as of the snapshot, for a node that installs one). An address this node already knows for a member
 * wins over a snapshot's: both name the same member, and this node's spelling is the one it can reach.
 */
export class Members {
  private readonly addresses = new Map<NodeId, string>();
  /** Members this node saw removed (while it runs), with their last URL: their streams are answered "removed". */
  private readonly removed = new Map<NodeId, string>();
  private published = '';
  /**
   * Where clients reach each member, as announced with its peer traffic (PEER_PORT); not persisted. Absent:
   * the member's URL serves clients too.
   */
  private readonly clientUrls = new Map<NodeId, string>();

  constructor(private readonly deps: MembersDeps) {
    deps.transport.onClientUrl?.((id, url) => this.clientUrls.set(id, url));
  }

  /** Entries up to this index that remove this node's NODE_ID concern an earlier member of that name. */
  private joinedAt = 0;

  /** The identity the node starts with: the addresses it knows, and where it joined. */
  useIdentity(identity: Pick<ClusterIdentity, 'addresses' | 'joinedAt'>): void {
    for (const [id, url] of Object.entries(identity.addresses)) this.addresses.set(id, url);
    this.joinedAt = identity.joinedAt ?? 0;
  }

  /**
   * A snapshot's configuration became the core's (at start, or installed from the leader): forgets the
   * addresses of nodes the core's configuration does not name (removed since this node learned them), and
   * takes the snapshot's recorded `addresses` of members this node has none for. (A restored backup's
   * snapshot records the old cluster's members: the core starts from this cluster's, hence the core's.)
   */
  restored(addresses: Record<NodeId, string> = {}): void {
    const confState = this.deps.confState();
    const members = new Set([...confState.voters, ...(confState.learners ?? [])]);
    if (members.size > 0) for (const id of [...this.addresses.keys()]) if (id !== this.deps.self && !members.has(id)) this.addresses.delete(id);
    for (const [id, url] of Object.entries(addresses)) {
      if (members.has(id) && !this.addresses.has(id)) this.addresses.set(id, url);
    }
    this.publish();
  }

  /**
   * Where a client is sent to reach member `id` (a redirect to the leader; undefined: no redirect, the
   * client is told to retry): its announced client URL; without one, its member URL, unless this node has a
   * client URL of its own (it serves peers on a PEER_PORT, and so, presumably, does `id`, whose member URL is
   * then a peer port: a follower learns the leader's client URL from the leader's stream, before any of its
   * messages, but another follower's only once they exchange messages).
   */
  url(id: NodeId): string | undefined {
    const known = this.clientUrls.get(id);
    if (known !== undefined) return known;
    return this.clientUrls.has(this.deps.self) ? undefined : this.addresses.get(id);
  }

  /**
   * Hands the transport the members other than this node, with their URLs (when they changed): every member
   * of the configuration, and every node with a known address (a joining node knows the members from its
   * join answer before its configuration, which the leader's snapshot brings, names them).
   */
  publish(): void {
    const cs = this.deps.confState();
    const peers = new Map<NodeId, string>();
    for (const id of [...cs.voters, ...(cs.learners ?? [])]) {
      if (id === this.deps.self || this.addresses.has(id)) continue;
      this.deps.logger.warn(`${this.deps.self}: no address known for member ${id}; messages to it are dropped`);
    }
    for (const [id, url] of this.addresses) if (id !== this.deps.self) peers.set(id, url);
    const key = JSON.stringify([[...peers].sort(), [...this.removed].sort()]);
    if (key === this.published) return;
    this.published = key;
    this.deps.transport.setPeers(peers, new Map(this.removed));
  }

  /**
   * A committed ConfChange entry applies: the core's configuration, the directory, the transport. Returns
   * true when it added a member (who catches up from a snapshot: the node needs one to send).
   */
  apply(entry: Entry): boolean {
    let cc: ConfChange;
    try {
      cc = decodeConfChange(entry.data);
    } catch (error) {
      // Every replica decodes the same bytes the same way: skipping it keeps them all in step.
      this.deps.logger.error(`${this.deps.self}: skipping the undecodable membership change at ${entry.index}: ${(error as Error).message}`);
      return false;
    }
    const before = this.deps.confState();
    const after = this.deps.applyConfChange(cc);
    if (cc.type !== ConfChangeType.RemoveNode && cc.context) this.addresses.set(cc.nodeId, cc.context);
    const gone = !isMember(after, cc.nodeId);
    if (gone && cc.type === ConfChangeType.RemoveNode) this.removed.set(cc.nodeId, this.addresses.get(cc.nodeId) ?? '');
    else this.removed.delete(cc.nodeId); // added back (a removed node's NODE_ID may join again, with new data)
    if (gone && cc.nodeId !== this.deps.self) {
      this.addresses.delete(cc.nodeId);
      this.clientUrls.delete(cc.nodeId);
    }
    this.deps.logger.log(`${this.deps.self}: membership change at ${entry.index}: ${describe(cc)}; ${summary(before)} -> ${summary(after)}`);
    this.publish();
    // (A node that joined replays the removal of an earlier member of its name, then its own addition.)
    if (gone && cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.deps.self && entry.index > this.joinedAt) this.deps.onRemoved();
    return !isMember(before, cc.nodeId) && !gone;
  }

  /** The configuration to record in a snapshot: the core's, with the members' addresses. */
  snapshotConfState(): ConfState {
    const cs = this.deps.confState();
    const addresses: Record<NodeId, string> = {};
    for (const id of [...cs.voters, ...(cs.learners ?? [])]) {
      const url = this.addresses.get(id);
      if (url !== undefined) addresses[id] = url;
    }
    return { ...cs, addresses };
  }

  view(status: Status, lastContact: ReadonlyMap<NodeId, number>, now: number): MembersView {
    const cs = this.deps.confState();
    const leading = status.lead === this.deps.self && status.lead !== '';
    const twoUrls = this.clientUrls.has(this.deps.self);
    const info = (nodeId: NodeId, role: MemberInfo['role']): MemberInfo => {
      const url = this.addresses.get(nodeId);
      const m: MemberInfo = { nodeId, url, role, self: nodeId === this.deps.self };
      // Only where clients and peers have two URLs (PEER_PORT): without it, the view is as it always was.
      if (twoUrls) Object.assign(m, { peerUrl: url, clientUrl: this.url(nodeId) });
      const pr = status.progress[nodeId];
      if (leading && pr) {
        m.match = pr.match;
        const contact = lastContact.get(nodeId);
        if (!m.self && contact !== undefined) m.lastContactMs = now - contact;
      }
      return m;
    };
    const members = [...cs.voters.map((id) => info(id, 'voter')), ...(cs.learners ?? []).map((id) => info(id, 'learner'))];
    members.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
    return { leader: status.lead === '' ? null : status.lead, members };
  }

  /**
   * Proposes a planned change through `propose` (the core's proposeConfChange). The core refuses one while
   * another is in flight: that is MembershipChangeRefusedError unless leadership was lost meanwhile
   * (`assertLeader` throws the error for that).
   */
  propose(cc: ConfChange, propose: () => { index: number; term: number }, assertLeader: () => void): { index: number; term: number } {
    try {
      return propose();
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      assertLeader();
      throw new MembershipChangeRefusedError(`another membership change is in progress (${error.message}); ${describe(cc)} was not proposed`);
    }
  }

  /**
   * The ConfChange for a change asked of this node as leader, or MembershipChangeRefusedError saying why
   * it cannot be made now. `reachable(id)`: heard from within an election timeout.
   */
  plan(change: MembershipChange, status: Status, reachable: (id: NodeId) => boolean): ConfChange {
    const cs = this.deps.confState();
    const learners = cs.learners ?? [];
    const known = cs.voters.includes(change.nodeId) || learners.includes(change.nodeId);
    if (change.op === 'add') {
      if (known) throw new MembershipChangeRefusedError(`${change.nodeId} is already a member`);
      for (const [id, url] of this.addresses) {
        if (url === change.url && isMember(cs, id)) throw new MembershipChangeRefusedError(`${change.url} is already the URL of member ${id}`);
      }
      const type = change.learner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode;
      return { type, nodeId: change.nodeId, context: change.url };
    }
    if (!known) throw new MembershipChangeRefusedError(`${change.nodeId} is not a member of this cluster`, 404);
    if (change.op === 'promote') {
      if (!learners.includes(change.nodeId)) throw new MembershipChangeRefusedError(`${change.nodeId} is already a voter`);
      const pr = status.progress[change.nodeId];
      const lag = pr ? status.lastIndex - pr.match : Infinity;
      if (!pr || pr.state !== 'Replicate' || lag > PROMOTE_MAX_LAG) {
        throw new MembershipChangeRefusedError(
          `${change.nodeId} has not caught up yet (${pr ? `${lag} entries behind` : 'no progress known'}; promoted within ${PROMOTE_MAX_LAG})`,
        );
      }
      return { type: ConfChangeType.AddNode, nodeId: change.nodeId, context: this.addresses.get(change.nodeId) };
    }
    if (cs.voters.includes(change.nodeId)) {
      const left = cs.voters.filter((id) => id !== change.nodeId);
      if (left.length === 0) throw new MembershipChangeRefusedError(`${change.nodeId} is the last voter; a cluster needs one`);
      // From two voters to one, the voter left must learn that the removal committed before the removed one
      // stops, or it waits for that one's vote forever (a change takes effect when applied; the old
      // configuration needs both). Nothing guarantees it (a crash, a partition): refused, as etcd advises.
      if (left.length === 1) {
        throw new MembershipChangeRefusedError(
          `removing ${change.nodeId} would leave ${left[0]} as the only voter, which could then wait forever for ${change.nodeId}'s vote; add a member first (three voters, then remove)`,
        );
      }
      const up = left.filter((id) => id === this.deps.self || reachable(id)).length;
      const quorum = Math.floor(left.length / 2) + 1;
      if (up < quorum) {
        throw new MembershipChangeRefusedError(
          `removing ${change.nodeId} would leave ${left.length} voters of which ${up} are reachable; a quorum needs ${quorum}`,
        );
      }
    }
    return { type: ConfChangeType.RemoveNode, nodeId: change.nodeId };
  }
}

function isMember(cs: ConfState, id: NodeId): boolean {
  return cs.voters.includes(id) || (cs.learners ?? []).includes(id);
}

function describe(cc: ConfChange): string {
  const what = { [ConfChangeType.AddNode]: 'add voter', [ConfChangeType.AddLearnerNode]: 'add learner', [ConfChangeType.RemoveNode]: 'remove' }[cc.type];
  return `${what} ${cc.nodeId}${cc.context ? ` (${cc.context})` : ''}`;
}

function summary(cs: ConfState): string {
  const learners = cs.learners ?? [];
  return `voters [${cs.voters.join(', ')}]${learners.length > 0 ? ` learners [${learners.join(', ')}]` : ''}`;
}

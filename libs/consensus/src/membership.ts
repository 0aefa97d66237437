import { NodeId } from './core/types';

/**
 * The membership vocabulary of the node layer: what the admin API shows and asks for. A member is its
 * NODE_ID; its URL is where the others reach it.
 */

export type MemberRole = 'voter' | 'learner';

export interface MemberInfo {
  nodeId: NodeId;
  /** Where the members reach it (as this node knows it); undefined when this node has no address for it. */
  url?: string;
  /**
   * Set only on a node that serves peers on a PEER_PORT (its members have two URLs); without PEER_PORT, url
   * is both. peerUrl: the same as url, its member URL.
   */
  peerUrl?: string;
  /**
   * With peerUrl: where clients reach it (redirects point there), the client URL it announced with its peer
   * traffic; undefined while this node has not heard it (a follower hears another follower's only once they
   * exchange messages).
   */
  clientUrl?: string;
  role: MemberRole;
  /** This node. */
  self: boolean;
  /** On the leader: the last index known replicated on it. */
  match?: number;
  /** On the leader: milliseconds since a message from it was last received (undefined: never). */
  lastContactMs?: number;
}

export interface MembersView {
  /** The leader's NODE_ID, or null when none is known. */
  leader: NodeId | null;
  members: MemberInfo[];
}

/**
 * Optional on a PeerTransport: reports the client URL each member announces with its peer traffic (a member
 * serving peers on a PEER_PORT has two URLs; its member URL is the peer one). Learned at run time, never
 * persisted: only where clients are sent depends on it. The callback also gets this node's own, and every
 * URL already known when it is registered.
 */
export interface ClientUrlSource {
  onClientUrl(callback: (nodeId: NodeId, clientUrl: string) => void): void;
}

/** A change asked of the leader (the admin API's POST / DELETE /cluster/members). */
export type MembershipChange =
  | { op: 'add'; nodeId: NodeId; url: string; learner: boolean }
  | { op: 'promote'; nodeId: NodeId }
  | { op: 'remove'; nodeId: NodeId };

/**
 * The leader refused a membership change before proposing it: another change is pending, the id or URL is
 * in use, the learner has not caught up, a removal would leave too few reachable voters. Answered 409
 * (404 for an unknown member) with the message.
 */
export class MembershipChangeRefusedError extends Error {
  constructor(
    readonly reason: string,
    readonly status: 404 | 409 = 409,
  ) {
    super(reason);
    this.name = 'MembershipChangeRefusedError';
  }
}

/** This node was removed from the cluster: it takes part no longer (answered 410). */
export class RemovedFromClusterError extends Error {
  constructor() {
    super('Removed from the cluster');
    this.name = 'RemovedFromClusterError';
  }
}

/** What a node knows of its cluster from its data directory (or, at first start, from discovery or a join). */
export interface ClusterIdentity {
  /** Created when the cluster bootstrapped; every member records it, and refuses peers with another. */
  clusterId: string;
  /** This node's NODE_ID. */
  nodeId: NodeId;
  /**
   * The voters the cluster bootstrapped with: the configuration its log starts from (before any ConfChange
   * entry). A joining node starts from them too, so that replaying the log rebuilds the configuration.
   */
  initialVoters: NodeId[];
  /** Where this node reaches each member it knows at start (its own URL included). */
  addresses: Record<NodeId, string>;
  /**
   * For a node that joined (JOIN): the index of the entry that added it. Entries before it that remove its
   * NODE_ID concern an earlier member of that name (removed, then added back with new data): not this node.
   */
  joinedAt?: number;
}

export const CLUSTER_BOOTSTRAP = Symbol('CLUSTER_BOOTSTRAP');

/** Finds and records this node's ClusterIdentity before the Raft node starts (production: libs/cluster-rpc). */
export interface ClusterBootstrap {
  /**
   * The identity recorded in the data directory; at first start, the one found by discovery (PEER_URLS: ask
   * each peer its NODE_ID) or granted by a join (JOIN), recorded durably before it resolves. Rejects with a
   * one-line reason when the directory belongs to another node or cluster, or the node was removed.
   */
  resolve(): Promise<ClusterIdentity>;
  /** What resolve() settled on; undefined before it resolved. */
  readonly identity: ClusterIdentity | undefined;
}

/** Body of `POST /cluster/members` (a join is one: the new node asks for itself). */
export interface AddMemberRequest {
  nodeId: NodeId;
  /** Where members reach it; when absent, `http://<the caller's address>:<port>`. */
  url?: string;
  port?: number;
  /** Default true: a new member starts as a learner, promoted once caught up. */
  learner?: boolean;
}

/** Answer of `POST /cluster/members`: what a joining node needs to start. */
export interface AddMemberAnswer {
  clusterId: string;
  /** Index of the committed ConfChange entry. */
  index: number;
  initialVoters: NodeId[];
  member: MemberInfo;
  members: MemberInfo[];
}

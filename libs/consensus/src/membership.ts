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

/**
 * What the admin API uses of the consensus library beyond its ports: the Raft node (injected by its class,
 * RaftNode, which the consensus module exports) and the errors it rejects with. Kept in one file so that the
 * dependency on the node layer is in one place.
 */
import {
  NoLeaderError,
  NotLeaderError,
  OverloadedError,
  ProposalLostError,
  ProposalRejectedError,
  ShuttingDownError,
  StorageFullError,
} from '@app/consensus';
import type { MembersView, MembershipChange } from '@app/consensus';

export { NoLeaderError, NotLeaderError, ProposalTimeoutError, RaftNode } from '@app/consensus';

/**
 * The node's errors that any request to the leader may meet, answered as for `PUT /kv`: the redirect to the
 * leader (307), and the refusals that leave nothing proposed (503, `outcome: "failed"`; 507 from a node whose
 * disk is full).
 */
export const LEADER_ERRORS = [
  NotLeaderError,
  NoLeaderError,
  ProposalLostError,
  ProposalRejectedError,
  ShuttingDownError,
  OverloadedError,
  StorageFullError,
];
export { CLUSTER_BOOTSTRAP, MembershipChangeRefusedError, RemovedFromClusterError } from '@app/consensus';
export type {
  AddMemberAnswer,
  AddMemberRequest,
  ClusterBootstrap,
  ClusterIdentity,
  MemberInfo,
  MemberRole,
  MembersView,
  MembershipChange,
} from '@app/consensus';

/** The part of RaftNode the admin API calls (unit tests hand in a fake with just these). */
export interface MembershipNode {
  /**
   * Leader only: proposes the change and resolves once its ConfChange entry is committed and applied on this
   * node. Rejects with NotLeaderError, NoLeaderError, MembershipChangeRefusedError, ProposalTimeoutError or
   * RemovedFromClusterError.
   */
  changeMembership(change: MembershipChange): Promise<{ index: number }>;
  /** The configuration this node has applied; on the leader with each member's match and last contact. */
  members(): MembersView;
  /** The last index applied on this node. */
  readonly applied: number;
}

/** Injection token of the ClusterAdminModule's options. */
export const CLUSTER_ADMIN_OPTIONS = Symbol('CLUSTER_ADMIN_OPTIONS');

export interface ClusterAdminOptions {
  /** This node's advertised URL (ADVERTISE_URL). */
  self: string;
  /** This node's NODE_ID. */
  name: string;
  /** Every member's URL, this node's included: each one is asked for its `GET /status`. */
  members: string[];
  /**
   * How long one member may take to answer before it is reported unreachable (about one election timeout:
   * a member that cannot answer within it is also one its peers would consider gone).
   */
  timeoutMs: number;
}

/** Injection token of the ClusterAdminModule's options. */
export const CLUSTER_ADMIN_OPTIONS = Symbol('CLUSTER_ADMIN_OPTIONS');

export interface ClusterAdminOptions {
  /**
   * How long one member may take to answer before it is reported unreachable (about one election timeout:
   * a member that cannot answer within it is also one its peers would consider gone).
   */
  timeoutMs: number;
  /** CLUSTER_TOKEN: when set, `/cluster/members` needs `Authorization: Bearer <it>` (or an admin API token). */
  token?: string;
  /**
   * With API_TOKENS_FILE: the role of a bearer token (`read`, `readwrite`, `admin`), undefined for an unknown
   * one. An `admin` token is accepted on `/cluster/members` as well as CLUSTER_TOKEN.
   */
  apiTokenRole?: (token: string) => string | undefined;
}

import { PeerStreamLimits } from './peer-stream';
import type { PeerTls } from './peer-tls';

export const CLUSTER_RPC_OPTIONS = Symbol('CLUSTER_RPC_OPTIONS');

export interface ClusterRpcOptions {
  /** This node's NODE_ID: its identity in the cluster, announced on every peer request (x-raft-from). */
  nodeId: string;
  /** Where the other members reach this node (ADVERTISE_URL, or http://localhost:HTTP_PORT): an address only. */
  advertiseUrl: string;
  /**
   * ADVERTISE_URL was set. A joining node then asks to be recorded at advertiseUrl; otherwise the member it
   * asks records the address the request came from, with `httpPort`.
   */
  advertiseUrlGiven?: boolean;
  /** HTTP_PORT (for a join without ADVERTISE_URL, when advertiseUrl names no port). */
  httpPort: number;
  /**
   * Where clients reach this node, when that differs from advertiseUrl (PEER_PORT: advertiseUrl is then the
   * peer URL). Announced to the peers with every peer request (ClientUrls); ClientUrls.setOwn() sets it too.
   */
  clientUrl?: string;
  /** PEER_URLS: whom to ask their NODE_ID at first start (discovery). May include this node, by any spelling. */
  peerUrls: string[];
  /** JOIN: a member's URL; at first start the node asks that cluster to add it instead of discovering. */
  join?: string;
  /** Shared secret of the cluster; when set, peers must present it (and discovery and joins present it). */
  token?: string;
  /**
   * Who may open a peer stream (PeerAdmission): by default only the members' addresses. `allowAny` turns the
   * check off (PEER_ALLOW_ANY); `allowedAddresses` adds addresses and CIDR ranges (PEER_ALLOWED_ADDRESSES).
   */
  admission?: { allowAny?: boolean; allowedAddresses?: string[] };
  /** An outgoing stream with no sign of life from its peer for this long is torn down and reopened. */
  stallTimeoutMs: number;
  /**
   * A snapshot transfer (either way) with no progress for this long is cut: no bytes read or written, no
   * answer. Default 30 s. It also bounds the wait for the receiver to verify the file once all is sent.
   */
  snapshotStallTimeoutMs?: number;
  limits?: Partial<PeerStreamLimits>;
  /**
   * TLS towards peers (and, with a CA, the client-certificate check on the peer routes). When the options'
   * factory leaves it out, the globally provided PEER_TLS (PeerTlsModule) is used, if any.
   */
  tls?: PeerTls;
  /**
   * Pace of discovery (tests shorten it): a peer that has not answered is asked again every `retryMs`
   * (default 500), each request bounded by `requestTimeoutMs` (default 2000); the peers still missing are
   * logged every `logEveryMs` (default 5000).
   */
  discovery?: { retryMs?: number; requestTimeoutMs?: number; logEveryMs?: number };
}

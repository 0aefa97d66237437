/** The wire contract between members, shared by the client (HttpPeerTransport) and the server (PeerController). */

export const PEER_MESSAGES_PATH = '/raft/messages';

/** Request headers every peer request carries (lower case, as Node presents them). */
export const PEER_HEADERS = {
  /** The sender's advertised URL: its member identity. */
  from: 'x-raft-from',
  /** The sender's NODE_ID. */
  nodeId: 'x-raft-node-id',
  /** Fingerprint of the sender's member set. */
  clusterId: 'x-raft-cluster-id',
} as const;

/** Why a peer request was refused: answered as `status` with `{ "error": error }`. */
export interface PeerRejection {
  status: number;
  error: string;
}

/** The wire contract between members, shared by the client (PeerStream) and the server (PeerController). */

/** Each member holds one long-lived POST here to each peer; its chunked body is a stream of frames (frame.ts). */
export const PEER_STREAM_PATH = '/raft/stream';

/**
 * Fastify route config marking a route whose body is an endless stream consumed by the handler itself: the
 * application's request-body limit (a bound for client requests) must not apply to it.
 */
export const STREAMED_BODY_ROUTE = { streamedBody: true } as const;
export const PEER_STREAM_CONTENT_TYPE = 'application/x-raft-stream';

/**
 * A snapshot transfer: one POST per snapshot, on its own connection, whose body is one frame holding the
 * MsgSnap followed by the snapshot file's bytes. Answered once the file is received and verified.
 */
export const PEER_SNAPSHOT_PATH = '/raft/snapshot';
export const PEER_SNAPSHOT_CONTENT_TYPE = 'application/x-raft-snapshot';
/** The leading frame of a snapshot transfer holds one MsgSnap without data: a longer one is refused. */
export const MAX_SNAPSHOT_FRAME = 1024 * 1024;

/** The receiver writes a pong byte this often on the answer of an open stream: the sender's sign of life. */
export const PONG_INTERVAL_MS = 100;

/** Request headers every stream (and snapshot) request carries (lower case, as Node presents them). */
export const PEER_HEADERS = {
  /** The sender's advertised URL: its member identity. */
  from: 'x-raft-from',
  /** The sender's NODE_ID. */
  nodeId: 'x-raft-node-id',
  /** Fingerprint of the sender's member set. */
  clusterId: 'x-raft-cluster-id',
} as const;

/** Why a stream or a snapshot transfer was refused: answered as `status` with `{ "error": error }`. */
export interface PeerRejection {
  status: number;
  error: string;
}

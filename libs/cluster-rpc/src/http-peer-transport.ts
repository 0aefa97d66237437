import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Message, MessageReceiver, NodeId, PeerTransport } from '@app/consensus';
import { Pool } from 'undici';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { decodeMessages } from './message-codec';
import { PeerQueue, PeerQueueLimits } from './peer-queue';
import { PEER_HEADERS, PEER_MESSAGES_PATH, PeerRejection } from './peer-protocol';

export const CLUSTER_RPC_OPTIONS = Symbol('CLUSTER_RPC_OPTIONS');

export interface ClusterRpcOptions {
  /** This node's advertised URL (its member identity). */
  self: NodeId;
  /** This node's NODE_ID, announced to peers. */
  name: string;
  /** The other members' URLs. */
  peers: NodeId[];
  /** Fingerprint of the member set; a peer with another one is refused. */
  clusterId: string;
  /** Shared secret of the cluster; when set, peers must present it. */
  token?: string;
  /** Timeout of one peer request. */
  requestTimeoutMs: number;
  limits?: Partial<PeerQueueLimits>;
}

const DEFAULT_LIMITS: PeerQueueLimits = {
  maxQueuedMessages: 10_000,
  maxQueuedBytes: 64 * 1024 * 1024,
  maxBatchBytes: 4 * 1024 * 1024,
  minBackoffMs: 20,
  maxBackoffMs: 500,
};

/** Log a repeating problem with one peer at most this often. */
const LOG_EVERY_MS = 30_000;

/** A peer answered, but not with 204: it refused the batch (the body says why). */
class PeerRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`peer answered ${status}: ${body}`);
    this.name = 'PeerRefusedError';
  }
}

/**
 * Raft messages over HTTP: POST {peer}{PEER_MESSAGES_PATH} with a binary batch (message-codec.ts), through an
 * undici keep-alive pool per peer. One PeerQueue per peer; inbound batches arrive through PeerController
 * and are checked (cluster id, membership, duplicate NODE_ID) before the node sees them.
 *
 * The client is undici rather than @nestjs/axios because this is the hottest path of the node (every write
 * costs a request to each follower and one back): measured on this machine, an axios POST cost about 540 us
 * of CPU against 155 us for undici (docs/benchmarks.md).
 */
@Injectable()
export class HttpPeerTransport implements PeerTransport, OnModuleDestroy {
  private readonly logger = new Logger('ClusterRpc');
  private receiver?: MessageReceiver;
  private unreachable: (peer: NodeId) => void = () => undefined;
  private readonly queues = new Map<NodeId, PeerQueue>();
  private readonly pools = new Map<NodeId, Pool>();
  private readonly names = new Map<NodeId, string>();
  private readonly lastLogged = new Map<string, number>();
  private readonly headers: Record<string, string>;

  constructor(
    @Inject(CLUSTER_RPC_OPTIONS) private readonly options: ClusterRpcOptions,
    private readonly metrics: ClusterRpcMetrics,
  ) {
    this.headers = {
      'content-type': 'application/octet-stream',
      [PEER_HEADERS.from]: options.self,
      [PEER_HEADERS.nodeId]: options.name,
      [PEER_HEADERS.clusterId]: options.clusterId,
    };
    if (options.token) this.headers.authorization = `Bearer ${options.token}`;
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    for (const peer of options.peers) {
      // One request is in flight per peer (PeerQueue), so one connection carries it; keep-alive reuses it.
      this.pools.set(
        peer,
        new Pool(peer, {
          connections: 1,
          keepAliveTimeout: 60_000,
          connect: { timeout: options.requestTimeoutMs },
          headersTimeout: options.requestTimeoutMs,
          bodyTimeout: options.requestTimeoutMs,
        }),
      );
      this.queues.set(
        peer,
        new PeerQueue(peer, (to, body) => this.post(to, body), limits, {
          unreachable: (to, error) => this.onFailure(to, error),
          dropped: (to, count) => this.metrics.dropped(to, count),
          delivered: (to, messages, bytes) => this.metrics.delivered(to, messages, bytes),
        }),
      );
    }
  }

  listen(receiver: MessageReceiver): void {
    this.receiver = receiver;
  }

  onUnreachable(callback: (peer: NodeId) => void): void {
    this.unreachable = callback;
  }

  peerName(peer: NodeId): string | undefined {
    return this.names.get(peer);
  }

  send(messages: Message[]): void {
    if (messages.length === 1) {
      this.queues.get(messages[0].to)?.push(messages);
      return;
    }
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [peer, list] of byPeer) this.queues.get(peer)?.push(list);
  }

  /**
   * Checks and delivers a batch a peer sent. Returns a rejection (for PeerController to answer with) when
   * the sender does not belong to this cluster.
   */
  deliver(headers: Record<string, string | string[] | undefined>, body: Buffer): PeerRejection | undefined {
    const from = String(headers[PEER_HEADERS.from] ?? '');
    const name = String(headers[PEER_HEADERS.nodeId] ?? '');
    const clusterId = String(headers[PEER_HEADERS.clusterId] ?? '');
    if (clusterId !== this.options.clusterId) {
      const error =
        `cluster mismatch: ${name || '?'} (${from || '?'}) is configured for cluster ${clusterId || '?'}, ` +
        `this node for ${this.options.clusterId} (members ${[this.options.self, ...this.options.peers].sort().join(', ')}); ` +
        `check PEER_URLS and ADVERTISE_URL on both nodes`;
      this.warnOnce(`cluster:${from}`, error);
      return { status: 409, error };
    }
    if (!this.queues.has(from)) {
      const error = `${from || 'the sender'} is not a member of this cluster`;
      this.warnOnce(`member:${from}`, error);
      return { status: 403, error };
    }
    if (name === this.options.name) {
      const error = `duplicate NODE_ID: ${from} and this node (${this.options.self}) are both '${name}'; give every node its own NODE_ID`;
      this.warnOnce(`dup:${from}`, error);
      return { status: 409, error };
    }
    const known = this.names.get(from);
    if (known !== name) {
      for (const [peer, other] of this.names) {
        if (peer !== from && other === name) this.warnOnce(`dup:${from}`, `two peers claim NODE_ID '${name}': ${peer} and ${from}`);
      }
      this.names.set(from, name);
    }
    const messages = decodeMessages(body);
    for (const m of messages) {
      // A member speaks only for itself.
      if (m.from !== from || m.to !== this.options.self) {
        return { status: 400, error: `message from ${m.from} to ${m.to} does not match the request's sender and recipient` };
      }
    }
    this.metrics.received(from, messages.length, body.length);
    this.receiver?.(messages);
    return undefined;
  }

  async onModuleDestroy(): Promise<void> {
    for (const queue of this.queues.values()) queue.close();
    await Promise.all([...this.pools.values()].map((pool) => pool.destroy()));
  }

  private async post(peer: NodeId, body: Buffer): Promise<void> {
    const response = await this.pools.get(peer)!.request({
      method: 'POST',
      path: PEER_MESSAGES_PATH,
      headers: this.headers,
      body,
    });
    const text = await response.body.text();
    // Any answer but 204 is a failure; the body of 4xx answers says why (logged by onFailure).
    if (response.statusCode !== 204) throw new PeerRefusedError(response.statusCode, text);
  }

  private onFailure(peer: NodeId, error: Error): void {
    this.metrics.failed(peer);
    if (error instanceof PeerRefusedError && error.status !== 503) {
      this.warnOnce(`rejected:${peer}`, `peer ${peer} refused our messages (${error.status}): ${error.body}`);
    } else {
      this.debugOnce(`down:${peer}`, `peer ${peer} unreachable: ${error.message}`);
    }
    this.unreachable(peer);
  }

  private warnOnce(key: string, message: string): void {
    if (this.due(key)) this.logger.error(message);
  }

  private debugOnce(key: string, message: string): void {
    if (this.due(key)) this.logger.warn(message);
  }

  private due(key: string): boolean {
    const now = Date.now();
    const last = this.lastLogged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return false;
    this.lastLogged.set(key, now);
    return true;
  }
}

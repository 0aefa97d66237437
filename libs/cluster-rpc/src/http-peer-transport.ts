import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Message, NodeId } from '@app/consensus/core';
import { MessageReceiver, PeerTransport } from '@app/consensus/ports';
import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { FrameDecoder, PONG } from './frame';
import { decodeMessages } from './message-codec';
import { PEER_HEADERS, PeerRejection, PONG_INTERVAL_MS } from './peer-protocol';
import { PeerStream, PeerStreamLimits } from './peer-stream';

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
  /**
   * Who may open a peer stream (PeerAdmission): by default only the members' addresses. `allowAny` turns the
   * check off (PEER_ALLOW_ANY); `allowedAddresses` adds addresses and CIDR ranges (PEER_ALLOWED_ADDRESSES).
   */
  admission?: { allowAny?: boolean; allowedAddresses?: string[] };
  /** An outgoing stream with no sign of life from its peer for this long is torn down and reopened. */
  stallTimeoutMs: number;
  limits?: Partial<PeerStreamLimits>;
}

const DEFAULT_LIMITS: PeerStreamLimits = {
  maxQueuedMessages: 10_000,
  maxQueuedBytes: 64 * 1024 * 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxFrameBytes: 4 * 1024 * 1024,
  minBackoffMs: 20,
  maxBackoffMs: 500,
};

/** Log a repeating problem with one peer at most this often. */
const LOG_EVERY_MS = 30_000;

/**
 * Raft messages between members over HTTP streams (docs/cluster-rpc.md): to each peer, one long-lived
 * `POST /raft/stream` whose chunked body carries frames of messages (PeerStream); from each peer, one such
 * stream served by PeerController and read here. A stream is admitted once, when it opens: right cluster,
 * a member, not this node's NODE_ID.
 *
 * Why streams rather than a request per batch: on this kind of machine every HTTP exchange costs a few
 * hundred microseconds of CPU in syscalls and parsing, and a node exchanged about ten per client write.
 * A frame on an open stream costs one write on one side and one read on the other (docs/benchmarks.md).
 */
@Injectable()
export class HttpPeerTransport implements PeerTransport, OnModuleDestroy {
  private readonly logger = new Logger('ClusterRpc');
  private receiver?: MessageReceiver;
  private unreachable: (peer: NodeId) => void = () => undefined;
  private readonly streams = new Map<NodeId, PeerStream>();
  /** How to close the inbound stream being served from each sender, so that a newer one can replace it. */
  private readonly inbound = new Map<NodeId, () => void>();
  private readonly names = new Map<NodeId, string>();
  private readonly lastLogged = new Map<string, number>();

  constructor(
    @Inject(CLUSTER_RPC_OPTIONS) private readonly options: ClusterRpcOptions,
    private readonly metrics: ClusterRpcMetrics,
  ) {
    const headers: Record<string, string> = {
      [PEER_HEADERS.from]: options.self,
      [PEER_HEADERS.nodeId]: options.name,
      [PEER_HEADERS.clusterId]: options.clusterId,
    };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    for (const peer of options.peers) {
      this.streams.set(
        peer,
        new PeerStream(peer, headers, options.stallTimeoutMs, limits, {
          unreachable: (to, error) => this.onLost(to, error),
          refused: (to, status, body) =>
            this.errorOnce(`refused:${to}`, `peer ${to} refused our messages (${status}): ${body}`),
          dropped: (to, count) => this.metrics.dropped(to, count),
          sent: (to, messages, bytes) => this.metrics.sent(to, messages, bytes),
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
      this.streams.get(messages[0].to)?.send(messages);
      return;
    }
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [peer, list] of byPeer) this.streams.get(peer)?.send(list);
  }

  /**
   * Decides whether a stream a peer opens is admitted. Returns the sender's identity, or a rejection (for
   * PeerController to answer with) when the sender does not belong to this cluster.
   */
  admit(headers: Record<string, string | string[] | undefined>): { from: NodeId } | PeerRejection {
    const from = String(headers[PEER_HEADERS.from] ?? '');
    const name = String(headers[PEER_HEADERS.nodeId] ?? '');
    const clusterId = String(headers[PEER_HEADERS.clusterId] ?? '');
    if (clusterId !== this.options.clusterId) {
      const error =
        `cluster mismatch: ${name || '?'} (${from || '?'}) is configured for cluster ${clusterId || '?'}, ` +
        `this node for ${this.options.clusterId} (members ${[this.options.self, ...this.options.peers].sort().join(', ')}); ` +
        `check PEER_URLS and ADVERTISE_URL on both nodes`;
      this.errorOnce(`cluster:${from}`, error);
      return { status: 409, error };
    }
    if (!this.streams.has(from)) {
      const error = `${from || 'the sender'} is not a member of this cluster`;
      this.errorOnce(`member:${from}`, error);
      return { status: 403, error };
    }
    if (name === this.options.name) {
      const error = `duplicate NODE_ID: ${from} and this node (${this.options.self}) are both '${name}'; give every node its own NODE_ID`;
      this.errorOnce(`dup:${from}`, error);
      return { status: 409, error };
    }
    if (this.names.get(from) !== name) {
      for (const [peer, other] of this.names) {
        if (peer !== from && other === name) this.errorOnce(`dup:${from}`, `two peers claim NODE_ID '${name}': ${peer} and ${from}`);
      }
      this.names.set(from, name);
    }
    return { from };
  }

  /**
   * Serves an admitted stream: answers 200 with a pong at a fixed interval, and delivers every frame of the
   * body to the node. A newer stream from the same sender replaces this one (the sender opens a new one only
   * when it gave the old one up). A malformed frame ends the stream.
   */
  serve(from: NodeId, body: Readable, response: ServerResponse): void {
    this.inbound.get(from)?.();
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
    response.write(PONG);
    const pong = setInterval(() => response.write(PONG), PONG_INTERVAL_MS);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(pong);
      if (this.inbound.get(from) === close) this.inbound.delete(from);
      body.destroy();
      response.destroy();
    };
    this.inbound.set(from, close);
    const decoder = new FrameDecoder((frame) => this.deliver(from, frame));
    body.on('data', (chunk: Buffer) => {
      if (closed) return;
      try {
        decoder.push(chunk);
      } catch (error) {
        this.errorOnce(`frame:${from}`, `closing the stream from ${from}: ${(error as Error).message}`);
        close();
      }
    });
    body.on('end', close);
    body.on('error', close);
    body.on('close', close);
    response.on('close', close);
  }

  /** Decodes one frame and hands its messages to the node. Throws on a malformed frame. */
  private deliver(from: NodeId, frame: Buffer): void {
    const messages = decodeMessages(frame);
    for (const m of messages) {
      // A member speaks only for itself.
      if (m.from !== from || m.to !== this.options.self) {
        throw new Error(`message from ${m.from} to ${m.to} does not match the stream's sender and recipient`);
      }
    }
    this.metrics.received(from, messages.length, frame.length);
    this.receiver?.(messages);
  }

  onModuleDestroy(): void {
    for (const stream of this.streams.values()) stream.close();
    for (const close of [...this.inbound.values()]) close();
  }

  private onLost(peer: NodeId, error: Error): void {
    this.metrics.failed(peer);
    this.warnOnce(`down:${peer}`, `stream to ${peer} lost: ${error.message}`);
    this.unreachable(peer);
  }

  private errorOnce(key: string, message: string): void {
    if (this.due(key)) this.logger.error(message);
  }

  private warnOnce(key: string, message: string): void {
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

import { Inject, Injectable, Logger, OnModuleDestroy, Optional } from '@nestjs/common';
import { Message, MessageType, NodeId } from '@app/consensus/core';
import { MessageReceiver, PeerTransport, SNAPSHOT_FILES, SnapshotFiles } from '@app/consensus/ports';
import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { ClusterRpcMetrics, SnapshotSentOutcome } from './cluster-rpc.metrics';
import { FrameDecoder, PONG } from './frame';
import { decodeMessages } from './message-codec';
import { PEER_HEADERS, PeerRejection, PONG_INTERVAL_MS } from './peer-protocol';
import { PeerStream, PeerStreamLimits } from './peer-stream';
import { IncomingSnapshot, SnapshotTransferError } from './snapshot-receiver';
import { SnapshotSource, SnapshotTransfer, SnapshotTransferResult } from './snapshot-transfer';

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
  /**
   * A snapshot transfer (either way) with no progress for this long is cut: no bytes read or written, no
   * answer. Default 30 s. It also bounds the wait for the receiver to verify the file once all is sent.
   */
  snapshotStallTimeoutMs?: number;
  limits?: Partial<PeerStreamLimits>;
}

/** An answer of the snapshot route: 200 `{index, term}`, or 400 / 503 `{error}`. */
export interface SnapshotAnswer {
  status: number;
  body: { index: number; term: number } | { error: string };
}

export const DEFAULT_SNAPSHOT_STALL_TIMEOUT_MS = 30_000;

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
 * a member, not this node's NODE_ID. A MsgSnap's snapshot file travels apart, one `POST /raft/snapshot` per
 * transfer on a connection of its own (SnapshotTransfer out, IncomingSnapshot in), so that a transfer of
 * hundreds of MB never holds up the stream.
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
  private snapshotStatus: (peer: NodeId, failed: boolean) => void = () => undefined;
  /** The snapshot transfer in flight to each peer (at most one). */
  private readonly outgoingSnapshots = new Map<NodeId, SnapshotTransfer>();
  /** Transfers replaced by a newer one to the same peer: their end is counted but not reported to the core. */
  private readonly superseded = new WeakSet<SnapshotTransfer>();
  /** The snapshot transfer being received from each sender (at most one). */
  private readonly incomingSnapshots = new Map<NodeId, IncomingSnapshot>();
  private readonly headers: Record<string, string>;
  private readonly snapshotStallTimeoutMs: number;
  private stopped = false;

  constructor(
    @Inject(CLUSTER_RPC_OPTIONS) private readonly options: ClusterRpcOptions,
    private readonly metrics: ClusterRpcMetrics,
    /** Where snapshot files are read from and written to; without it, snapshots are neither sent nor received. */
    @Optional() @Inject(SNAPSHOT_FILES) private readonly snapshotFiles?: SnapshotFiles,
  ) {
    this.snapshotStallTimeoutMs = options.snapshotStallTimeoutMs ?? DEFAULT_SNAPSHOT_STALL_TIMEOUT_MS;
    const headers: Record<string, string> = {
      [PEER_HEADERS.from]: options.self,
      [PEER_HEADERS.nodeId]: options.name,
      [PEER_HEADERS.clusterId]: options.clusterId,
    };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    this.headers = headers;
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    metrics.knowPeers(options.peers);
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

  onSnapshotStatus(callback: (peer: NodeId, failed: boolean) => void): void {
    this.snapshotStatus = callback;
  }

  /** Sends messages on the peers' streams, except MsgSnap: each becomes a snapshot transfer of its own. */
  send(messages: Message[]): void {
    if (messages.length === 1) {
      const m = messages[0];
      if (m.type === MessageType.MsgSnap) this.sendSnapshot(m);
      else this.streams.get(m.to)?.send(messages);
      return;
    }
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      if (m.type === MessageType.MsgSnap) {
        this.sendSnapshot(m);
        continue;
      }
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [peer, list] of byPeer) this.streams.get(peer)?.send(list);
  }

  /**
   * Starts the transfer of a MsgSnap's snapshot file to its recipient (docs/cluster-rpc.md, "Snapshot
   * transfers"), replacing the one in flight to that peer, if any. Every MsgSnap gets exactly one
   * onSnapshotStatus outcome, never from within send(), except one replaced by a newer MsgSnap to the same
   * peer: the core tracks one snapshot per follower, and a late failure of the replaced one would make it give
   * up the newer one too (then send another, replacing it in turn).
   */
  private sendSnapshot(m: Message): void {
    const peer = m.to;
    const replaced = this.outgoingSnapshots.get(peer);
    if (replaced) {
      this.superseded.add(replaced);
      replaced.abort(new Error('a newer snapshot transfer to the same peer replaced it'));
    }
    const metadata = m.snapshot?.metadata;
    if (this.stopped || !this.streams.has(peer) || !metadata) {
      this.reportSnapshot(peer, 'unavailable');
      return;
    }
    if (!this.snapshotFiles) {
      this.errorOnce('snapshot-files', `cannot send snapshot ${metadata.index} to ${peer}: no snapshot storage (SNAPSHOT_FILES) is bound`);
      this.reportSnapshot(peer, 'unavailable');
      return;
    }
    let source: SnapshotSource | undefined;
    try {
      source = this.snapshotFiles.openForSending(metadata.index, metadata.term);
    } catch (error) {
      this.errorOnce(`snap-out:${peer}`, `cannot open snapshot ${metadata.index} for ${peer}: ${(error as Error).message}`);
      this.reportSnapshot(peer, 'failed');
      return;
    }
    if (!source) {
      this.warnOnce(
        `snap-out:${peer}`,
        `snapshot ${metadata.index} (term ${metadata.term}) for ${peer} no longer exists (a newer one replaced it); the leader will send that one`,
      );
      this.reportSnapshot(peer, 'unavailable');
      return;
    }
    this.logger.log(`sending snapshot ${metadata.index} (${source.size} bytes) to ${peer}`);
    const transfer: SnapshotTransfer = new SnapshotTransfer(peer, m, source, this.headers, this.snapshotStallTimeoutMs, {
      progress: (bytes) => this.metrics.snapshotBytesOut(peer, bytes),
      done: (result) => this.onSnapshotSent(transfer, result),
    });
    this.outgoingSnapshots.set(peer, transfer);
    transfer.start();
  }

  private onSnapshotSent(transfer: SnapshotTransfer, result: SnapshotTransferResult): void {
    const { peer, index } = transfer;
    if (this.outgoingSnapshots.get(peer) === transfer) this.outgoingSnapshots.delete(peer);
    const took = `${result.seconds.toFixed(1)}s`;
    if (!result.failed) {
      this.logger.log(`sent snapshot ${index} (${result.bytes} bytes) to ${peer} in ${took}`);
      this.reportSnapshot(peer, 'ok', result.seconds);
      return;
    }
    const why = `sending snapshot ${index} to ${peer} ${result.aborted ? 'aborted' : 'failed'} after ${result.bytes} of ${transfer.size} bytes, ${took}: ${result.error?.message}`;
    this.warnOnce(`snap-out:${peer}`, why);
    if (this.superseded.delete(transfer)) {
      this.metrics.snapshotSent(peer, 'aborted');
      return;
    }
    this.reportSnapshot(peer, result.aborted ? 'aborted' : 'failed');
  }

  /** Counts an outcome and reports it to the core on a later turn (never re-entering the caller of send()). */
  private reportSnapshot(peer: NodeId, outcome: SnapshotSentOutcome, seconds?: number): void {
    this.metrics.snapshotSent(peer, outcome, seconds);
    setImmediate(() => this.snapshotStatus(peer, outcome !== 'ok'));
  }

  /**
   * Decides whether a stream or snapshot transfer a peer opens is admitted. Returns the sender's identity, or
   * a rejection (for PeerController to answer with) when the sender does not belong to this cluster.
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

  /**
   * Receives an admitted snapshot transfer (the body of `POST /raft/snapshot`): writes the file, has it
   * verified, and only then hands its MsgSnap to the node. Resolves with the answer to give (never rejects).
   * A newer transfer from the same sender cuts this one.
   */
  async receiveSnapshot(from: NodeId, body: Readable): Promise<SnapshotAnswer> {
    const refuse = (error: string): SnapshotAnswer => {
      this.metrics.snapshotReceived(from, 'failed');
      return { status: 503, body: { error } };
    };
    if (!this.snapshotFiles) {
      this.errorOnce('snapshot-files', `refused a snapshot from ${from}: no snapshot storage (SNAPSHOT_FILES) is bound`);
      return refuse('this node has no snapshot storage');
    }
    if (!this.receiver || this.stopped) return refuse('this node is not running');
    this.incomingSnapshots.get(from)?.cancel(new Error('a newer snapshot transfer from the same sender replaced it'));
    const incoming = new IncomingSnapshot(body, this.snapshotFiles, {
      accept: (messages) => this.acceptSnapshotMessage(from, messages),
      stallTimeoutMs: this.snapshotStallTimeoutMs,
      progress: (bytes) => this.metrics.snapshotBytesIn(from, bytes),
    });
    this.incomingSnapshots.set(from, incoming);
    const started = Date.now();
    try {
      const { message, metadata, bytes } = await incoming.receive();
      const seconds = (Date.now() - started) / 1000;
      this.metrics.snapshotReceived(from, 'ok', seconds);
      this.logger.log(`received snapshot ${metadata.index} from ${from} (${bytes} bytes, ${seconds.toFixed(1)}s)`);
      this.receiver([message]);
      return { status: 200, body: { index: metadata.index, term: metadata.term } };
    } catch (error) {
      const e = error instanceof SnapshotTransferError ? error : new SnapshotTransferError(503, String(error));
      this.metrics.snapshotReceived(from, e.status === 400 ? 'invalid' : 'failed');
      const line = `receiving a snapshot from ${from} failed: ${e.message}`;
      if (e.status === 400) this.errorOnce(`snap-in:${from}`, line);
      else this.warnOnce(`snap-in:${from}`, line);
      return { status: e.status, body: { error: e.message } };
    } finally {
      if (this.incomingSnapshots.get(from) === incoming) this.incomingSnapshots.delete(from);
    }
  }

  /** The leading frame of a transfer holds exactly one MsgSnap, from the admitted sender to this node. */
  private acceptSnapshotMessage(from: NodeId, messages: Message[]): Message {
    if (messages.length !== 1 || messages[0].type !== MessageType.MsgSnap) {
      throw new Error(`expected one MsgSnap, got ${messages.map((m) => MessageType[m.type]).join(', ') || 'no message'}`);
    }
    const m = messages[0];
    if (m.from !== from || m.to !== this.options.self) {
      throw new Error(`MsgSnap from ${m.from} to ${m.to} does not match the sender and recipient`);
    }
    return m;
  }

  onModuleDestroy(): void {
    this.stopped = true;
    for (const stream of this.streams.values()) stream.close();
    for (const close of [...this.inbound.values()]) close();
    for (const transfer of [...this.outgoingSnapshots.values()]) transfer.abort(new Error('the node is stopping'));
    for (const incoming of [...this.incomingSnapshots.values()]) incoming.cancel(new Error('the node is stopping'));
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

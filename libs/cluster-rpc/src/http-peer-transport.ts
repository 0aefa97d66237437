import { Inject, Injectable, Logger, OnModuleDestroy, Optional } from '@nestjs/common';
import { Message, MessageType, NodeId } from '@app/consensus/core';
import { MessageReceiver, PeerTransport, SNAPSHOT_FILES, SnapshotFiles } from '@app/consensus/ports';
import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { ClientUrls } from './client-urls';
import { ClusterBootstrapService } from './cluster-bootstrap.service';
import { ClusterRpcMetrics, SnapshotSentOutcome } from './cluster-rpc.metrics';
import { CLUSTER_RPC_OPTIONS, ClusterRpcOptions } from './cluster-rpc.options';
import { FrameDecoder, PONG } from './frame';
import { decodeMessages } from './message-codec';
import { PeerAdmission } from './peer-admission';
import { PEER_HEADERS, PeerRejection, PONG_INTERVAL_MS } from './peer-protocol';
import { PeerStream, PeerStreamLimits } from './peer-stream';
import { IncomingSnapshot, SnapshotTransferError } from './snapshot-receiver';
import { SnapshotSource, SnapshotTransfer, SnapshotTransferResult } from './snapshot-transfer';

export { CLUSTER_RPC_OPTIONS };
export type { ClusterRpcOptions };

/** Where the transport learns its cluster's id: ClusterBootstrapService, once resolve() has settled. */
export type ClusterIdentitySource = Pick<ClusterBootstrapService, 'identity'>;

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
  private removedCallback: () => void = () => undefined;
  /** Former members (removed from the configuration): their streams are answered 410, so that they learn it. */
  private removedPeers: ReadonlySet<NodeId> = new Set();
  private removedUrls: string[] = [];
  /** One outgoing stream per peer (setPeers): the members this node exchanges messages with. */
  private readonly streams = new Map<NodeId, PeerStream>();
  /** How to close the inbound stream being served from each sender, so that a newer one can replace it. */
  private readonly inbound = new Map<NodeId, () => void>();
  private readonly lastLogged = new Map<string, number>();
  private snapshotStatus: (peer: NodeId, failed: boolean) => void = () => undefined;
  /** The snapshot transfer in flight to each peer (at most one). */
  private readonly outgoingSnapshots = new Map<NodeId, SnapshotTransfer>();
  /** Transfers replaced by a newer one to the same peer: their end is counted but not reported to the core. */
  private readonly superseded = new WeakSet<SnapshotTransfer>();
  /** The snapshot transfer being received from each sender (at most one). */
  private readonly incomingSnapshots = new Map<NodeId, IncomingSnapshot>();
  /** The request headers of this node's streams and transfers, built once the cluster id is known. */
  private requestHeaders?: Record<string, string>;
  private readonly limits: PeerStreamLimits;
  private readonly snapshotStallTimeoutMs: number;
  private stopped = false;

  constructor(
    @Inject(CLUSTER_RPC_OPTIONS) private readonly options: ClusterRpcOptions,
    private readonly metrics: ClusterRpcMetrics,
    /** The cluster id comes from here: until it is known, peers are refused and setPeers() may not be called. */
    @Inject(ClusterBootstrapService) private readonly cluster: ClusterIdentitySource,
    /** Where snapshot files are read from and written to; without it, snapshots are neither sent nor received. */
    @Optional() @Inject(SNAPSHOT_FILES) private readonly snapshotFiles?: SnapshotFiles,
    /** The address allow-list of the peer routes: it follows setPeers() (members' addresses change with the configuration). */
    @Optional() private readonly admission?: PeerAdmission,
    /** The members' client URLs (PEER_PORT): this node's is announced on every request, the peers' learned from theirs. */
    @Optional() private readonly clientUrls?: ClientUrls,
  ) {
    this.snapshotStallTimeoutMs = options.snapshotStallTimeoutMs ?? DEFAULT_SNAPSHOT_STALL_TIMEOUT_MS;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
  }

  /**
   * Opens a stream to each new peer, closes the streams of peers no longer listed (and drops their queued
   * messages, their inbound stream and their snapshot transfers), moves a stream whose URL changed, and hands
   * the members' URLs (this node's advertised one included) to the address check. This node's own id, if
   * listed, is ignored. Call once the cluster identity is known (it throws before).
   */
  setPeers(peers: ReadonlyMap<NodeId, string>, removed: ReadonlyMap<NodeId, string> = new Map()): void {
    if (this.stopped) return;
    this.removedPeers = new Set(removed.keys());
    this.removedUrls = [...removed.values()].filter((url) => url !== '');
    const self = this.options.nodeId;
    const headers = this.headers();
    for (const [id, stream] of [...this.streams]) {
      if (peers.get(id) === stream.url) continue;
      stream.close();
      this.streams.delete(id);
      if (peers.has(id)) {
        this.logger.log(`peer ${id} moved from ${stream.url} to ${peers.get(id)}`);
      } else {
        this.logger.log(`peer ${id} (${stream.url}) is no longer a member: its streams are closed`);
        this.forget(id);
      }
    }
    const added: NodeId[] = [];
    for (const [id, url] of peers) {
      if (id === self || this.streams.has(id)) continue;
      this.streams.set(id, this.openStream(id, url, headers));
      added.push(id);
    }
    this.metrics.knowPeers(added);
    // Removed members' addresses stay admitted, so that a removed node that missed its removal is told (410)
    // rather than refused by address (403), which it could not act on.
    void this.admission?.setMembers([this.options.advertiseUrl, ...[...this.streams.values()].map((s) => s.url), ...this.removedUrls]);
  }

  /** The members this node exchanges messages with now: NODE_ID → URL. */
  peers(): Map<NodeId, string> {
    return new Map([...this.streams].map(([id, stream]) => [id, stream.url]));
  }

  onRemoved(callback: () => void): void {
    this.removedCallback = callback;
  }

  listen(receiver: MessageReceiver): void {
    this.receiver = receiver;
  }

  onUnreachable(callback: (peer: NodeId) => void): void {
    this.unreachable = callback;
  }

  /** ClientUrlSource (optional on a PeerTransport): the client URLs announced with peer traffic, this node's included. */
  onClientUrl(callback: (nodeId: NodeId, clientUrl: string) => void): void {
    this.clientUrls?.onClientUrl(callback);
  }

  private headers(): Record<string, string> {
    if (this.requestHeaders) return this.requestHeaders;
    const identity = this.cluster.identity;
    if (!identity) throw new Error('the peers are set before the cluster identity is known (ClusterBootstrap.resolve())');
    const headers: Record<string, string> = { [PEER_HEADERS.from]: this.options.nodeId, [PEER_HEADERS.clusterId]: identity.clusterId };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const clientUrl = this.clientUrls?.own;
    if (clientUrl) headers[PEER_HEADERS.clientUrl] = clientUrl;
    this.requestHeaders = headers;
    return headers;
  }

  private openStream(peer: NodeId, url: string, headers: Record<string, string>): PeerStream {
    return new PeerStream(peer, url, headers, this.options.stallTimeoutMs, this.limits, {
      unreachable: (to, error) => this.onLost(to, error),
      refused: (to, status, body) => {
        const line = `peer ${this.describe(to)} refused our messages (${status}): ${body}`;
        // 503: the peer is still finding its cluster (a new cluster's members start within a moment of each
        // other); nothing to act on unless it lasts, which that peer's own log says.
        if (status === 503) this.logger.debug(line);
        else this.errorOnce(`refused:${to}`, line);
        // 410 naming this node: the peer applied its removal, which this node (cut off at the time) never did.
        if (status === 410 && removalOf(body) === this.options.nodeId) this.removedCallback();
      },
      dropped: (to, count) => this.metrics.dropped(to, count),
      sent: (to, messages, bytes) => this.metrics.sent(to, messages, bytes),
    }, this.options.tls?.agent);
  }

  /** A former member: nothing of it is received any more, and no transfer to it goes on. */
  private forget(peer: NodeId): void {
    this.inbound.get(peer)?.();
    this.incomingSnapshots.get(peer)?.cancel(new Error(`${peer} is no longer a member`));
    this.outgoingSnapshots.get(peer)?.abort(new Error(`${peer} is no longer a member`));
  }

  /** A peer's NODE_ID and URL, for log lines. */
  private describe(peer: NodeId): string {
    const url = this.streams.get(peer)?.url;
    return url ? `${peer} (${url})` : peer;
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
    this.logger.log(`sending snapshot ${metadata.index} (${source.size} bytes) to ${this.describe(peer)}`);
    const url = this.streams.get(peer)!.url;
    const transfer: SnapshotTransfer = new SnapshotTransfer(peer, url, m, source, this.headers(), this.snapshotStallTimeoutMs, {
      progress: (bytes) => this.metrics.snapshotBytesOut(peer, bytes),
      done: (result) => this.onSnapshotSent(transfer, result),
    }, this.options.tls?.agent);
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
   * Decides whether a stream or snapshot transfer a peer opens is admitted: the sender (x-raft-from, its
   * NODE_ID) must belong to this node's cluster (409 otherwise), must not be this node's NODE_ID (409: two
   * nodes share it), and must be one of the peers setPeers() listed (403); before the cluster identity is
   * known, every sender is answered 503 (it retries). Returns the sender's NODE_ID, or the rejection for
   * PeerController to answer with; a rejection is logged here (once per sender per 30 s), and by the sender.
   * `address`, the connection's remote address, only goes into the log lines. An admitted sender's client URL
   * (PEER_HEADERS.clientUrl, PEER_PORT) is recorded in ClientUrls.
   */
  admit(headers: Record<string, string | string[] | undefined>, address?: string): { from: NodeId } | PeerRejection {
    const from = String(headers[PEER_HEADERS.from] ?? '');
    const clusterId = String(headers[PEER_HEADERS.clusterId] ?? '');
    const self = this.options.nodeId;
    const at = address ? ` at ${address}` : '';
    const identity = this.cluster.identity;
    if (!identity) return { status: 503, error: `${self} is starting: it has not found its cluster yet` };
    if (clusterId !== identity.clusterId) {
      const error =
        `cluster mismatch: ${from || '?'}${at} belongs to cluster ${clusterId || '?'}, this node (${self}) to cluster ` +
        `${identity.clusterId}: they were formed apart (other PEER_URLS or CLUSTER_TOKEN at first start), or one holds ` +
        `another cluster's data (WAL_DIR); a new node joins an existing cluster with JOIN`;
      this.errorOnce(`cluster:${from}`, error);
      return { status: 409, error };
    }
    if (from === self) {
      const error = `duplicate NODE_ID: a peer${at} also calls itself '${from}', this node's NODE_ID; give every node its own NODE_ID`;
      this.errorOnce(`dup:${from}`, error);
      return { status: 409, error };
    }
    if (this.removedPeers.has(from)) {
      const error = `${from} was removed from the cluster`;
      this.warnOnce(`removed:${from}`, `refused a stream from ${from}${at}: it was removed from the cluster (told so: 410)`);
      return { status: 410, error };
    }
    if (!this.streams.has(from)) {
      const error = `${from || 'the sender'} is not a member of this cluster`;
      this.errorOnce(`member:${from}`, error);
      return { status: 403, error };
    }
    const clientUrl = headers[PEER_HEADERS.clientUrl];
    this.clientUrls?.learn(from, Array.isArray(clientUrl) ? clientUrl[0] : clientUrl);
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
      if (m.from !== from || m.to !== this.options.nodeId) {
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
    if (m.from !== from || m.to !== this.options.nodeId) {
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
    this.warnOnce(`down:${peer}`, `stream to ${this.describe(peer)} lost: ${error.message}`);
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

/** The NODE_ID a peer's 410 answer says was removed (`{"error":"<id> was removed from the cluster"}`), if any. */
function removalOf(body: string): string | undefined {
  try {
    const error = (JSON.parse(body) as { error?: unknown }).error;
    const match = typeof error === 'string' ? /^(\S+) was removed from the cluster$/.exec(error) : null;
    return match?.[1];
  } catch {
    return undefined;
  }
}

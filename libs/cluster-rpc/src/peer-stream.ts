import { Message, NodeId } from '@app/consensus/core';
import { ClientRequest, IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { FRAME_HEADER, sealFrame } from './frame';
import { encodeMessages } from './message-codec';
import { PEER_STREAM_CONTENT_TYPE, PEER_STREAM_PATH } from './peer-protocol';

export interface PeerStreamLimits {
  /** Messages held while the stream is being (re)established; beyond this, new messages are dropped. */
  maxQueuedMessages: number;
  /** Bytes of entry data held while the stream is being (re)established. */
  maxQueuedBytes: number;
  /** Bytes written to an open stream but not yet taken by the socket; beyond this, messages are dropped. */
  maxBufferedBytes: number;
  /** Largest frame: a longer queue leaves in several frames. */
  maxFrameBytes: number;
  /** Back-off after a failed or lost stream doubles from this... */
  minBackoffMs: number;
  /** ...up to this. */
  maxBackoffMs: number;
}

export interface PeerStreamEvents {
  /** The stream failed or was lost; queued and unsent messages were dropped (Raft retransmits). */
  unreachable(peer: NodeId, error: Error): void;
  /** The peer answered the stream request with an error (misconfiguration); `body` says why. */
  refused(peer: NodeId, status: number, body: string): void;
  /** Messages dropped because a queue or the socket buffer was full. */
  dropped(peer: NodeId, count: number): void;
  /** A frame was written to the stream. */
  sent(peer: NodeId, messages: number, bytes: number): void;
}

const MESSAGE_OVERHEAD = 64;

function sizeOf(m: Message): number {
  let size = MESSAGE_OVERHEAD;
  if (m.entries) for (const e of m.entries) size += e.data.length + 24;
  return size;
}

type State = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

/**
 * The outgoing half of the link to one peer: one long-lived `POST /raft/stream` whose chunked body carries
 * frames of messages as the node produces them. A send is one socket write: no request, header or answer per
 * batch, no waiting for the previous batch's answer, and the order of messages is the order of the stream.
 *
 * The peer answers 200 at once and then writes a pong byte at a fixed interval. A stream (or a connection
 * attempt) with no sign of life for `stallTimeoutMs` is torn down and opened again after a back-off: a cut
 * link or a paused peer does not keep messages buffered for long, and a healed link is used again quickly.
 * Everything is bounded: a queue while connecting, the socket's unsent bytes while open.
 */
export class PeerStream {
  private state: State = 'idle';
  private request?: ClientRequest;
  private queue: Message[] = [];
  private queuedBytes = 0;
  private lastHeard = 0;
  private failures = 0;
  private backoffTimer?: NodeJS.Timeout;
  private readonly watchdog: NodeJS.Timeout;
  private readonly target: URL;

  /**
   * `peer`: the member's NODE_ID (what events report); `url`: its base URL (where the stream goes);
   * `tlsAgent`: for an https:// URL, the agent holding the node's TLS settings (PeerTls.agent).
   */
  constructor(
    readonly peer: NodeId,
    readonly url: string,
    private readonly headers: Record<string, string>,
    private readonly stallTimeoutMs: number,
    private readonly limits: PeerStreamLimits,
    private readonly events: PeerStreamEvents,
    private readonly tlsAgent?: HttpsAgent,
  ) {
    this.target = new URL(PEER_STREAM_PATH, url);
    this.watchdog = setInterval(() => this.checkStall(), Math.max(10, Math.floor(stallTimeoutMs / 4)));
    this.watchdog.unref();
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  send(messages: Message[]): void {
    switch (this.state) {
      case 'open':
        this.write(messages);
        return;
      case 'closed':
        return;
      default:
        this.enqueue(messages);
        if (this.state === 'idle') this.connect();
    }
  }

  close(): void {
    this.state = 'closed';
    clearInterval(this.watchdog);
    clearTimeout(this.backoffTimer);
    const request = this.request;
    this.request = undefined;
    request?.destroy();
    this.queue = [];
    this.queuedBytes = 0;
  }

  private enqueue(messages: Message[]): void {
    let dropped = 0;
    for (const m of messages) {
      const size = sizeOf(m);
      if (this.queue.length >= this.limits.maxQueuedMessages || this.queuedBytes + size > this.limits.maxQueuedBytes) {
        dropped++;
        continue;
      }
      this.queue.push(m);
      this.queuedBytes += size;
    }
    if (dropped > 0) this.events.dropped(this.peer, dropped);
  }

  /** Writes messages as frames of at most maxFrameBytes each. */
  private write(messages: Message[]): void {
    const request = this.request!;
    if (request.writableLength > this.limits.maxBufferedBytes) {
      this.events.dropped(this.peer, messages.length);
      return;
    }
    let start = 0;
    while (start < messages.length) {
      let end = start;
      let bytes = 0;
      while (end < messages.length) {
        const size = sizeOf(messages[end]);
        if (end > start && bytes + size > this.limits.maxFrameBytes) break;
        bytes += size;
        end++;
      }
      const batch = start === 0 && end === messages.length ? messages : messages.slice(start, end);
      const frame = sealFrame(encodeMessages(batch, FRAME_HEADER));
      request.write(frame);
      this.events.sent(this.peer, batch.length, frame.length);
      start = end;
    }
  }

  private connect(): void {
    this.state = 'connecting';
    this.lastHeard = Date.now();
    const tls = this.target.protocol === 'https:';
    const send = tls ? httpsRequest : httpRequest;
    const request = send(this.target, {
      method: 'POST',
      // Its own connection, for the life of the stream. Over TLS, through the keep-alive agent: it holds the
      // certificates and the TLS session, so a re-opened stream resumes it instead of a full handshake; the
      // stream keeps its socket for as long as it lives all the same.
      agent: tls && this.tlsAgent ? this.tlsAgent : false,
      headers: { ...this.headers, 'content-type': PEER_STREAM_CONTENT_TYPE, 'transfer-encoding': 'chunked' },
    });
    this.request = request;
    request.setNoDelay(true);
    request.on('error', (error) => this.lost(request, error));
    request.on('close', () => this.lost(request, new Error('stream closed')));
    request.on('response', (response) => this.onResponse(request, response));
    request.flushHeaders();
  }

  private onResponse(request: ClientRequest, response: IncomingMessage): void {
    if (request !== this.request) return;
    this.lastHeard = Date.now();
    if (response.statusCode !== 200) {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (body.length < 4096) body += chunk;
      });
      response.on('end', () => {
        this.events.refused(this.peer, response.statusCode ?? 0, body);
        this.lost(request, new Error(`peer refused the stream (${response.statusCode})`));
      });
      return;
    }
    this.state = 'open';
    this.failures = 0;
    response.on('data', () => (this.lastHeard = Date.now()));
    response.on('end', () => this.lost(request, new Error('peer ended the stream')));
    if (this.queue.length > 0) {
      const queued = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      this.write(queued);
    }
  }

  private checkStall(): void {
    if ((this.state === 'connecting' || this.state === 'open') && Date.now() - this.lastHeard > this.stallTimeoutMs) {
      this.lost(this.request!, new Error(`no sign of life from the peer for ${this.stallTimeoutMs} ms`));
    }
  }

  /** Tears the stream down (once per stream) and opens a new one after a back-off. */
  private lost(request: ClientRequest, error: Error): void {
    if (request !== this.request || this.state === 'closed') return;
    this.request = undefined;
    request.destroy();
    this.queue = [];
    this.queuedBytes = 0;
    this.failures++;
    this.state = 'backoff';
    this.events.unreachable(this.peer, error);
    const delay = Math.min(this.limits.maxBackoffMs, this.limits.minBackoffMs * 2 ** (this.failures - 1));
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      if (this.state !== 'backoff') return;
      // Reconnect even with nothing to send: an idle node (a learner sends nothing of its own) must still
      // hear a refusal, the 410 that tells a removed node what it missed.
      this.connect();
    }, delay);
  }
}

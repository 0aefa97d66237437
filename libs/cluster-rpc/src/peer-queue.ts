import { Message, NodeId } from '@app/consensus';
import { encodeMessages } from './message-codec';

export interface PeerQueueLimits {
  /** Messages held while a request is in flight; beyond this, new messages are dropped. */
  maxQueuedMessages: number;
  /** Bytes of entry data held while a request is in flight; beyond this, new messages are dropped. */
  maxQueuedBytes: number;
  /** Largest request body: a longer queue leaves in several requests. */
  maxBatchBytes: number;
  /** Back-off after a failed request doubles from this... */
  minBackoffMs: number;
  /** ...up to this. */
  maxBackoffMs: number;
}

export interface PeerQueueEvents {
  /** A request failed: the peer is unreachable for now (the batch was dropped; Raft retransmits). */
  unreachable(peer: NodeId, error: Error): void;
  /** Messages dropped because the queue was full. */
  dropped(peer: NodeId, count: number): void;
  /** A batch was delivered. */
  delivered(peer: NodeId, messages: number, bytes: number): void;
}

/** Sends one encoded batch; resolves when the peer accepted it. */
export type PostBatch = (peer: NodeId, body: Buffer) => Promise<void>;

const MESSAGE_OVERHEAD = 64;

function sizeOf(m: Message): number {
  let size = MESSAGE_OVERHEAD;
  if (m.entries) for (const e of m.entries) size += e.data.length + 24;
  return size;
}

/**
 * The send queue of one peer. At most one request is in flight per peer, so messages arrive in the order
 * Raft produced them; everything queued meanwhile leaves together in the next request (batching that grows
 * with load). A slow or dead peer only fills its own bounded queue: the others, and the event loop, never
 * wait for it.
 */
export class PeerQueue {
  private queue: Message[] = [];
  private queuedBytes = 0;
  private inFlight = false;
  private failures = 0;
  private backoffTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly peer: NodeId,
    private readonly post: PostBatch,
    private readonly limits: PeerQueueLimits,
    private readonly events: PeerQueueEvents,
  ) {}

  get length(): number {
    return this.queue.length;
  }

  push(messages: Message[]): void {
    if (this.closed) return;
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
    this.flush();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.backoffTimer);
    this.queue = [];
    this.queuedBytes = 0;
  }

  private flush(): void {
    if (this.inFlight || this.backoffTimer || this.queue.length === 0 || this.closed) return;
    const batch = this.takeBatch();
    const body = encodeMessages(batch);
    this.inFlight = true;
    this.post(this.peer, body).then(
      () => {
        this.failures = 0;
        this.events.delivered(this.peer, batch.length, body.length);
        this.inFlight = false;
        this.flush();
      },
      (error: Error) => {
        this.inFlight = false;
        this.failures++;
        this.events.unreachable(this.peer, error);
        const delay = Math.min(this.limits.maxBackoffMs, this.limits.minBackoffMs * 2 ** (this.failures - 1));
        this.backoffTimer = setTimeout(() => {
          this.backoffTimer = undefined;
          this.flush();
        }, delay);
      },
    );
  }

  private takeBatch(): Message[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length) {
      const size = sizeOf(this.queue[n]);
      if (n > 0 && bytes + size > this.limits.maxBatchBytes) break;
      bytes += size;
      n++;
    }
    const batch = n === this.queue.length ? this.queue : this.queue.slice(0, n);
    this.queue = n === this.queue.length ? [] : this.queue.slice(n);
    this.queuedBytes -= bytes;
    return batch;
  }
}

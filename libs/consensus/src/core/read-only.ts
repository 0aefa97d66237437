import { NodeId } from './types';

/** One ReadIndex request waiting for its heartbeat round. */
export interface ReadIndexStatus {
  /** The node that asked (this node for local requests, a follower for forwarded MsgReadIndex). */
  from: NodeId;
  ctx: string;
  /** The leader's commit index when the request arrived: the read index. */
  index: number;
  /** Voters that acknowledged a heartbeat carrying this request's context (or a later one). */
  acks: Set<NodeId>;
}

/**
 * The leader's queue of ReadIndex requests (Raft thesis 6.4). A request is safe to answer once a quorum
 * acknowledged a heartbeat sent after it arrived: the leader was still the leader at that point, so its
 * commit index at arrival covered every write acknowledged before the read was issued. A quorum ack for a
 * request also confirms every request queued before it (their heartbeat rounds started earlier).
 *
 * Requests are keyed by (from, ctx), so nodes choosing their contexts independently do not collide;
 * the key is what heartbeats carry. A request repeating a pending (from, ctx) is ignored.
 */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];
  private head = 0;

  get size(): number {
    return this.queue.length - this.head;
  }

  /**
   * Queues a request with the commit index at arrival. Returns the key its heartbeat round carries, or
   * undefined for a duplicate.
   */
  addRequest(index: number, from: NodeId, ctx: string): string | undefined {
    const key = `${from}\u0000${ctx}`;
    if (this.pending.has(key)) return undefined;
    this.pending.set(key, { from, ctx, index, acks: new Set() });
    this.queue.push(key);
    return key;
  }

  /** Records a heartbeat acknowledgement carrying `key`; returns the acks so far (undefined if unknown). */
  recvAck(id: NodeId, key: string): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(key);
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Dequeues and returns every request up to and including `key` (now confirmed), oldest first. */
  advance(key: string): ReadIndexStatus[] {
    if (!this.pending.has(key)) return [];
    const out: ReadIndexStatus[] = [];
    while (this.head < this.queue.length) {
      const c = this.queue[this.head++];
      const rs = this.pending.get(c)!;
      this.pending.delete(c);
      out.push(rs);
      if (c === key) break;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    return out;
  }

  /** Key of the newest pending request: heartbeats carry it, so one round confirms all of them. */
  lastPendingKey(): string | undefined {
    return this.size > 0 ? this.queue[this.queue.length - 1] : undefined;
  }
}

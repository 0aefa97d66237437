/**
 * The pipelining window of one follower: the last index of each MsgApp sent and not yet acknowledged, in
 * sending order. A fixed-size ring buffer (allocated on first use), so add and free cost O(1) per message.
 */
export class Inflights {
  private buffer: number[] | undefined;
  private start = 0;
  count = 0;

  constructor(readonly size: number) {}

  /** Records a MsgApp whose last entry is `index`. The caller checks full() first. */
  add(index: number): void {
    if (this.full()) throw new Error('cannot add into a full inflights window');
    if (!this.buffer) this.buffer = new Array<number>(this.size);
    let next = this.start + this.count;
    if (next >= this.size) next -= this.size;
    this.buffer[next] = index;
    this.count++;
  }

  /** Frees every in-flight message whose last index is <= `to` (they were acknowledged). */
  freeLE(to: number): void {
    if (this.count === 0 || !this.buffer) return;
    let idx = this.start;
    let i = 0;
    for (; i < this.count; i++) {
      if (to < this.buffer[idx]) break;
      if (++idx >= this.size) idx -= this.size;
    }
    this.count -= i;
    this.start = this.count === 0 ? 0 : idx;
  }

  /** Frees the oldest message (a heartbeat response showed the follower alive while the window is full). */
  freeFirstOne(): void {
    if (this.count === 0 || !this.buffer) return;
    this.freeLE(this.buffer[this.start]);
  }

  full(): boolean {
    return this.count === this.size;
  }

  reset(): void {
    this.count = 0;
    this.start = 0;
  }
}

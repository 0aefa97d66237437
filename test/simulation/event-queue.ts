/** A min-heap of timed events; ties run in scheduling order, so a run is a pure function of its seed. */
export class EventQueue<T> {
  private times: number[] = [];
  private seqs: number[] = [];
  private items: T[] = [];
  private seq = 0;

  get size(): number {
    return this.items.length;
  }

  push(time: number, item: T): void {
    const seq = this.seq++;
    let i = this.items.length;
    this.times.push(time);
    this.seqs.push(seq);
    this.items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(p, time, seq)) break;
      this.move(p, i);
      i = p;
    }
    this.times[i] = time;
    this.seqs[i] = seq;
    this.items[i] = item;
  }

  peekTime(): number {
    return this.items.length > 0 ? this.times[0] : Infinity;
  }

  pop(): T | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const top = this.items[0];
    const lastTime = this.times.pop()!;
    const lastSeq = this.seqs.pop()!;
    const last = this.items.pop()!;
    if (n > 1) {
      let i = 0;
      const m = n - 1;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= m) break;
        const r = l + 1;
        const c = r < m && this.cmp(r, l) < 0 ? r : l;
        if (!this.less(c, lastTime, lastSeq)) break;
        this.move(c, i);
        i = c;
      }
      this.times[i] = lastTime;
      this.seqs[i] = lastSeq;
      this.items[i] = last;
    }
    return top;
  }

  /** Whether slot i sorts before (time, seq). */
  private less(i: number, time: number, seq: number): boolean {
    const t = this.times[i];
    return t < time || (t === time && this.seqs[i] < seq);
  }

  private cmp(a: number, b: number): number {
    return this.times[a] - this.times[b] || this.seqs[a] - this.seqs[b];
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from];
    this.seqs[to] = this.seqs[from];
    this.items[to] = this.items[from];
  }
}

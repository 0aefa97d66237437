/** A key's deadline as the leader saw it applied: the key, the modIndex it had, and when it expires. */
export interface Deadline {
  key: string;
  modIndex: number;
  expiresAt: number;
}

/**
 * A binary min-heap of deadlines, earliest first (ties by modIndex, so the order is fully determined). push
 * and pop are O(log n), peek O(1). Entries are not updated in place: a key rewritten gets a new entry, and
 * the caller drops the stale one when it pops it (see ExpiryScheduler).
 */
export class DeadlineHeap {
  private readonly items: Deadline[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Deadline | undefined {
    return this.items[0];
  }

  push(deadline: Deadline): void {
    const items = this.items;
    items.push(deadline);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): Deadline | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < items.length && before(items[left], items[least])) least = left;
      if (right < items.length && before(items[right], items[least])) least = right;
      if (least === i) return top;
      [items[i], items[least]] = [items[least], items[i]];
      i = least;
    }
  }

  clear(): void {
    this.items.length = 0;
  }
}

function before(a: Deadline, b: Deadline): boolean {
  return a.expiresAt < b.expiresAt || (a.expiresAt === b.expiresAt && a.modIndex < b.modIndex);
}

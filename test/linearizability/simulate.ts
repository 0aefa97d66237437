import { HistoryOp, OpKind } from './history';

/**
 * Generates linearizable-by-construction KV histories for tests: clients issue operations one after the
 * other; each operation takes effect on a real map at an instant inside its interval (an unknown one:
 * at any instant after its start, or never), and its result is read off that map.
 */

export interface SimulationOptions {
  seed: number;
  clients: number;
  ops: number;
  keys?: number;
  /** Distinct values written per key (small: many equal values, harder); default: every write unique. */
  values?: number;
  /** Share of operations whose outcome the client never learns. */
  unknown?: number;
  /** Share of operations that fail (do not take effect). */
  fail?: number;
  /** Mix of operations, as weights. */
  mix?: Partial<Record<OpKind, number>>;
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function simulateHistory(o: SimulationOptions): HistoryOp[] {
  const rand = prng(o.seed);
  const mix = { get: 4, put: 3, delete: 1, cas: 2, ...o.mix };
  const kinds = Object.keys(mix) as OpKind[];
  const totalWeight = kinds.reduce((s, k) => s + mix[k], 0);
  const pickKind = (): OpKind => {
    let r = rand() * totalWeight;
    for (const k of kinds) if ((r -= mix[k]) < 0) return k;
    return 'get';
  };
  const keys = o.keys ?? 1;
  let written = 0;
  const value = () => (o.values ? String(Math.floor(rand() * o.values)) : `v${written++}`);
  const current = new Map<string, string>(); // values seen, for cas expectations

  type Pending = { op: HistoryOp; effect: number };
  const pending: Pending[] = [];
  const all: HistoryOp[] = [];
  const clock = new Array<number>(o.clients).fill(0).map(() => Math.floor(rand() * 10));
  for (let id = 0; id < o.ops; id++) {
    const client = id % o.clients;
    const start = clock[client] + 1 + Math.floor(rand() * 5);
    const end = start + 1 + Math.floor(rand() * 30);
    clock[client] = end;
    const kind = pickKind();
    const key = `k${Math.floor(rand() * keys)}`;
    const op: HistoryOp = { id, client, op: kind, key, start, end, outcome: 'ok' };
    all.push(op);
    if (kind === 'put' || kind === 'cas') op.value = value();
    if (kind === 'cas') op.expected = rand() < 0.2 ? null : rand() < 0.7 ? (current.get(key) ?? null) : value();
    const r = rand();
    if (r < (o.unknown ?? 0)) {
      op.outcome = 'unknown';
      const effect = rand() < 0.4 ? Infinity : start + rand() * (end - start) * 4;
      pending.push({ op, effect });
    } else if (r < (o.unknown ?? 0) + (o.fail ?? 0)) {
      op.outcome = 'fail';
    } else {
      pending.push({ op, effect: start + rand() * (end - start) });
    }
    if (kind === 'put') current.set(key, op.value as string);
  }

  const state = new Map<string, string>();
  for (const { op, effect } of [...pending].sort((a, b) => a.effect - b.effect)) {
    if (effect === Infinity) break;
    const had = state.get(op.key);
    switch (op.op) {
      case 'get':
        op.result = had === undefined ? { found: false } : { found: true, value: had };
        break;
      case 'put':
        state.set(op.key, op.value as string);
        break;
      case 'delete':
        state.delete(op.key);
        if (rand() < 0.5) op.result = { found: had !== undefined };
        break;
      case 'cas': {
        const swapped = (op.expected ?? undefined) === had;
        if (swapped) state.set(op.key, op.value as string);
        op.result = { swapped };
        break;
      }
    }
    if (op.outcome === 'unknown') delete op.result;
  }
  return all;
}

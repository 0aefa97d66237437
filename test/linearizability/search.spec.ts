import { checkHistory, checkOperations } from './checker';
import { HistoryOp, OpKind, Outcome } from './history';
import { RegisterKvModel } from './register-model';
import { prng, simulateHistory } from './simulate';

/**
 * The search against a definition: for small histories, an exhaustive search over orders written
 * straight from the semantics in history.ts (no model, no memo, no pruning) must agree with the checker,
 * with and without pruning; and every 'linearizable' verdict must come with a linearization that a plain
 * replay accepts.
 */

type Value = string | undefined;

/** Applies `op` to `value`; returns the new value, or null if `op`'s recorded result contradicts `value`. */
function apply(op: HistoryOp, value: Value): { value: Value } | null {
  const known = op.outcome === 'ok';
  switch (op.op) {
    case 'get':
      return op.result?.found === (value !== undefined) && (value === undefined || op.result?.value === value) ? { value } : null;
    case 'put':
      return { value: op.value };
    case 'delete':
      if (known && op.result?.found !== undefined && op.result.found !== (value !== undefined)) return null;
      return { value: undefined };
    case 'cas': {
      const match = value === (op.expected ?? undefined);
      if (known && op.result?.swapped !== match) return null;
      return { value: match ? op.value : value };
    }
  }
}

const end = (op: HistoryOp) => (op.outcome === 'ok' ? (op.end as number) : Infinity);
const checked = (op: HistoryOp) => op.outcome !== 'fail' && !(op.op === 'get' && op.outcome === 'unknown');

/** Exhaustive: is there an order of all ok operations (plus any unknown ones) legal in real time and in value? */
function bruteForce(history: HistoryOp[]): boolean {
  const keys = new Set(history.map((op) => op.key));
  return [...keys].every((key) => {
    const ops = history.filter((op) => op.key === key && checked(op));
    const done = new Array<boolean>(ops.length).fill(false);
    const search = (value: Value, left: number): boolean => {
      if (left === 0) return true;
      for (let i = 0; i < ops.length; i++) {
        if (done[i]) continue;
        // ops[i] can go next unless a pending ok operation returned before it started.
        if (ops.some((q, j) => !done[j] && j !== i && end(q) < ops[i].start)) continue;
        const next = apply(ops[i], value);
        if (!next) continue;
        done[i] = true;
        const found = search(next.value, left - (ops[i].outcome === 'ok' ? 1 : 0));
        done[i] = false;
        if (found) return true;
      }
      return false;
    };
    return search(undefined, ops.filter((op) => op.outcome === 'ok').length);
  });
}

/** Checks that `order` (indexes into `history`) linearizes it: every ok operation once, real time, values. */
function replayAccepts(history: HistoryOp[], order: number[]): boolean {
  const ops = order.map((i) => history[i]);
  if (new Set(order).size !== order.length) return false;
  const required = history.map((op, i) => (op.outcome === 'ok' ? i : -1)).filter((i) => i >= 0);
  if (!required.every((i) => order.includes(i))) return false;
  for (let a = 0; a < ops.length; a++) {
    for (let b = a + 1; b < ops.length; b++) if (end(ops[b]) < ops[a].start) return false;
  }
  let value: Value;
  for (const op of ops) {
    const next = apply(op, value);
    if (!next) return false;
    value = next.value;
  }
  return true;
}

/** Small random histories, results drawn at random: mostly not linearizable, often subtly. */
function randomHistory(seed: number): HistoryOp[] {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const values = ['a', 'b'];
  const n = 1 + Math.floor(rand() * 7);
  const ops: HistoryOp[] = [];
  for (let id = 0; id < n; id++) {
    const op = pick<OpKind>(['get', 'get', 'put', 'put', 'delete', 'cas']);
    const start = Math.floor(rand() * 20);
    const outcome = pick<Outcome>(['ok', 'ok', 'ok', 'ok', 'ok', 'unknown', 'unknown', 'fail']);
    const h: HistoryOp = { id, client: id, op, key: rand() < 0.85 ? 'x' : 'y', start, end: start + Math.floor(rand() * 12), outcome };
    if (op === 'put' || op === 'cas') h.value = pick(values);
    if (op === 'cas') h.expected = pick([null, ...values]);
    if (outcome === 'ok') {
      if (op === 'get') h.result = rand() < 0.3 ? { found: false } : { found: true, value: pick(values) };
      if (op === 'cas') h.result = { swapped: rand() < 0.5 };
      if (op === 'delete' && rand() < 0.5) h.result = { found: rand() < 0.5 };
    }
    ops.push(h);
  }
  return ops;
}

function linearization(history: HistoryOp[], prune: boolean): number[][] {
  const model = new RegisterKvModel({ mergeUnobserved: prune });
  const result = checkOperations(model, model.convert(history).ops, { prune });
  return result.partitions.map((p) => p.sequence);
}

describe('the search agrees with an exhaustive search over orders', () => {
  it.each([
    ['random results (mostly violations)', (s: number) => randomHistory(s)],
    ['simulated runs with unknown outcomes (linearizable)', (s: number) => simulateHistory({ seed: s, clients: 3, ops: 7, values: 2, unknown: 0.3, fail: 0.1 })],
  ])('on 2000 small histories: %s', (_name, make) => {
    const verdicts = { linearizable: 0, violation: 0 };
    for (let seed = 1; seed <= 2000; seed++) {
      const history = make(seed);
      const expected = bruteForce(history) ? 'linearizable' : 'violation';
      verdicts[expected]++;
      for (const prune of [true, false]) {
        const verdict = checkHistory(history, { prune, allPartitions: true }).verdict;
        if (verdict !== expected) throw new Error(`seed ${seed}, prune ${prune}: got ${verdict}, expected ${expected}\n${JSON.stringify(history)}`);
        if (verdict === 'linearizable') {
          for (const order of linearization(history, prune)) {
            const key = history[order[0]]?.key;
            const part = history.map((op, i) => (op.key === key && checked(op) ? i : -1)).filter((i) => i >= 0);
            const local = order.map((i) => part.indexOf(i));
            if (key !== undefined && !replayAccepts(part.map((i) => history[i]), local)) {
              throw new Error(`seed ${seed}: the linearization ${JSON.stringify(order)} does not replay`);
            }
          }
        }
      }
    }
    // Random results must give both answers often, or the comparison proves little; simulations only one.
    if (_name.startsWith('simulated')) expect(verdicts.violation).toBe(0);
    else expect(Math.min(verdicts.linearizable, verdicts.violation)).toBeGreaterThan(300);
  });
});

describe('the pruned search agrees with the plain one', () => {
  it('on 500 medium histories (20 to 60 operations, 30 to 50% unknown, some results corrupted)', () => {
    // Large enough for what small histories never reach: many classes of unknown operations, several
    // interchangeable completed ones on the frontier at once.
    const verdicts = { linearizable: 0, violation: 0, unknown: 0 };
    for (let seed = 1; seed <= 500; seed++) {
      const rand = prng(seed * 7919);
      const history = simulateHistory({ seed, clients: 2 + (seed % 5), ops: 20 + (seed % 40), values: seed % 3 === 0 ? 3 : undefined, unknown: 0.3 + 0.2 * rand(), fail: 0.05 });
      for (let k = Math.floor(rand() * 3); k > 0; k--) {
        const op = history[Math.floor(rand() * history.length)];
        if (op.outcome !== 'ok') continue;
        if (op.op === 'get') op.result = rand() < 0.3 ? { found: false } : { found: true, value: history[Math.floor(rand() * history.length)].value ?? 'v' };
        if (op.op === 'cas') op.result = { swapped: !op.result?.swapped };
        if (op.op === 'delete') op.result = { found: rand() < 0.5 };
      }
      const pruned = checkHistory(history, { allPartitions: true }).verdict;
      const plain = checkHistory(history, { allPartitions: true, prune: false }).verdict;
      if (pruned !== plain) throw new Error(`seed ${seed}: pruned ${pruned}, plain ${plain}\n${JSON.stringify(history)}`);
      verdicts[pruned]++;
    }
    expect(verdicts.unknown).toBe(0);
    expect(Math.min(verdicts.linearizable, verdicts.violation)).toBeGreaterThan(50);
  });
});

describe('the search on long histories', () => {
  it.each([
    ['5,000 operations on one key, 8 clients', { seed: 1, clients: 8, ops: 5000 }],
    ['5,000 operations on one key, 8 clients, 5% unknown, 5% failed', { seed: 2, clients: 8, ops: 5000, unknown: 0.05, fail: 0.05 }],
    ['5,000 operations on one key, 4 values only, 5% unknown', { seed: 3, clients: 8, ops: 5000, values: 4, unknown: 0.05 }],
    ['10,000 operations on one key, 5 clients, 10% unknown', { seed: 5, clients: 5, ops: 10000, unknown: 0.1 }],
    ['20,000 operations on 10 keys, 16 clients, 5% unknown', { seed: 4, clients: 16, ops: 20000, keys: 10, unknown: 0.05, fail: 0.02 }],
  ])('accepts %s', (_name, options) => {
    const history = simulateHistory(options);
    const result = checkHistory(history, { timeBudgetMs: 15_000 });
    expect(result.verdict).toBe('linearizable');
  });

  it('finds one stale read in 5,000 operations', () => {
    const history = simulateHistory({ seed: 21, clients: 8, ops: 5000, unknown: 0.05 });
    // A read of a value whose write was followed, before the read started, by a completed write of another
    // value: a violation whatever else happened (values are unique).
    const done = history.filter((op) => op.op === 'put' && op.outcome === 'ok');
    const stale = done.find((w) => done.some((w2) => w2.start > (w.end as number) && history.some((r) => r.op === 'get' && r.outcome === 'ok' && r.start > (w2.end as number) + 100)));
    const overwrite = done.find((w2) => w2.start > (stale!.end as number))!;
    const read = history.find((r) => r.op === 'get' && r.outcome === 'ok' && r.start > (overwrite.end as number) + 100)!;
    read.result = { found: true, value: stale!.value };
    const result = checkHistory(history, { timeBudgetMs: 15_000 });
    expect(result.verdict).toBe('violation');
    expect(result.violation?.blocked.id).toBe(read.id);
  });
});

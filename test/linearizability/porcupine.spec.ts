import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkHistory, checkOperations } from './checker';
import { Model } from './model';
import { AppendKvInput, appendKvModel, parseJepsenEtcdLog, parsePorcupineKv } from './porcupine-formats';

/**
 * Porcupine's own test histories (testdata/, see SOURCE.md) with the verdicts its porcupine_test.go
 * asserts: TestEtcdJepsen000..102 (95 is empty and not tested there) and TestKv*. Agreement with an
 * independent implementation on real Jepsen histories, including timeouts, is the checker's best evidence.
 */

const DATA = join(__dirname, 'testdata');

/** porcupine_test.go: checkJepsen(t, N, true) for these; false for every other N but 95. */
const ETCD_LINEARIZABLE = new Set([2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98, 100, 101, 102]);
const ETCD_TESTED = Array.from({ length: 103 }, (_, i) => i).filter((i) => i !== 95);

const etcd = (i: number) => parseJepsenEtcdLog(readFileSync(join(DATA, 'jepsen', `etcd_${String(i).padStart(3, '0')}.log`), 'utf8'));

describe('porcupine etcd histories (Jepsen: one register, read/write/cas, timeouts)', () => {
  const timings: { i: number; pruned: number; plain: number }[] = [];
  afterAll(() => {
    // The slowest ones, for the record (porcupine's hardest take seconds in Go).
    const slow = timings.sort((a, b) => b.pruned + b.plain - (a.pruned + a.plain)).slice(0, 5);
    const total = timings.reduce((sum, t) => sum + t.pruned, 0);
    process.stdout.write(
      `etcd: ${timings.length} histories in ${total.toFixed(0)} ms pruned; slowest (ms, pruned/plain): ` +
        slow.map((t) => `etcd_${t.i} ${t.pruned.toFixed(1)}/${t.plain.toFixed(1)}`).join(', ') + '\n',
    );
  });

  it.each(ETCD_TESTED)('etcd_%s: the verdict porcupine asserts, with and without pruning', (i) => {
    const history = etcd(i);
    const expected = ETCD_LINEARIZABLE.has(i) ? 'linearizable' : 'violation';
    const pruned = checkHistory(history, { timeBudgetMs: 10_000 });
    const plain = checkHistory(history, { timeBudgetMs: 10_000, prune: false });
    timings.push({ i, pruned: pruned.elapsedMs, plain: plain.elapsedMs });
    expect(pruned.verdict).toBe(expected);
    expect(plain.verdict).toBe(expected);
  });

  it('etcd_095 is empty (its cluster never started), hence trivially linearizable', () => {
    expect(etcd(95)).toEqual([]);
    expect(checkHistory(etcd(95)).verdict).toBe('linearizable');
  });

  it('reads the log as porcupine does: :info and never-completed invocations are unknown, :fail :cas is a failed compare', () => {
    const ops = parseJepsenEtcdLog(
      [
        'INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]',
        'INFO  jepsen.util - 1\t:invoke\t:write\t3',
        'INFO  jepsen.util - 2\t:invoke\t:read\tnil',
        'INFO  jepsen.util - 0\t:fail\t:cas\t[1 2]',
        'INFO  jepsen.util - 1\t:info\t:write\t:timed-out',
        'INFO  jepsen.util - 2\t:ok\t:read\t3',
        'INFO  jepsen.util - 3\t:invoke\t:read\tnil',
        'INFO  jepsen.util - 3\t:fail\t:read\t:timed-out',
        'INFO  jepsen.util - 4\t:invoke\t:write\t4',
      ].join('\n'),
    );
    expect(ops).toEqual([
      { id: 0, client: 0, op: 'cas', key: 'r', expected: '1', value: '2', start: 0, end: 3, outcome: 'ok', result: { swapped: false } },
      { id: 1, client: 1, op: 'put', key: 'r', value: '3', start: 1, outcome: 'unknown' },
      { id: 2, client: 2, op: 'get', key: 'r', start: 2, end: 5, outcome: 'ok', result: { found: true, value: '3' } },
      { id: 3, client: 3, op: 'get', key: 'r', start: 6, end: 7, outcome: 'fail' },
      { id: 4, client: 4, op: 'put', key: 'r', value: '4', start: 8, outcome: 'unknown' },
    ]);
  });
});

const kv = (name: string) => parsePorcupineKv(readFileSync(join(DATA, 'kv', `${name}.txt`), 'utf8'));

/**
 * Porcupine's kvNoPartitionModel: the whole map as one state, no partitioning (far harder). Keys are
 * numbered; a state keeps each key's value and its FNV-1a hash (extended in place by append, as in
 * appendKvModel), and the map's hash mixes them.
 */
type KvMap = { values: readonly string[]; hashes: readonly number[]; hash: number };
const FNV_OFFSET = 0x811c9dc5;
const imul = Math.imul; // a module binding: global lookups are slow in jest's sandbox
const fnv = (hash: number, text: string) => {
  let h = hash;
  for (let i = 0; i < text.length; i++) h = imul(h ^ text.charCodeAt(i), 0x01000193);
  return h;
};
const keyIds = new Map<string, number>();
const keyId = (key: string) => keyIds.get(key) ?? keyIds.set(key, keyIds.size).get(key)!;
const mix = (k: number, h: number) => imul(h ^ imul(k + 1, 0x9e3779b1), 0x85ebca6b);
const wholeMapModel: Model<KvMap, AppendKvInput, string> = {
  init: () => ({ values: [], hashes: [], hash: 0 }),
  step(state, input, output) {
    const k = keyId(input.key);
    const current = state.values[k] ?? '';
    if (input.f === 'get') return [output === current, state];
    const before = state.hashes[k] ?? FNV_OFFSET;
    const value = input.f === 'put' ? input.value : current + input.value;
    const after = input.f === 'put' ? fnv(FNV_OFFSET, value) : fnv(before, input.value);
    const values = state.values.slice();
    const hashes = state.hashes.slice();
    values[k] = value;
    hashes[k] = after;
    const hash = state.hash ^ (current === '' ? 0 : mix(k, before)) ^ (value === '' ? 0 : mix(k, after));
    return [true, { values, hashes, hash }];
  },
  equal(a, b) {
    if (a === b) return true;
    if (a.hash !== b.hash) return false;
    for (let k = 0; k < Math.max(a.values.length, b.values.length); k++) if ((a.values[k] ?? '') !== (b.values[k] ?? '')) return false;
    return true;
  },
  hash: (state) => state.hash,
  isReadOnly: (input) => input.f === 'get',
  isBlindWrite: (input) => input.f === 'put',
  describeOperation: appendKvModel.describeOperation,
  describeState: (state) => JSON.stringify(state.values),
};

describe('porcupine kv histories (get/put/append on 10 keys, 1 to 50 clients)', () => {
  it.each([
    ['c01-ok', 'linearizable'],
    ['c01-bad', 'violation'],
    ['c10-ok', 'linearizable'],
    ['c10-bad', 'violation'],
    ['c50-ok', 'linearizable'],
    ['c50-bad', 'violation'],
  ])('%s, partitioned by key: %s', (name, expected) => {
    expect(checkOperations(appendKvModel, kv(name), { timeBudgetMs: 10_000 }).verdict).toBe(expected);
  });

  it.each([
    ['c01-ok', 'linearizable'],
    ['c01-bad', 'violation'],
    ['c10-ok', 'linearizable'],
    ['c10-bad', 'violation'],
  ])('%s, unpartitioned (porcupine: 60 to 90 s for c10 in Go): %s', (name, expected) => {
    expect(checkOperations(wholeMapModel, kv(name), { timeBudgetMs: 15_000 }).verdict).toBe(expected);
  });
});

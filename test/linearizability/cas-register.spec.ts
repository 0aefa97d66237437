import { checkHistory } from './checker';
import { HistoryOp } from './history';
import { CAS, NOT_OBSERVED, RegisterKvModel } from './register-model';

/**
 * The compare-and-set register as the chaos suite's cas workload records it (test/chaos/clients.ts
 * casOnce): a client reads the key, then writes a new unique value with If-Match of the version it read,
 * recorded as cas(expected = the value read, new value): 200 `swapped: true`, 412 `swapped: false`, a
 * timeout `unknown`. Each history below is drawn as a timeline (time flows right; [---] an operation,
 * [--- ... one of unknown outcome), one line per client.
 */

type Draft = Omit<HistoryOp, 'id' | 'client'> & { client: string };

let ids = 0;
const history = (...drafts: Draft[]): HistoryOp[] => drafts.map((d) => ({ id: ids++, ...d }));

const get = (client: string, value: string | null, start: number, end: number): Draft => ({
  client, op: 'get', key: 'x', start, end, outcome: 'ok', result: value === null ? { found: false } : { found: true, value },
});
const put = (client: string, value: string, start: number, end: number): Draft => ({ client, op: 'put', key: 'x', value, start, end, outcome: 'ok' });
const del = (client: string, start: number, end: number): Draft => ({ client, op: 'delete', key: 'x', start, end, outcome: 'ok', result: { found: true } });
/** A compare-and-set of the value `expected` the client read (null: absent) to `value`. */
const cas = (client: string, expected: string | null, value: string, swapped: boolean | 'unknown' | 'fail', start: number, end: number): Draft =>
  swapped === 'unknown'
    ? { client, op: 'cas', key: 'x', expected, value, start, outcome: 'unknown' }
    : swapped === 'fail'
      ? { client, op: 'cas', key: 'x', expected, value, start, end, outcome: 'fail' }
      : { client, op: 'cas', key: 'x', expected, value, start, end, outcome: 'ok', result: { swapped } };

const verdictOf = (ops: HistoryOp[]) => checkHistory(ops).verdict;

describe('the cas workload: histories the checker rejects', () => {
  it('a compare-and-set that succeeded on a stale version (the store ignored If-Match)', () => {
    // c1 get -> a [--]                      cas(a -> c) swapped [--]
    // c2                put b [--]
    const ops = history(put('c0', 'a', 0, 5), get('c1', 'a', 10, 20), put('c2', 'b', 30, 40), cas('c1', 'a', 'c', true, 50, 60));
    const result = checkHistory(ops);
    expect(result.verdict).toBe('violation');
    expect(result.violation).toMatchObject({ blocked: ops[3], stateAfterPrefix: '"b"' });
    expect(result.violation!.explanation).toContain('cas("x", "a" -> "c") -> swapped');
  });

  it('a stale compare-and-set whose overwrite was concurrent with the read, but seen by a read before it', () => {
    // c1 get -> a [--]                   cas(a -> c) swapped [--]
    // c2    put b [------]
    // c3                 get -> b [--]
    const ops = history(put('c0', 'a', 0, 5), get('c1', 'a', 10, 20), put('c2', 'b', 15, 30), get('c3', 'b', 35, 40), cas('c1', 'a', 'c', true, 45, 50));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('a lost update: two clients read the same version and both compare-and-sets swapped', () => {
    // c1 get -> a [--]   cas(a -> b) swapped [----]
    // c2 get -> a [--]      cas(a -> c) swapped [----]
    const ops = history(put('c0', 'a', 0, 5), get('c1', 'a', 10, 20), get('c2', 'a', 10, 20), cas('c1', 'a', 'b', true, 30, 50), cas('c2', 'a', 'c', true, 40, 60));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('a lost update behind an unknown outcome: the first swap was seen, the second still swapped from the old value', () => {
    // c1 get -> a [--] cas(a -> b) ...
    // c2                                get -> b [--]
    // c3 get -> a [--]                                 cas(a -> c) swapped [--]
    const ops = history(
      put('c0', 'a', 0, 5),
      get('c1', 'a', 10, 20),
      cas('c1', 'a', 'b', 'unknown', 25, 0),
      get('c2', 'b', 30, 40),
      get('c3', 'a', 10, 20),
      cas('c3', 'a', 'c', true, 50, 60),
    );
    expect(verdictOf(ops)).toBe('violation');
  });

  it('two creates-if-absent that both swapped', () => {
    // c1 get -> absent [--] cas(absent -> a) swapped [--]
    // c2 get -> absent [--]                              cas(absent -> b) swapped [--]
    const ops = history(get('c1', null, 0, 10), get('c2', null, 0, 10), cas('c1', null, 'a', true, 20, 30), cas('c2', null, 'b', true, 40, 50));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('a 412 although nothing changed the version read', () => {
    // c1 get -> a [--] cas(a -> b) not swapped [--]
    expect(verdictOf(history(put('c0', 'a', 0, 5), get('c1', 'a', 10, 20), cas('c1', 'a', 'b', false, 30, 40)))).toBe('violation');
  });

  it('a compare-and-set answered 412 whose value shows up anyway', () => {
    // c1 get -> a [--] cas(a -> b) not swapped [--]
    // c2 put z [--]                                 get -> b [--]
    const ops = history(put('c0', 'a', 0, 5), get('c1', 'a', 10, 20), put('c2', 'z', 10, 20), cas('c1', 'a', 'b', false, 30, 40), get('c2', 'b', 50, 60));
    expect(verdictOf(ops)).toBe('violation');
  });

  it('a compare-and-set that certainly failed (503 "failed", a redirect) whose value shows up', () => {
    const ops = history(put('c0', 'a', 0, 5), get('c1', 'a', 10, 20), cas('c1', 'a', 'b', 'fail', 30, 40), get('c2', 'b', 50, 60));
    expect(verdictOf(ops)).toBe('violation');
  });
});

describe('the cas workload: histories the checker accepts', () => {
  it('two clients race from one version: one swaps, the other gets 412, reads again and swaps', () => {
    // c1 get -> a [--] cas(a -> b) swapped [----]
    // c2 get -> a [--]    cas(a -> c) 412 [----]  get -> b [--] cas(b -> d) swapped [--]
    const ops = history(
      put('c0', 'a', 0, 5),
      get('c1', 'a', 10, 20),
      get('c2', 'a', 10, 20),
      cas('c1', 'a', 'b', true, 30, 50),
      cas('c2', 'a', 'c', false, 35, 55),
      get('c2', 'b', 60, 70),
      cas('c2', 'b', 'd', true, 80, 90),
      get('c1', 'd', 100, 110),
    );
    expect(verdictOf(ops)).toBe('linearizable');
  });

  it('a timed-out compare-and-set that took effect late, explaining a later 412', () => {
    // c1 get -> a [--] cas(a -> b) ...
    // c2                  get -> a [--] cas(a -> c) 412 [--]
    // c3                                                     get -> b [--]
    const ops = history(
      put('c0', 'a', 0, 5),
      get('c1', 'a', 10, 20),
      cas('c1', 'a', 'b', 'unknown', 25, 0),
      get('c2', 'a', 30, 40),
      cas('c2', 'a', 'c', false, 50, 60),
      get('c3', 'b', 70, 80),
    );
    expect(verdictOf(ops)).toBe('linearizable');
  });

  it('a timed-out compare-and-set that never took effect, and one whose version had moved on', () => {
    // c1 get -> a [--] cas(a -> b) ...
    // c2                  get -> a [--] cas(a -> c) swapped [--] get -> c [--]
    const ops = history(
      put('c0', 'a', 0, 5),
      get('c1', 'a', 10, 20),
      cas('c1', 'a', 'b', 'unknown', 25, 0),
      get('c2', 'a', 30, 40),
      cas('c2', 'a', 'c', true, 50, 60),
      get('c2', 'c', 70, 80),
    );
    expect(verdictOf(ops)).toBe('linearizable');
  });

  it('create-if-absent, delete, and create again', () => {
    // c1 get -> absent [--] cas(absent -> a) swapped [--]             get -> absent [--] cas(absent -> b) swapped [--]
    // c2 get -> absent [--]    cas(absent -> z) 412 [--]   delete [--]
    const ops = history(
      get('c1', null, 0, 10),
      get('c2', null, 0, 10),
      cas('c1', null, 'a', true, 20, 30),
      cas('c2', null, 'z', false, 25, 35),
      del('c2', 40, 50),
      get('c1', null, 60, 70),
      cas('c1', null, 'b', true, 80, 90),
      get('c2', 'b', 100, 110),
    );
    expect(verdictOf(ops)).toBe('linearizable');
  });
});

describe('RegisterKvModel.step for cas', () => {
  // Interned values: 0 absent, 1 unobserved, then "a" = 2, "b" = 3 (mergeUnobserved off keeps them apart).
  const A = 2;
  const B = 3;
  const input = (expected: number, value: number) => ({ kind: CAS, key: 'x', expected, value }) as const;
  const cases: [string, number, number, number, number, boolean, number][] = [
    // name, state, expected, value, output, accepted, next
    ['swaps when the register holds expected', A, A, B, 1, true, B],
    ['cannot have swapped when it holds another value', B, A, B, 1, false, B],
    ['cannot have failed when it holds expected', A, A, B, 0, false, A],
    ['fails, changing nothing, when it holds another value', B, A, B, 0, true, B],
    ['create-if-absent swaps on absent', 0, 0, A, 1, true, A],
    ['create-if-absent cannot swap on a present key', A, 0, B, 1, false, A],
    ['an unknown outcome swaps when it can', A, A, B, NOT_OBSERVED, true, B],
    ['an unknown outcome changes nothing when it cannot swap', B, A, B, NOT_OBSERVED, true, B],
  ];
  it.each(cases)('%s', (_name, state, expected, value, output, accepted, next) => {
    expect(new RegisterKvModel({ mergeUnobserved: false }).step(state, input(expected, value), output)).toEqual([accepted, next]);
  });
});

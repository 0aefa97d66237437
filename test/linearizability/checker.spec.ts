import { checkHistory } from './checker';
import { HistoryOp, OpResult, Outcome } from './history';
import { simulateHistory } from './simulate';

/**
 * Hand-made histories, each drawn as a timeline in its comment (time flows right; [---] is an operation
 * from its start to its end, [--- ... an operation whose outcome is unknown). The checker must reject
 * the classic anomalies and accept the tricky-but-legal cases, above all those with unknown outcomes.
 */

type Draft = Omit<HistoryOp, 'id' | 'client'> & { client?: string };

let ids = 0;
function history(...drafts: Draft[]): HistoryOp[] {
  return drafts.map((d, i) => ({ id: ids++, client: d.client ?? `c${i}`, ...d }));
}

const ok = (o: Omit<Draft, 'outcome'>): Draft => ({ ...o, outcome: 'ok' });
const put = (value: string, start: number, end: number, outcome: Outcome = 'ok', key = 'x'): Draft =>
  outcome === 'unknown' ? { op: 'put', key, value, start, outcome } : { op: 'put', key, value, start, end, outcome };
const get = (value: string | null, start: number, end: number, key = 'x'): Draft =>
  ok({ op: 'get', key, start, end, result: value === null ? { found: false } : { found: true, value } });
const del = (start: number, end: number, outcome: Outcome = 'ok', found?: boolean, key = 'x'): Draft => {
  const result: OpResult | undefined = found === undefined ? undefined : { found };
  return outcome === 'unknown' ? { op: 'delete', key, start, outcome } : { op: 'delete', key, start, end, outcome, result };
};
const cas = (expected: string | null, value: string, swapped: boolean | 'unknown', start: number, end: number, key = 'x'): Draft =>
  swapped === 'unknown'
    ? { op: 'cas', key, expected, value, start, outcome: 'unknown' }
    : { op: 'cas', key, expected, value, start, end, outcome: 'ok', result: { swapped } };
/** Same as `op`, but the client learned nothing, though it waited until `gaveUpAt`. */
const timedOut = (op: Draft, gaveUpAt?: number): Draft => ({ ...op, outcome: 'unknown', end: gaveUpAt, result: undefined });

function verdictOf(ops: HistoryOp[]): string {
  return checkHistory(ops).verdict;
}

describe('checkHistory rejects', () => {
  it('a stale read: a read after a completed overwrite returns the old value', () => {
    // put 1 [--]  put 2 [--]  get -> 1 [--]
    expect(verdictOf(history(put('1', 0, 10), put('2', 20, 30), get('1', 40, 50)))).toBe('violation');
  });

  it('a lost write: an acknowledged write that a later read does not see', () => {
    // put 1 [--]        get -> absent [--]
    expect(verdictOf(history(put('1', 0, 10), get(null, 20, 30)))).toBe('violation');
  });

  it('a lost write among concurrent writers: both writes done, a later read sees neither', () => {
    // put 1 [----]
    // put 2   [----]
    //                 get -> absent [--]
    expect(verdictOf(history(put('1', 0, 10), put('2', 5, 15), get(null, 20, 30)))).toBe('violation');
  });

  it('a read of a value never written', () => {
    expect(verdictOf(history(put('1', 0, 10), get('7', 5, 15)))).toBe('violation');
  });

  it('a write visible, then invisible: two reads during a slow write disagree in the wrong order', () => {
    // put 1 [------------------]
    //        get -> 1 [--]  get -> absent [--]
    expect(verdictOf(history(put('1', 0, 100), get('1', 10, 20), get(null, 30, 40)))).toBe('violation');
  });

  it('a value that comes back: two writes in order, then reads see the newer, then the older', () => {
    expect(verdictOf(history(put('1', 0, 10), put('2', 0, 10), get('2', 20, 30), get('1', 40, 50)))).toBe('violation');
  });

  it('a failed write that became visible (fail means it certainly did not take effect)', () => {
    expect(verdictOf(history(put('1', 0, 10, 'fail'), get('1', 20, 30)))).toBe('violation');
  });

  it('an unknown write seen before it was even sent', () => {
    //  get -> 1 [--]   put 1 [--- ...
    expect(verdictOf(history(get('1', 0, 10), put('1', 20, 30, 'unknown')))).toBe('violation');
  });

  it('an unknown write taking effect twice', () => {
    // put 2 [--- ...
    //   get -> 2 [--]  put 3 [--]  get -> 2 [--]
    expect(verdictOf(history(put('2', 0, 0, 'unknown'), get('2', 10, 20), put('3', 30, 40), get('2', 50, 60)))).toBe('violation');
  });

  it('a delete that did not take effect', () => {
    expect(verdictOf(history(put('1', 0, 10), del(20, 30), get('1', 40, 50)))).toBe('violation');
  });

  it('a delete that reports the key missing while it held a value', () => {
    expect(verdictOf(history(put('1', 0, 10), del(20, 30, 'ok', false)))).toBe('violation');
  });

  it('a delete that reports the key existing while it was absent', () => {
    expect(verdictOf(history(del(0, 10, 'ok', true)))).toBe('violation');
  });

  it('a cas that swapped although the register held another value', () => {
    expect(verdictOf(history(put('1', 0, 10), cas('2', '3', true, 20, 30)))).toBe('violation');
  });

  it('a cas that did not swap although the register held the expected value', () => {
    expect(verdictOf(history(put('1', 0, 10), cas('1', '3', false, 20, 30)))).toBe('violation');
  });

  it('two cas from the same expected value that both swapped, with no write between them', () => {
    // Concurrent, so either could go first; but the second finds the first's value, not "1".
    expect(verdictOf(history(put('1', 0, 10), cas('1', '2', true, 20, 30), cas('1', '3', true, 20, 30)))).toBe('violation');
  });

  it('a create-if-absent that swapped on a key that existed', () => {
    expect(verdictOf(history(put('1', 0, 10), cas(null, '2', true, 20, 30)))).toBe('violation');
  });

  it('a history whose violation is on one key only, and says which', () => {
    const ops = history(put('1', 0, 10, 'ok', 'a'), get('1', 20, 30, 'a'), put('1', 0, 10, 'ok', 'b'), get(null, 20, 30, 'b'));
    const result = checkHistory(ops, { allPartitions: true });
    expect(result.verdict).toBe('violation');
    expect(result.perKey.a.verdict).toBe('linearizable');
    expect(result.perKey.b.verdict).toBe('violation');
    expect(result.violation?.key).toBe('b');
  });
});

describe('checkHistory accepts', () => {
  it('an empty history', () => {
    expect(checkHistory([])).toMatchObject({ verdict: 'linearizable', perKey: {} });
  });

  it('overlapping operations that can be ordered (the MIT 6.824 quiz example)', () => {
    // put 100 [-----------------]
    //            get -> 100 [-----------]
    //              get -> absent [-----]
    expect(verdictOf(history(put('100', 0, 100), get('100', 25, 75), get(null, 30, 60)))).toBe('linearizable');
  });

  it('reads during a slow write that flip once, from old to new', () => {
    expect(verdictOf(history(put('1', 0, 100), get(null, 10, 20), get('1', 30, 40), get('1', 50, 60)))).toBe('linearizable');
  });

  it('intervals that touch: an operation ending at t is concurrent with one starting at t', () => {
    expect(verdictOf(history(put('1', 0, 10), get(null, 10, 20)))).toBe('linearizable');
    expect(verdictOf(history(put('1', 0, 10), get(null, 11, 20)))).toBe('violation');
  });

  it('an unknown write that took effect long after the client gave up', () => {
    // put 1 [--]  put 2 [--- (gave up at 25)
    //                    get -> 1 [--]                      get -> 2 [--]
    expect(verdictOf(history(put('1', 0, 10), timedOut(put('2', 20, 0), 25), get('1', 30, 40), get('2', 1000, 1010)))).toBe('linearizable');
  });

  it('an unknown write that never took effect', () => {
    expect(verdictOf(history(put('1', 0, 10), timedOut(put('2', 20, 0), 25), get('1', 30, 40), get('1', 1000, 1010)))).toBe('linearizable');
  });

  it('an unknown write that took effect once and was then overwritten', () => {
    expect(verdictOf(history(put('2', 0, 0, 'unknown'), get('2', 10, 20), put('3', 30, 40), get('3', 50, 60)))).toBe('linearizable');
  });

  it('many unknown writes of which only some took effect, in any order', () => {
    const ops = history(
      put('a', 0, 0, 'unknown'),
      put('b', 1, 0, 'unknown'),
      put('c', 2, 0, 'unknown'),
      put('d', 3, 0, 'unknown'),
      get('c', 10, 20),
      get('a', 30, 40),
      del(50, 60),
      get(null, 70, 80),
      get('d', 90, 100),
    );
    expect(verdictOf(ops)).toBe('linearizable');
  });

  it('failed operations, which are dropped', () => {
    const result = checkHistory(history(put('1', 0, 10, 'fail'), get(null, 20, 30), timedOut(get('9', 5, 6))));
    expect(result).toMatchObject({ verdict: 'linearizable', dropped: { failed: 1, unknownReads: 1 } });
  });

  it('deletes: of a present key, of a missing key, concurrent with reads', () => {
    const ops = history(
      put('1', 0, 10),
      del(20, 30, 'ok', true),
      get(null, 40, 50),
      del(60, 70, 'ok', false),
      put('2', 80, 120),
      del(90, 130),
      get('2', 100, 110),
      get(null, 140, 150),
    );
    expect(verdictOf(ops)).toBe('linearizable');
  });

  it('an unknown delete that took effect later', () => {
    expect(verdictOf(history(put('1', 0, 10), del(20, 0, 'unknown'), get('1', 30, 40), get(null, 50, 60)))).toBe('linearizable');
  });

  it('compare-and-set: swaps, a failed compare, create-if-absent', () => {
    const ops = history(
      cas(null, '1', true, 0, 10),
      cas('1', '2', true, 20, 30),
      cas('1', '3', false, 40, 50),
      get('2', 60, 70),
      del(80, 90),
      cas(null, '4', true, 100, 110),
      get('4', 120, 130),
    );
    expect(verdictOf(ops)).toBe('linearizable');
  });

  it('two concurrent cas from the same value: one swapped, one did not', () => {
    expect(verdictOf(history(put('1', 0, 10), cas('1', '2', true, 20, 30), cas('1', '3', false, 20, 30), get('2', 40, 50)))).toBe('linearizable');
  });

  it('an unknown cas that took effect, and one that did not', () => {
    const ops = history(put('1', 0, 10), cas('1', '2', 'unknown', 20, 0), get('2', 40, 50), cas('9', '5', 'unknown', 60, 0), get('2', 70, 80));
    expect(verdictOf(ops)).toBe('linearizable');
  });
});

describe('checkHistory reports', () => {
  it('a violation with the longest linearizable prefix and the operation that cannot follow it', () => {
    const ops = history(put('1', 0, 10), put('2', 20, 30), get('1', 40, 50));
    const { violation } = checkHistory(ops);
    expect(violation).toMatchObject({
      key: 'x',
      prefix: [ops[0], ops[1]],
      stateAfterPrefix: '"2"',
      blocked: ops[2],
      candidates: [{ op: ops[2], why: 'cannot take effect when the register is "2"' }],
    });
    expect(violation?.explanation).toContain(`#${ops[2].id} get("x") -> "1"`);
  });

  it('per key: operations checked, configurations explored, time', () => {
    const result = checkHistory(history(put('1', 0, 10, 'ok', 'a'), get('1', 20, 30, 'a'), get(null, 0, 5, 'b')));
    expect(result.perKey.a).toMatchObject({ verdict: 'linearizable', ops: 2 });
    expect(result.perKey.b).toMatchObject({ verdict: 'linearizable', ops: 1 });
    expect(result.perKey.a.configurations).toBeGreaterThan(0);
    expect(result.elapsedMs).toBeGreaterThanOrEqual(0);
  });

  it('other keys as skipped once one key has a violation, unless asked to check all', () => {
    const ops = history(put('1', 0, 10, 'ok', 'bad'), get(null, 20, 30, 'bad'), put('1', 0, 10, 'ok', 'fine'), get('1', 20, 30, 'fine'), put('2', 40, 50, 'ok', 'fine'));
    expect(checkHistory(ops).perKey.fine).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('skipped') });
    expect(checkHistory(ops, { allPartitions: true }).perKey.fine.verdict).toBe('linearizable');
  });
});

describe('checkHistory budgets', () => {
  const big = simulateHistory({ seed: 11, clients: 8, ops: 3000, unknown: 0.05 });

  it('end in unknown, never in linearizable, when time runs out', () => {
    expect(checkHistory(big).verdict).toBe('linearizable');
    const result = checkHistory(big, { timeBudgetMs: 0 });
    expect(result.verdict).toBe('unknown');
    expect(result.perKey.k0.reason).toBe('time budget exhausted');
  });

  it('end in unknown when the memo outgrows its memory budget', () => {
    const result = checkHistory(big, { memoryBudgetMb: 0 });
    expect(result.verdict).toBe('unknown');
    expect(result.perKey.k0.reason).toBe('memory budget exhausted');
  });
});

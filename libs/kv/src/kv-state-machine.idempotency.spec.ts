import { EntryType } from '@app/consensus';
import { encodeCommand, KvCommand, KvCondition } from './kv-command';
import { IdempotencyTable } from './idempotency-table';
import { KvStateMachine } from './kv-state-machine';
import { requestFingerprint } from './write-options';

const T0 = 1_800_000_000_000;
let nextIndex = 0;
const apply = (sm: KvStateMachine, command: KvCommand) =>
  sm.apply({ term: 1, index: ++nextIndex, type: EntryType.Normal, data: encodeCommand(command) })!;
/** A PUT with an Idempotency-Key, its fingerprint computed as the service does. */
const put = (sm: KvStateMachine, token: string, key: string, value: string, at = T0, condition?: KvCondition) =>
  apply(sm, { op: 'put', key, value, condition, at, idempotency: { token, fingerprint: requestFingerprint({ method: 'PUT', key, value, condition }) } });
const del = (sm: KvStateMachine, token: string, key: string, at = T0) =>
  apply(sm, { op: 'delete', key, at, idempotency: { token, fingerprint: requestFingerprint({ method: 'DELETE', key }) } });

function restored(sm: KvStateMachine): KvStateMachine {
  const view = sm.snapshot();
  const copy = new KvStateMachine();
  let failure: Error | undefined = new Error('done not called');
  copy.restore(view.chunks(), (error) => (failure = error));
  view.release();
  if (failure) throw failure;
  return copy;
}

describe('KvStateMachine: Idempotency-Key', () => {
  it('applies the first write and remembers its outcome; a retry is not applied again and answers that outcome', () => {
    const sm = new KvStateMachine();
    const first = put(sm, 'retry-1', 'k', 'v1');
    const index = sm.getRecord('k')!.modIndex;
    expect(first).toMatchObject({ valid: true, conditionHeld: true, existed: false, createIndex: index, modIndex: index });
    expect(first.replayOf).toBeUndefined();
    apply(sm, { op: 'put', key: 'k', value: 'another client' });
    const retry = put(sm, 'retry-1', 'k', 'v1');
    expect(retry).toEqual({ valid: true, conditionHeld: true, existed: false, createIndex: index, modIndex: index, replayOf: index });
    // The value written in between by another client is not overwritten by the retry.
    expect(sm.get('k')).toBe('another client');
  });

  it('refuses the same key with another request (value, key, method or condition): nothing applied', () => {
    const sm = new KvStateMachine();
    put(sm, 'used', 'k', 'v');
    const before = sm.getRecord('k');
    expect(put(sm, 'used', 'k', 'other value')).toMatchObject({ idempotencyMismatch: true, conditionHeld: false });
    expect(put(sm, 'used', 'other key', 'v')).toMatchObject({ idempotencyMismatch: true, existed: false });
    expect(del(sm, 'used', 'k')).toMatchObject({ idempotencyMismatch: true });
    expect(put(sm, 'used', 'k', 'v', T0, { kind: 'absent' })).toMatchObject({ idempotencyMismatch: true });
    expect(sm.getRecord('k')).toEqual(before);
    expect(sm.has('other key')).toBe(false);
  });

  it('remembers a failed condition too: the retry answers it again, even once the condition would hold', () => {
    const sm = new KvStateMachine();
    apply(sm, { op: 'put', key: 'lock', value: 'someone' });
    const held = sm.getRecord('lock')!.modIndex;
    expect(put(sm, 'cas', 'lock', 'me', T0, { kind: 'absent' })).toMatchObject({ conditionHeld: false, modIndex: held });
    const refused = nextIndex;
    apply(sm, { op: 'delete', key: 'lock' });
    expect(put(sm, 'cas', 'lock', 'me', T0, { kind: 'absent' })).toMatchObject({ conditionHeld: false, modIndex: held, replayOf: refused });
    expect(sm.has('lock')).toBe(false);
  });

  it('remembers deletes, with whether the key existed', () => {
    const sm = new KvStateMachine();
    apply(sm, { op: 'put', key: 'k', value: 'v' });
    const first = del(sm, 'd', 'k');
    const deletedAt = nextIndex;
    apply(sm, { op: 'put', key: 'k', value: 'again' });
    expect(del(sm, 'd', 'k')).toMatchObject({ existed: true, replayOf: deletedAt });
    expect(first.existed).toBe(true);
    expect(sm.get('k')).toBe('again');
  });

  it('forgets a key once the entries\' time is past the window, measured on the entries, never on a clock here', () => {
    const sm = new KvStateMachine();
    sm.useIdempotencyLimits({ windowMs: 10_000, maxKeys: 100 });
    put(sm, 'old', 'k', 'v', T0);
    expect(put(sm, 'old', 'k', 'v', T0 + 9_999).replayOf).toBeDefined();
    // A later entry moves the table's clock past the window: the token is applied anew.
    apply(sm, { op: 'put', key: 'tick', value: '', ttl: 1, at: T0 + 10_000 });
    expect(sm.idempotentOutcome('old')).toBeUndefined();
    expect(put(sm, 'old', 'k', 'v', T0 + 10_001).replayOf).toBeUndefined();
  });

  it('an entry with an older at (a leader with a slower clock) does not move the clock back', () => {
    const sm = new KvStateMachine();
    sm.useIdempotencyLimits({ windowMs: 10_000, maxKeys: 100 });
    put(sm, 'a', 'k', 'v', T0);
    put(sm, 'b', 'k', 'v', T0 + 20_000);
    put(sm, 'c', 'k', 'v', T0 + 5_000);
    expect(sm.idempotentOutcome('a')).toBeUndefined();
    // c's own at is already outside the window at the table's clock: it is not answered from the table.
    expect(sm.idempotentOutcome('c')).toBeUndefined();
    expect(sm.idempotentOutcome('b')).toBeDefined();
  });

  it('keeps at most maxKeys, forgetting the oldest first', () => {
    const sm = new KvStateMachine();
    sm.useIdempotencyLimits({ windowMs: 600_000, maxKeys: 2 });
    put(sm, 't1', 'a', '1');
    put(sm, 't2', 'b', '2');
    put(sm, 't3', 'c', '3');
    expect(['t1', 't2', 't3'].map((t) => sm.idempotentOutcome(t) !== undefined)).toEqual([false, true, true]);
  });

  it('reaches the same table on every replica and on one restored from a snapshot (format 3)', () => {
    const sm = new KvStateMachine();
    sm.useIdempotencyLimits({ windowMs: 60_000, maxKeys: 3 });
    for (let i = 0; i < 5; i++) put(sm, `t${i}`, `k${i}`, 'v', T0 + i);
    del(sm, 'd', 'k0', T0 + 10);
    const copy = restored(sm);
    copy.useIdempotencyLimits({ windowMs: 60_000, maxKeys: 3 });
    for (const token of ['t0', 't1', 't2', 't3', 't4', 'd']) {
      expect({ token, outcome: copy.idempotentOutcome(token) }).toEqual({ token, outcome: sm.idempotentOutcome(token) });
    }
    // The clock came along: the same entry is pruned alike on both.
    const late = { op: 'put', key: 'x', value: '', at: T0 + 60_004 } as const;
    apply(sm, late);
    apply(copy, late);
    expect(['t3', 't4', 'd'].map((t) => copy.idempotentOutcome(t) !== undefined)).toEqual(['t3', 't4', 'd'].map((t) => sm.idempotentOutcome(t) !== undefined));
    expect(copy.idempotentOutcome('t3')).toBeUndefined();
    expect(copy.idempotentOutcome('d')).toBeDefined();
  });

  it('a write without a key leaves the table alone', () => {
    const sm = new KvStateMachine();
    apply(sm, { op: 'put', key: 'k', value: 'v' });
    apply(sm, { op: 'delete', key: 'k' });
    expect((sm as unknown as { idempotency: IdempotencyTable }).idempotency.size).toBe(0);
  });
});

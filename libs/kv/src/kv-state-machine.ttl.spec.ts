import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Entry, EntryType } from '@app/consensus';
import { encodeCommand, KvCommand, KvExpiry } from './kv-command';
import { KvRecord } from './kv-snapshot-format';
import { ExpiryListener, KvStateMachine } from './kv-state-machine';

const T0 = 1_800_000_000_000;
let nextIndex = 0;
const apply = (sm: KvStateMachine, command: KvCommand) =>
  sm.apply({ term: 1, index: ++nextIndex, type: EntryType.Normal, data: encodeCommand(command) } as Entry);
const putTtl = (sm: KvStateMachine, key: string, value: string, ttl: number, at = T0) => apply(sm, { op: 'put', key, value, ttl, at });
const expire = (sm: KvStateMachine, at: number, ...keys: KvExpiry[]) => apply(sm, { op: 'expire', at, keys });
const modIndexOf = (sm: KvStateMachine, key: string) => sm.getRecord(key)!.modIndex;

function restored(chunks: Iterable<Uint8Array>, snapshotIndex = 50): KvStateMachine {
  const sm = new KvStateMachine();
  sm.useSnapshotIndex(() => snapshotIndex);
  let failure: Error | undefined = new Error('done not called');
  sm.restore(chunks, (error) => (failure = error));
  if (failure) throw failure;
  return sm;
}

describe('KvStateMachine: keys with a TTL', () => {
  it("sets expiresAt to the entry's at plus the TTL, not from the applying node's clock", () => {
    const sm = new KvStateMachine();
    putTtl(sm, 'k', 'v', 30, T0);
    expect(sm.getRecord('k')).toMatchObject({ value: 'v', expiresAt: T0 + 30_000 });
    expect(sm.expiringKeys).toBe(1);
  });

  it('a put without a TTL clears it; a put with a new TTL replaces it', () => {
    const sm = new KvStateMachine();
    putTtl(sm, 'k', 'v', 30);
    apply(sm, { op: 'put', key: 'k', value: 'w' });
    expect(sm.getRecord('k')!.expiresAt).toBeUndefined();
    expect(sm.expiringKeys).toBe(0);
    putTtl(sm, 'k', 'x', 5, T0 + 1000);
    expect(sm.getRecord('k')!.expiresAt).toBe(T0 + 6000);
    expect(sm.expiringKeys).toBe(1);
  });

  it('tells the listener of each deadline in apply order, and of a restore', () => {
    const sm = new KvStateMachine();
    const heard: string[] = [];
    const listener: ExpiryListener = {
      scheduled: (key, modIndex, expiresAt) => heard.push(`${key}@${modIndex} ${expiresAt - T0}`),
      restored: () => heard.push('restored'),
    };
    sm.setExpiryListener(listener);
    putTtl(sm, 'a', '1', 1);
    apply(sm, { op: 'put', key: 'b', value: '2' });
    putTtl(sm, 'a', '3', 2);
    const view = sm.snapshot();
    const chunks = [...view.chunks()];
    view.release();
    sm.restore(chunks, () => undefined);
    expect(heard).toEqual([`a@${nextIndex - 2} 1000`, `a@${nextIndex} 2000`, 'restored']);
  });
});

describe('KvStateMachine: the expire command', () => {
  it('deletes a due key that still has the modIndex the leader saw, through the delete path (dataBytes, size)', () => {
    const sm = new KvStateMachine();
    putTtl(sm, 'k', 'value', 1);
    apply(sm, { op: 'put', key: 'other', value: 'x' });
    const bytes = sm.dataBytes;
    expect(expire(sm, T0 + 1000, { key: 'k', modIndex: modIndexOf(sm, 'k') })).toMatchObject({ valid: true, expired: 1, existed: true });
    expect(sm.has('k')).toBe(false);
    expect(sm.size).toBe(1);
    expect(sm.dataBytes).toBe(bytes - 'k'.length - 'value'.length);
    expect(sm.expiringKeys).toBe(0);
  });

  it.each<[string, (sm: KvStateMachine, seen: number) => KvExpiry, number]>([
    ['not yet due at the entry\'s at (a leader whose clock is behind)', (_sm, seen) => ({ key: 'k', modIndex: seen }), T0 + 999],
    ['rewritten since (another modIndex)', (sm, seen) => (putTtl(sm, 'k', 'again', 1), { key: 'k', modIndex: seen }), T0 + 5000],
    ['rewritten without a TTL, with the modIndex the leader saw later', (sm) => (apply(sm, { op: 'put', key: 'k', value: 'kept' }), { key: 'k', modIndex: modIndexOf(sm, 'k') }), T0 + 5000],
    ['deleted and created again', (sm, seen) => (apply(sm, { op: 'delete', key: 'k' }), apply(sm, { op: 'put', key: 'k', value: 'new' }), { key: 'k', modIndex: seen }), T0 + 5000],
  ])('keeps a key %s', (_name, change, at) => {
    const sm = new KvStateMachine();
    putTtl(sm, 'k', 'v', 1);
    const listed = change(sm, modIndexOf(sm, 'k'));
    const before = sm.getRecord('k');
    expect(expire(sm, at, listed)).toMatchObject({ valid: true, expired: 0, existed: false });
    expect(sm.getRecord('k')).toEqual(before);
  });

  it('in one command, deletes the keys that are due and keeps the others; a missing key is no error', () => {
    const sm = new KvStateMachine();
    putTtl(sm, 'a', '1', 1);
    putTtl(sm, 'b', '2', 10);
    putTtl(sm, 'c', '3', 1);
    const seen = (key: string) => ({ key, modIndex: modIndexOf(sm, key) });
    const result = expire(sm, T0 + 2000, seen('a'), seen('b'), seen('c'), { key: 'gone', modIndex: 1 });
    expect(result).toMatchObject({ expired: 2 });
    expect([...sm.entries()]).toEqual([['b', '2']]);
  });

  it('reaches the same map on every replica, whatever their clocks', () => {
    const replicas = [new KvStateMachine(), new KvStateMachine()];
    const log: KvCommand[] = [
      { op: 'put', key: 'k', value: 'v', ttl: 1, at: T0 },
      { op: 'expire', at: T0 + 1500, keys: [{ key: 'k', modIndex: nextIndex + 1 }] },
    ];
    for (const sm of replicas) {
      let index = nextIndex;
      for (const command of log) sm.apply({ term: 1, index: ++index, type: EntryType.Normal, data: encodeCommand(command) });
    }
    expect(replicas.map((sm) => sm.has('k'))).toEqual([false, false]);
  });

  it('works while a snapshot view is alive (the delete goes to the delta), and the view keeps the key', () => {
    const sm = new KvStateMachine();
    putTtl(sm, 'k', 'v', 1);
    const view = sm.snapshot();
    expire(sm, T0 + 1000, { key: 'k', modIndex: modIndexOf(sm, 'k') });
    expect(sm.has('k')).toBe(false);
    expect(view.get('k')).toBe('v');
    view.release();
    expect(sm.has('k')).toBe(false);
  });
});

describe('KvStateMachine snapshots with expiry (format 3)', () => {
  it('round-trips expiresAt, and the restored machine counts the expiring keys', () => {
    const sm = new KvStateMachine();
    putTtl(sm, 'a', '1', 30);
    apply(sm, { op: 'put', key: 'b', value: '2' });
    const view = sm.snapshot();
    const copy = restored(view.chunks());
    view.release();
    expect(new Map(copy.records())).toEqual(new Map(sm.records()));
    expect(copy.getRecord('a')!.expiresAt).toBe(T0 + 30_000);
    expect(copy.expiringKeys).toBe(1);
  });

  it('restores a format 2 snapshot (the committed fixture): indexes as written, nothing expires', () => {
    const copy = restored([readFileSync(join(__dirname, 'testdata', 'snapshot-format-2.bin'))]);
    expect(copy.getRecord('alpha')).toEqual<KvRecord>({ value: 'one', createIndex: 3, modIndex: 7 });
    expect(copy.expiringKeys).toBe(0);
    expect(copy.idempotentOutcome('anything')).toBeUndefined();
  });

  it('restores a format 1 snapshot: nothing expires', () => {
    const copy = restored([readFileSync(join(__dirname, 'testdata', 'snapshot-format-1.bin'))], 7340);
    expect(copy.getRecord('lock')).toEqual<KvRecord>({ value: 'owner-1', createIndex: 7340, modIndex: 7340 });
    expect(copy.expiringKeys).toBe(0);
  });
});

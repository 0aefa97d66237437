import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Entry, EntryType } from '@app/consensus';
import { encodeCommand, KvCondition } from './kv-command';
import {
  decodeKvSnapshot,
  decodeKvSnapshotRecords,
  encodeKvSnapshot as encodeRecords,
  KV_SNAPSHOT_CHUNK_BYTES,
  KvRecord,
  MalformedKvSnapshotError,
} from './kv-snapshot-format';
import { holds, KvSnapshotView, KvStateMachine } from './kv-state-machine';

let nextIndex = 0;
const entry = (data: Uint8Array, type = EntryType.Normal): Entry => ({ term: 1, index: ++nextIndex, type, data });
const put = (sm: KvStateMachine, key: string, value: string, condition?: KvCondition) =>
  sm.apply(entry(encodeCommand({ op: 'put', key, value, condition })));
const del = (sm: KvStateMachine, key: string, condition?: KvCondition) => sm.apply(entry(encodeCommand({ op: 'delete', key, condition })));
/** Snapshot content from plain pairs, each key created and changed at index 1. */
const encodeKvSnapshot = (pairs: Iterable<[string, string]>, target?: number) =>
  encodeRecords([...pairs].map(([key, value]): [string, KvRecord] => [key, { value, createIndex: 1, modIndex: 1 }]), target);
const live = (sm: KvStateMachine) => new Map(sm.entries());
const content = (view: KvSnapshotView) => decodeKvSnapshot(view.chunks());

/** The write buffer is private; its absence is what "later writes go straight to the map" means. */
const delta = (sm: KvStateMachine) => (sm as unknown as { delta?: Map<string, unknown> }).delta;

function machineWith(pairs: Iterable<[string, string]>): KvStateMachine {
  const sm = new KvStateMachine();
  for (const [key, value] of pairs) put(sm, key, value);
  return sm;
}

/** Restores `chunks` (synchronously) into `sm` and returns what done() received. */
function restoreSync(sm: KvStateMachine, chunks: Iterable<Uint8Array>): { calls: number; error?: Error } {
  const outcome: { calls: number; error?: Error } = { calls: 0 };
  sm.restore(chunks, (error) => {
    outcome.calls++;
    outcome.error = error;
  });
  return outcome;
}

function restoreAsync(sm: KvStateMachine, chunks: AsyncIterable<Uint8Array>): Promise<Error | undefined> {
  return new Promise((resolve) => sm.restore(chunks, resolve));
}

async function* asAsync(chunks: Iterable<Uint8Array>, log?: string[]): AsyncGenerator<Uint8Array> {
  let i = 0;
  for (const chunk of chunks) {
    log?.push(`chunk ${i++}`);
    yield chunk;
  }
}

describe('KvStateMachine.apply', () => {
  it('puts, overwrites and deletes, saying whether the key existed', () => {
    const sm = new KvStateMachine();
    expect(put(sm, 'a', '1')).toMatchObject({ existed: false, valid: true, conditionHeld: true });
    expect(put(sm, 'a', '2')).toMatchObject({ existed: true, valid: true, conditionHeld: true });
    expect(del(sm, 'a')).toMatchObject({ existed: true, valid: true, conditionHeld: true });
    expect(del(sm, 'a')).toMatchObject({ existed: false, valid: true, conditionHeld: true });
    expect(sm.get('a')).toBeUndefined();
    expect(sm.size).toBe(0);
  });

  it('skips no-ops and entries that are not commands', () => {
    const sm = machineWith([['a', '1']]);
    expect(sm.apply(entry(new Uint8Array(0)))).toBeUndefined();
    expect(sm.apply(entry(encodeCommand({ op: 'delete', key: 'a' }), EntryType.ConfChange))).toBeUndefined();
    expect(sm.apply(entry(Uint8Array.of(9, 9, 9, 9, 9, 9)))).toMatchObject({ existed: false, valid: false });
    expect(live(sm)).toEqual(new Map([['a', '1']]));
  });
});

/** dataBytes the slow way: what the counter kept on apply must always equal. */
const bytesOf = (pairs: Iterable<[string, string]>) => {
  let total = 0;
  for (const [key, value] of pairs) total += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value, 'utf8');
  return total;
};
const valuesOf = (records: Map<string, KvRecord>): Array<[string, string]> => [...records].map(([key, record]) => [key, record.value]);

describe('KvStateMachine.dataBytes: UTF-8 bytes of every key plus its value', () => {
  it('counts puts, overwrites (longer and shorter) and deletes, in UTF-8 bytes rather than characters', () => {
    const sm = new KvStateMachine();
    expect(sm.dataBytes).toBe(0);
    put(sm, 'a', '12345');
    expect(sm.dataBytes).toBe(6);
    put(sm, 'é', '€'); // 2 + 3 bytes
    expect(sm.dataBytes).toBe(11);
    put(sm, 'a', '1234567890');
    expect(sm.dataBytes).toBe(16);
    put(sm, 'a', '');
    expect(sm.dataBytes).toBe(6);
    del(sm, 'missing');
    expect(sm.dataBytes).toBe(6);
    del(sm, 'é');
    expect(sm.dataBytes).toBe(1);
    del(sm, 'a');
    expect(sm.dataBytes).toBe(0);
  });

  it('is not changed by no-ops and entries that are not commands', () => {
    const sm = machineWith([['key', 'value']]);
    sm.apply(entry(new Uint8Array(0)));
    sm.apply(entry(encodeCommand({ op: 'delete', key: 'key' }), EntryType.ConfChange));
    sm.apply(entry(Uint8Array.of(9, 9, 9, 9, 9, 9)));
    expect(sm.dataBytes).toBe(8);
  });

  it('counts writes made while a view is alive, and is unchanged by the view\'s release', () => {
    const sm = machineWith([['a', '1'], ['b', '22']]);
    const view = sm.snapshot();
    put(sm, 'a', '111'); // grows by 2
    del(sm, 'b'); // shrinks by 3
    put(sm, 'c', 'x'); // grows by 2
    expect(sm.dataBytes).toBe(5 + 2 - 3 + 2);
    view.release();
    expect(sm.dataBytes).toBe(6);
    expect(sm.dataBytes).toBe(bytesOf(sm.entries()));
  });

  it('is restored with a snapshot (sync and async) and survives a round trip through a view\'s chunks', async () => {
    const pairs: Array<[string, string]> = Array.from({ length: 50 }, (_, i) => [`k${i}-ü`, 'v€'.repeat(i)]);
    const source = machineWith(pairs);
    const view = source.snapshot();
    const chunks = [...view.chunks()];
    view.release();

    const sm = machineWith([['old', 'state']]);
    expect(restoreSync(sm, chunks).error).toBeUndefined();
    expect(sm.dataBytes).toBe(source.dataBytes);
    expect(sm.dataBytes).toBe(bytesOf(pairs));

    const other = machineWith([['old', 'state']]);
    expect(await restoreAsync(other, asAsync(encodeKvSnapshot(pairs, 64)))).toBeUndefined();
    expect(other.dataBytes).toBe(bytesOf(pairs));
    put(other, 'k0-ü', 'longer');
    expect(other.dataBytes).toBe(bytesOf(other.entries()));
  });

  it('a restore that fails or is superseded leaves it as it was', async () => {
    const sm = machineWith([['old', 'state']]);
    const snapshot = [...encodeKvSnapshot([['n', 'v'.repeat(100)]], 64)];
    restoreSync(sm, [snapshot[0].subarray(0, snapshot[0].length - 1)]);
    expect(sm.dataBytes).toBe(8);
    const slow = restoreAsync(sm, asAsync(snapshot));
    expect(restoreSync(sm, encodeKvSnapshot([['x', 'y']])).error).toBeUndefined();
    expect((await slow)?.message).toMatch(/superseded/);
    expect(sm.dataBytes).toBe(2);
  });
});

describe('KvStateMachine.putGrowth: what a put would add to dataBytes', () => {
  it.each<[string, Array<[string, string]>, string, string, number]>([
    ['a new key: key plus value', [], 'key', 'value', 8],
    ['a new key with multi-byte characters', [], 'ключ', '€', 11],
    ['a new key with an empty value', [], 'k', '', 1],
    ['a longer value', [['key', 'ab']], 'key', 'abcd', 2],
    ['the same length', [['key', 'ab']], 'key', 'xy', 0],
    ['a shorter value', [['key', 'abcd']], 'key', 'a', -3],
    ['as many characters but more bytes', [['key', 'ab']], 'key', 'éé', 2],
  ])('%s', (_name, pairs, key, value, growth) => {
    const sm = machineWith(pairs);
    const before = sm.dataBytes;
    expect(sm.putGrowth(key, value)).toBe(growth);
    // The prediction is exactly what applying it does.
    put(sm, key, value);
    expect(sm.dataBytes - before).toBe(growth);
  });

  it('sees writes made while a view is alive', () => {
    const sm = machineWith([['key', 'ab']]);
    const view = sm.snapshot();
    put(sm, 'key', 'abcdef');
    expect(sm.putGrowth('key', 'abcdefgh')).toBe(2);
    del(sm, 'key');
    expect(sm.putGrowth('key', 'a')).toBe(4);
    view.release();
  });
});

describe('KvStateMachine: createIndex and modIndex', () => {
  it('a put creates at its index, an overwrite moves modIndex only, a delete and a re-create start again', () => {
    const sm = new KvStateMachine();
    const at = (n: number) => nextIndex + n;
    const first = at(1);
    expect(put(sm, 'k', 'v1')).toEqual({ existed: false, valid: true, conditionHeld: true, createIndex: first, modIndex: first });
    put(sm, 'other', 'x');
    const second = at(1);
    expect(put(sm, 'k', 'v2')).toMatchObject({ createIndex: first, modIndex: second });
    expect(sm.getRecord('k')).toEqual({ value: 'v2', createIndex: first, modIndex: second });
    expect(del(sm, 'k')).toEqual({ existed: true, valid: true, conditionHeld: true, createIndex: null, modIndex: null });
    expect(sm.getRecord('k')).toBeUndefined();
    const recreated = at(1);
    put(sm, 'k', 'v3');
    expect(sm.getRecord('k')).toEqual({ value: 'v3', createIndex: recreated, modIndex: recreated });
  });

  it('a no-op entry or a conf change takes an index but changes no key', () => {
    const sm = new KvStateMachine();
    put(sm, 'k', 'v');
    const before = sm.getRecord('k');
    sm.apply(entry(new Uint8Array(0)));
    sm.apply(entry(encodeCommand({ op: 'put', key: 'k', value: 'conf' }), EntryType.ConfChange));
    expect(sm.getRecord('k')).toEqual(before);
  });

  it('keeps indexes in views and through a snapshot round trip', () => {
    const sm = new KvStateMachine();
    put(sm, 'a', '1');
    put(sm, 'b', '2');
    put(sm, 'a', '3');
    const expected = new Map(sm.records());
    const view = sm.snapshot();
    put(sm, 'a', 'after the view');
    del(sm, 'b');
    expect(new Map(view.records())).toEqual(expected);
    const target = new KvStateMachine();
    expect(restoreSync(target, view.chunks()).error).toBeUndefined();
    view.release();
    expect(new Map(target.records())).toEqual(expected);
    expect(target.getRecord('a')!.createIndex).toBeLessThan(target.getRecord('a')!.modIndex);
  });
});

describe('KvStateMachine: conditions, evaluated on apply', () => {
  type Case = [string, (sm: KvStateMachine) => KvCondition, 'put' | 'delete', boolean];
  const modIndexOf = (sm: KvStateMachine) => sm.getRecord('k')!.modIndex;
  const cases: Case[] = [
    ['If-Match with the current modIndex, put', (sm) => ({ kind: 'modIndex', modIndex: modIndexOf(sm) }), 'put', true],
    ['If-Match with an older modIndex, put', (sm) => ({ kind: 'modIndex', modIndex: modIndexOf(sm) - 1 }), 'put', false],
    ['If-Match with the current modIndex, delete', (sm) => ({ kind: 'modIndex', modIndex: modIndexOf(sm) }), 'delete', true],
    ['If-Match with an older modIndex, delete', (sm) => ({ kind: 'modIndex', modIndex: modIndexOf(sm) - 1 }), 'delete', false],
    ['If-Match: * on an existing key', () => ({ kind: 'exists' }), 'put', true],
    ['If-None-Match: * on an existing key', () => ({ kind: 'absent' }), 'put', false],
  ];

  it.each(cases)('%s', (_name, condition, op, held) => {
    const sm = new KvStateMachine();
    put(sm, 'k', 'v1');
    put(sm, 'k', 'v2');
    const before = sm.getRecord('k')!;
    const result = op === 'put' ? put(sm, 'k', 'new', condition(sm)) : del(sm, 'k', condition(sm));
    expect(result).toMatchObject({ existed: true, valid: true, conditionHeld: held });
    if (held) {
      expect(sm.getRecord('k')).toEqual(op === 'put' ? { value: 'new', createIndex: before.createIndex, modIndex: nextIndex } : undefined);
    } else {
      // Nothing changed, and the answer carries the key's current indexes.
      expect(result).toMatchObject({ createIndex: before.createIndex, modIndex: before.modIndex });
      expect(sm.getRecord('k')).toEqual(before);
    }
  });

  it('on a missing key: If-None-Match creates once, If-Match and * fail with modIndex null', () => {
    const sm = new KvStateMachine();
    expect(put(sm, 'k', 'v', { kind: 'modIndex', modIndex: 1 })).toMatchObject({ existed: false, conditionHeld: false, modIndex: null });
    expect(put(sm, 'k', 'v', { kind: 'exists' })).toMatchObject({ conditionHeld: false, modIndex: null });
    expect(del(sm, 'k', { kind: 'exists' })).toMatchObject({ conditionHeld: false, modIndex: null });
    expect(sm.size).toBe(0);
    expect(put(sm, 'k', 'first', { kind: 'absent' })).toMatchObject({ conditionHeld: true, createIndex: nextIndex, modIndex: nextIndex });
    expect(put(sm, 'k', 'second', { kind: 'absent' })).toMatchObject({ conditionHeld: false, modIndex: nextIndex - 1 });
    expect(sm.get('k')).toBe('first');
  });

  it('two writes that both read the same modIndex: the first applied wins, the second fails (compare-and-set)', () => {
    const sm = new KvStateMachine();
    put(sm, 'counter', '0');
    const seen = sm.getRecord('counter')!.modIndex;
    expect(put(sm, 'counter', '1', { kind: 'modIndex', modIndex: seen })).toMatchObject({ conditionHeld: true });
    expect(put(sm, 'counter', '1', { kind: 'modIndex', modIndex: seen })).toMatchObject({ conditionHeld: false, modIndex: seen + 1 });
    expect(sm.get('counter')).toBe('1');
  });

  it('while a view is alive (writes go to the delta), a failed condition leaves the view and the live map alone', () => {
    const sm = new KvStateMachine();
    put(sm, 'k', 'v');
    const view = sm.snapshot();
    expect(put(sm, 'k', 'x', { kind: 'absent' })).toMatchObject({ conditionHeld: false });
    expect(del(sm, 'k', { kind: 'modIndex', modIndex: 0 })).toMatchObject({ conditionHeld: false });
    expect(sm.get('k')).toBe('v');
    expect(view.get('k')).toBe('v');
    view.release();
  });
});

describe('KvStateMachine: restoring a snapshot of format 1 (keys without indexes)', () => {
  const FORMAT_1 = readFileSync(join(__dirname, 'testdata', 'snapshot-format-1.bin'));

  it("gives every key the snapshot's index, from useSnapshotIndex; the next writes carry on from there", () => {
    const sm = machineWith([['stale', 'gone']]);
    sm.useSnapshotIndex(() => 500);
    expect(restoreSync(sm, [FORMAT_1]).error).toBeUndefined();
    expect(sm.getRecord('lock')).toEqual({ value: 'owner-1', createIndex: 500, modIndex: 500 });
    expect(sm.get('stale')).toBeUndefined();
    // Format 1 has no index bytes to leave out; the count is the keys' and values' bytes all the same.
    expect(sm.dataBytes).toBe(bytesOf(sm.entries()));
    expect(sm.apply({ term: 2, index: 501, type: EntryType.Normal, data: encodeCommand({ op: 'put', key: 'lock', value: 'owner-2', condition: { kind: 'modIndex', modIndex: 500 } }) }))
      .toMatchObject({ conditionHeld: true, createIndex: 500, modIndex: 501 });
    // A new snapshot is written in format 2, with the indexes.
    const view = sm.snapshot();
    expect(decodeKvSnapshotRecords(view.chunks()).get('lock')).toEqual({ value: 'owner-2', createIndex: 500, modIndex: 501 });
    view.release();
  });

  it('without a source of the index, refuses it and keeps the map', () => {
    const sm = machineWith([['kept', 'yes']]);
    expect(restoreSync(sm, [FORMAT_1]).error?.message).toMatch(/the snapshot's index is not known here/);
    expect(live(sm)).toEqual(new Map([['kept', 'yes']]));
  });
});

describe('KvStateMachine snapshots: round trip', () => {
  const unicode: Array<[string, string]> = [
    ['日本語', 'значение'],
    ['emoji 🎉', '𝄞 clef'],
    ['combining é', 'e\u0301'],
  ];
  const cases: Array<[string, Array<[string, string]>]> = [
    ['an empty map', []],
    ['empty values and a one-character key', [['k', ''], ['x', '']]],
    ['unicode keys and values', unicode],
    ['a value larger than a chunk', [['small', 's'], ['big', 'b'.repeat(KV_SNAPSHOT_CHUNK_BYTES * 2 + 3)], ['after', 'a']]],
  ];

  it.each(cases)('%s', (_name, pairs) => {
    const source = machineWith(pairs);
    const view = source.snapshot();
    const target = machineWith([['stale', 'gone']]);
    expect(restoreSync(target, view.chunks())).toEqual({ calls: 1, error: undefined });
    view.release();
    expect(live(target)).toEqual(new Map(pairs));
    expect(target.size).toBe(pairs.length);
  });

  it('the empty key round-trips too (the API refuses it, the map does not care)', () => {
    const target = new KvStateMachine();
    expect(restoreSync(target, encodeKvSnapshot([['', 'empty key']])).error).toBeUndefined();
    expect(target.get('')).toBe('empty key');
  });

  it('100k keys, across many chunks', () => {
    const pairs: Array<[string, string]> = Array.from({ length: 100_000 }, (_, i) => [`key-${i}`, `value-${i * 7}`]);
    const source = machineWith(pairs);
    const view = source.snapshot();
    const chunks = [...view.chunks()];
    view.release();
    expect(chunks.length).toBeGreaterThan(5);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(KV_SNAPSHOT_CHUNK_BYTES);
    const target = new KvStateMachine();
    expect(restoreSync(target, chunks).error).toBeUndefined();
    expect(target.size).toBe(100_000);
    expect(live(target)).toEqual(new Map(pairs));
  });

  it('a view is read a chunk at a time while writes go on, and still shows the state when it was taken', () => {
    const pairs = Array.from({ length: 5000 }, (_, i): [string, string] => [`k${i}`, 'v'.repeat(200)]);
    const sm = machineWith(pairs);
    const view = sm.snapshot();
    const chunks = view.chunks()[Symbol.iterator]();
    const model = new Map(pairs);
    const pulled: Uint8Array[] = [];
    for (let next = chunks.next(); !next.done; next = chunks.next()) {
      pulled.push(next.value);
      const n = pulled.length;
      put(sm, `k${n * 1000}`, 'overwritten');
      model.set(`k${n * 1000}`, 'overwritten');
      del(sm, `k${n * 1000 + 1}`);
      model.delete(`k${n * 1000 + 1}`);
      put(sm, `new${n}`, 'added');
      model.set(`new${n}`, 'added');
    }
    view.release();
    // The ~1 MB map came out as several ~256 KiB chunks, with writes between them that none of them shows.
    expect(pulled.length).toBeGreaterThan(3);
    expect(decodeKvSnapshot(pulled)).toEqual(new Map(pairs));
    expect(live(sm)).toEqual(model);
    expect(sm.size).toBe(model.size);
  });
});

describe('KvStateMachine snapshots: a view is the state when it was taken', () => {
  const initial: Array<[string, string]> = [
    ['keep', 'k'],
    ['overwrite', 'old'],
    ['delete', 'd'],
    ['readd', 'r1'],
  ];
  const writes = (sm: KvStateMachine) => {
    put(sm, 'overwrite', 'new');
    del(sm, 'delete');
    del(sm, 'readd');
    put(sm, 'readd', 'r2');
    put(sm, 'added', 'a');
    put(sm, 'added-then-deleted', 'x');
    del(sm, 'added-then-deleted');
  };
  const after = new Map([
    ['keep', 'k'],
    ['overwrite', 'new'],
    ['readd', 'r2'],
    ['added', 'a'],
  ]);

  it('while the live map moves on; after release the live map is intact and writes go straight to it', () => {
    const sm = machineWith(initial);
    const view = sm.snapshot();
    writes(sm);

    expect(content(view)).toEqual(new Map(initial));
    expect(view.size).toBe(4);
    expect(view.get('delete')).toBe('d');
    expect(view.get('readd')).toBe('r1');
    expect(view.get('added')).toBeUndefined();

    expect(live(sm)).toEqual(after);
    expect(sm.size).toBe(4);
    expect(sm.get('delete')).toBeUndefined();
    expect(sm.has('delete')).toBe(false);
    expect(sm.get('readd')).toBe('r2');
    expect(sm.get('added-then-deleted')).toBeUndefined();
    // Keys written meanwhile, not the map: the fold on release costs what the writes cost.
    expect([...delta(sm)!.keys()].sort()).toEqual(['added', 'delete', 'overwrite', 'readd']);

    view.release();
    expect(delta(sm)).toBeUndefined();
    expect(live(sm)).toEqual(after);
    expect(sm.size).toBe(4);
    expect(put(sm, 'later', 'l')).toMatchObject({ existed: false, valid: true });
    expect(delta(sm)).toBeUndefined();
    expect(sm.get('later')).toBe('l');
  });

  it('reports existed from the live state while a view is alive', () => {
    const sm = machineWith([['a', '1']]);
    const view = sm.snapshot();
    expect(del(sm, 'a')).toMatchObject({ existed: true, valid: true });
    expect(del(sm, 'a')).toMatchObject({ existed: false, valid: true });
    expect(put(sm, 'a', '2')).toMatchObject({ existed: false, valid: true });
    expect(put(sm, 'a', '3')).toMatchObject({ existed: true, valid: true });
    expect(del(sm, 'never')).toMatchObject({ existed: false, valid: true });
    expect(sm.size).toBe(1);
    view.release();
    expect(live(sm)).toEqual(new Map([['a', '3']]));
  });

  it.each([
    ['first taken, first released', [0, 1]],
    ['last taken, first released', [1, 0]],
  ])('two overlapping views with writes between and after them, %s', (_name, order) => {
    const sm = machineWith([
      ['a', '1'],
      ['b', '1'],
      ['c', '1'],
    ]);
    const first = sm.snapshot();
    put(sm, 'a', '2');
    del(sm, 'b');
    put(sm, 'd', '2');
    const second = sm.snapshot();
    put(sm, 'a', '3');
    put(sm, 'b', '3');
    del(sm, 'c');
    del(sm, 'd');
    const expected = [
      new Map([
        ['a', '1'],
        ['b', '1'],
        ['c', '1'],
      ]),
      new Map([
        ['a', '2'],
        ['c', '1'],
        ['d', '2'],
      ]),
    ];
    const final = new Map([
      ['a', '3'],
      ['b', '3'],
    ]);
    const views = [first, second];
    expect(content(first)).toEqual(expected[0]);
    expect(content(second)).toEqual(expected[1]);
    expect([first.size, second.size]).toEqual([3, 3]);

    views[order[0]].release();
    put(sm, 'e', '4');
    expect(content(views[order[1]])).toEqual(expected[order[1]]);
    expect(delta(sm)).toBeDefined();
    views[order[1]].release();

    expect(delta(sm)).toBeUndefined();
    expect(live(sm)).toEqual(new Map([...final, ['e', '4']]));
    expect(sm.size).toBe(3);
  });

  it('views taken with no write between them show the same state, and a third view after more writes its own', () => {
    const sm = machineWith([['a', '1']]);
    const v1 = sm.snapshot();
    put(sm, 'a', '2');
    const v2 = sm.snapshot();
    const v3 = sm.snapshot();
    put(sm, 'a', '3');
    const v4 = sm.snapshot();
    put(sm, 'a', '4');
    expect([v1, v2, v3, v4].map((v) => v.get('a'))).toEqual(['1', '2', '2', '3']);
    expect([v1, v2, v3, v4].map((v) => content(v).get('a'))).toEqual(['1', '2', '2', '3']);
    for (const v of [v3, v1, v4, v2]) v.release();
    expect(sm.get('a')).toBe('4');
    expect(delta(sm)).toBeUndefined();
  });

  it('a released view refuses to be read, even halfway through its chunks; a second release does nothing', () => {
    const sm = machineWith(Array.from({ length: 3000 }, (_, i): [string, string] => [`k${i}`, 'v'.repeat(200)]));
    const view = sm.snapshot();
    const chunks = view.chunks()[Symbol.iterator]();
    chunks.next();
    view.release();
    view.release();
    expect(() => chunks.next()).toThrow('KV snapshot view read after release()');
    expect(() => view.chunks()).toThrow('KV snapshot view read after release()');
    expect(() => view.get('k1')).toThrow('KV snapshot view read after release()');
    // The double release did not end a second, still alive view.
    const other = sm.snapshot();
    const third = sm.snapshot();
    third.release();
    third.release();
    put(sm, 'k1', 'changed');
    expect(other.get('k1')).toBe('v'.repeat(200));
    other.release();
  });
});

describe('KvStateMachine.restore', () => {
  const old: Array<[string, string]> = [
    ['old', 'state'],
    ['kept', 'yes'],
  ];
  const snapshot = [...encodeKvSnapshot(Array.from({ length: 30 }, (_, i): [string, string] => [`n${i}`, `${i}`]), 64)];

  it('with a synchronous iterable, calls done before returning', () => {
    const sm = machineWith(old);
    const outcome = restoreSync(sm, snapshot);
    expect(outcome).toEqual({ calls: 1, error: undefined });
    expect(sm.size).toBe(30);
    expect(sm.get('old')).toBeUndefined();
  });

  it.each<[string, () => Uint8Array[], RegExp]>([
    ['a truncated chunk', () => [...snapshot.slice(0, 3), snapshot[3].subarray(0, snapshot[3].length - 25)], /the value runs past the end/],
    ['a bad version', () => snapshot.map((c, i) => (i === 2 ? Buffer.concat([Buffer.from([7]), c.subarray(1)]) : c)), /version 7, expected 3/],
    ['a missing last chunk', () => snapshot.slice(0, -1), /which is not the last/],
  ])('%s keeps the old state and reports the error (sync and async)', async (_name, chunks, message) => {
    const sm = machineWith(old);
    const outcome = restoreSync(sm, chunks());
    expect(outcome.calls).toBe(1);
    expect(outcome.error).toBeInstanceOf(MalformedKvSnapshotError);
    expect(outcome.error!.message).toMatch(message);
    expect(live(sm)).toEqual(new Map(old));

    const error = await restoreAsync(sm, asAsync(chunks()));
    expect(error).toBeInstanceOf(MalformedKvSnapshotError);
    expect(error!.message).toMatch(message);
    expect(live(sm)).toEqual(new Map(old));
    put(sm, 'still', 'works');
    expect(sm.size).toBe(3);
  });

  it('an iterable that fails keeps the old state and reports its error', async () => {
    const sm = machineWith(old);
    function* failing(): Generator<Uint8Array> {
      yield snapshot[0];
      throw new Error('disk read failed');
    }
    expect(restoreSync(sm, failing()).error?.message).toBe('disk read failed');
    async function* failingAsync(): AsyncGenerator<Uint8Array> {
      yield snapshot[0];
      throw new Error('stream reset');
    }
    expect((await restoreAsync(sm, failingAsync()))?.message).toBe('stream reset');
    expect(live(sm)).toEqual(new Map(old));
  });

  it('with an async iterable, swaps the map in only when complete, yielding to the event loop between chunks', async () => {
    const sm = machineWith(old);
    const log: string[] = [];
    let finished = false;
    const ticks = () => {
      if (finished) return;
      log.push('tick');
      setImmediate(ticks);
    };
    setImmediate(ticks);
    const restored = restoreAsync(sm, asAsync(snapshot, log));
    expect(log).toEqual(['chunk 0']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(live(sm)).toEqual(new Map(old));
    expect(await restored).toBeUndefined();
    finished = true;
    expect(sm.size).toBe(30);
    const chunkLines = log.map((line, i) => [line, i] as const).filter(([line]) => line !== 'tick');
    expect(chunkLines.length).toBe(snapshot.length);
    for (let c = 1; c < chunkLines.length; c++) {
      expect(log.slice(chunkLines[c - 1][1], chunkLines[c][1])).toContain('tick');
    }
  });

  it('a restore started later wins over one still running', async () => {
    const sm = machineWith(old);
    const log: string[] = [];
    const first = restoreAsync(sm, asAsync(snapshot, log));
    expect(restoreSync(sm, encodeKvSnapshot([['second', 'wins']])).error).toBeUndefined();
    expect((await first)?.message).toMatch(/superseded by a newer restore/);
    // It stopped at once rather than reading the rest of a content it would throw away.
    expect(log).toEqual(['chunk 0']);
    expect(live(sm)).toEqual(new Map([['second', 'wins']]));
  });

  it('views alive during a restore keep their state, and releasing them leaves the restored map alone', () => {
    const sm = machineWith(old);
    const before = sm.snapshot();
    put(sm, 'old', 'changed');
    const between = sm.snapshot();
    put(sm, 'written', 'before the restore');
    expect(restoreSync(sm, snapshot).error).toBeUndefined();
    expect(delta(sm)).toBeUndefined();
    put(sm, 'n0', 'after the restore');

    expect(content(before)).toEqual(new Map(old));
    expect(content(between)).toEqual(new Map([['old', 'changed'], ['kept', 'yes']]));
    before.release();
    const during = sm.snapshot();
    put(sm, 'n1', 'while a new view is alive');
    expect(during.get('n1')).toBe('1');
    // The views of the old map do not hold back the fold of the new one's writes.
    during.release();
    expect(delta(sm)).toBeUndefined();
    between.release();
    expect(delta(sm)).toBeUndefined();

    const expected = decodeKvSnapshot(snapshot);
    expected.set('n0', 'after the restore');
    expected.set('n1', 'while a new view is alive');
    expect(live(sm)).toEqual(expected);
    expect(sm.size).toBe(30);
  });
});

/** mulberry32: a tiny seeded PRNG, so that a failing run replays exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('KvStateMachine snapshots: randomized model test against a plain Map', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('seed %i', (seed) => {
    const random = prng(seed);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    const keys = Array.from({ length: 24 }, (_, i) => `key-${i}`);
    const sm = new KvStateMachine();
    let model = new Map<string, KvRecord>();
    const views: Array<{ view: KvSnapshotView; expected: Map<string, KvRecord> }> = [];
    let step = 0;
    // Plain comparisons rather than expect() in the loop: thousands of expect() calls make the test slow,
    // and a failure names the seed and step to replay.
    const text = (x: unknown) => (x instanceof Map ? JSON.stringify([...x].sort()) : typeof x === 'object' ? JSON.stringify(x) : x);
    const same = (what: string, actual: unknown, expected: unknown) => {
      const a = text(actual);
      const e = text(expected);
      if (a !== e) throw new Error(`seed ${seed}, step ${step}: ${what} is ${String(a)}, expected ${String(e)}`);
    };
    const checkView = ({ view, expected }: { view: KvSnapshotView; expected: Map<string, KvRecord> }) => {
      same('view size', view.size, expected.size);
      const key = pick(keys);
      same(`view get ${key}`, view.get(key), expected.get(key)?.value);
      if (random() < 0.2) same('view content', decodeKvSnapshotRecords(view.chunks()), expected);
    };
    // A third of the writes carry a condition, half of them one that holds.
    const someCondition = (key: string): KvCondition | undefined => {
      const r = random();
      const current = model.get(key);
      if (r < 0.67) return undefined;
      if (r < 0.8) return { kind: 'modIndex', modIndex: current && random() < 0.7 ? current.modIndex : Math.floor(random() * (nextIndex + 1)) };
      return r < 0.9 ? { kind: 'absent' } : { kind: 'exists' };
    };

    for (; step < 3000; step++) {
      const r = random();
      if (r < 0.45) {
        const key = pick(keys);
        // Some values with multi-byte characters, so that dataBytes is checked in bytes, not characters.
        const value = step % 3 === 0 ? `v${step}-é€` : `v${step}`;
        const condition = someCondition(key);
        const previous = model.get(key);
        const result = put(sm, key, value, condition);
        const held = condition === undefined || holds(condition, previous);
        same(`put ${key} existed`, result?.existed, previous !== undefined);
        same(`put ${key} condition held`, result?.conditionHeld, held);
        if (held) model.set(key, { value, createIndex: previous?.createIndex ?? nextIndex, modIndex: nextIndex });
      } else if (r < 0.75) {
        const key = pick(keys);
        const condition = someCondition(key);
        const previous = model.get(key);
        const result = del(sm, key, condition);
        const held = condition === undefined || holds(condition, previous);
        same(`delete ${key} existed`, result?.existed, previous !== undefined);
        same(`delete ${key} condition held`, result?.conditionHeld, held);
        same(`delete ${key} modIndex`, result?.modIndex, held ? null : (previous?.modIndex ?? null));
        if (held) model.delete(key);
      } else if (r < 0.85) {
        if (views.length < 5) views.push({ view: sm.snapshot(), expected: new Map(model) });
      } else if (r < 0.97) {
        if (views.length > 0) {
          const [released] = views.splice(Math.floor(random() * views.length), 1);
          checkView(released);
          released.view.release();
        }
      } else {
        // Restore from a live view (the state it had), or from a fresh encoding of a random map.
        const source = views.length > 0 && random() < 0.5 ? pick(views) : undefined;
        const next = source
          ? new Map(source.expected)
          : new Map(keys.filter(() => random() < 0.3).map((k): [string, KvRecord] => [k, { value: `r${step}`, createIndex: step, modIndex: nextIndex }]));
        const chunks = source ? [...source.view.chunks()] : [...encodeRecords(next, 60)];
        same('restore error', restoreSync(sm, chunks).error, undefined);
        model = next;
      }
      same('size', sm.size, model.size);
      same('dataBytes', sm.dataBytes, bytesOf(valuesOf(model)));
      const key = pick(keys);
      same(`get ${key}`, sm.getRecord(key), model.get(key));
      same(`has ${key}`, sm.has(key), model.has(key));
      if (views.length > 0) checkView(pick(views));
      if (step % 100 === 0) same('live content', new Map(sm.records()), model);
    }
    for (const v of views) {
      expect(decodeKvSnapshotRecords(v.view.chunks())).toEqual(v.expected);
      v.view.release();
    }
    expect(delta(sm)).toBeUndefined();
    expect(new Map(sm.records())).toEqual(model);
  });
});

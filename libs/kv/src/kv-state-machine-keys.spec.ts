/** KvStateMachine.keys(): the ordered key index kept in step with apply() and restore(). */
import { Entry, EntryType } from '@app/consensus';
import { encodeCommand } from './kv-command';
import { encodeKvSnapshot } from './kv-snapshot-format';
import { KvSnapshotView, KvStateMachine } from './kv-state-machine';

let nextIndex = 0;
const entry = (data: Uint8Array): Entry => ({ term: 1, index: ++nextIndex, type: EntryType.Normal, data });
const put = (sm: KvStateMachine, key: string, value = 'v') => sm.apply(entry(encodeCommand({ op: 'put', key, value })));
const del = (sm: KvStateMachine, key: string) => sm.apply(entry(encodeCommand({ op: 'delete', key })));
const all = (sm: KvStateMachine) => sm.keys({ prefix: '', limit: 1_000_000 }).keys;
const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function restore(sm: KvStateMachine, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Error | undefined> {
  return new Promise((resolve) => sm.restore(chunks, resolve));
}

async function* asAsync(chunks: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

/** Pairs as the snapshot format's records (createIndex = modIndex = 1). */
const records = (pairs: Array<[string, string]>) => new Map(pairs.map(([k, value]) => [k, { value, createIndex: 1, modIndex: 1 }]));

describe('KvStateMachine.keys', () => {
  it('lists created keys in byte order; overwrites do not repeat a key, deletes remove it, no-ops change nothing', () => {
    const sm = new KvStateMachine();
    for (const key of ['user/2', 'user/1', 'app', 'user/🔑', 'user/\uFFFD']) put(sm, key);
    put(sm, 'user/1', 'again');
    del(sm, 'app');
    del(sm, 'never');
    sm.apply({ term: 1, index: ++nextIndex, type: EntryType.Normal, data: new Uint8Array([0xff, 0]) });
    expect(sm.keys({ prefix: 'user/', limit: 10 })).toEqual({ keys: ['user/1', 'user/2', 'user/\uFFFD', 'user/🔑'], more: false });
    expect(sm.keys({ prefix: 'user/', after: 'user/1', limit: 1 })).toEqual({ keys: ['user/2'], more: true });
  });

  it('follows writes made while snapshot views are alive, and after they are released; views are unchanged', () => {
    const sm = new KvStateMachine();
    put(sm, 'a');
    put(sm, 'b');
    const first = sm.snapshot();
    put(sm, 'c');
    del(sm, 'a');
    const second: KvSnapshotView = sm.snapshot();
    put(sm, 'a');
    del(sm, 'c');
    del(sm, 'b');
    put(sm, 'd');
    expect(all(sm)).toEqual(['a', 'd']);
    expect([...first.entries()].map(([k]) => k).sort()).toEqual(['a', 'b']);
    expect([...second.entries()].map(([k]) => k).sort()).toEqual(['b', 'c']);
    first.release();
    second.release();
    put(sm, 'e');
    del(sm, 'd');
    expect(all(sm)).toEqual(['a', 'e']);
    expect(all(sm)).toEqual([...sm.entries()].map(([k]) => k).sort(utf8Order));
  });

  it('is rebuilt by a restore (sync and async); a failed restore leaves it as it was', async () => {
    const sm = new KvStateMachine();
    put(sm, 'old');
    expect(await restore(sm, encodeKvSnapshot(records([['z', '1'], ['\u{1F511}', '2'], ['m', '3']]), 40))).toBeUndefined();
    expect(all(sm)).toEqual(['m', 'z', '\u{1F511}']);
    put(sm, 'n');
    expect(await restore(sm, asAsync(encodeKvSnapshot(records([['q', '1'], ['p', '2']]))))).toBeUndefined();
    expect(all(sm)).toEqual(['p', 'q']);
    expect(await restore(sm, [new Uint8Array([9, 9, 9])])).toBeInstanceOf(Error);
    expect(all(sm)).toEqual(['p', 'q']);
    del(sm, 'p');
    expect(all(sm)).toEqual(['q']);
  });

  it('matches the map through random puts, deletes, views and restores', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pool = Array.from({ length: 30 }, (_, i) => (i % 5 === 0 ? `k/é${i}` : i % 7 === 0 ? `k/🔑${i}` : `k/${i}`));
    const pick = () => pool[Math.floor(random() * pool.length)];
    const sm = new KvStateMachine();
    const views: KvSnapshotView[] = [];
    for (let step = 0; step < 4000; step++) {
      const r = random();
      if (r < 0.5) put(sm, pick());
      else if (r < 0.85) del(sm, pick());
      else if (r < 0.92) views.push(sm.snapshot());
      else if (r < 0.99) views.shift()?.release();
      else {
        const next = records(pool.filter(() => random() < 0.4).map((k): [string, string] => [k, 'r']));
        sm.restore(encodeKvSnapshot(next), (error) => {
          if (error) throw error;
        });
      }
      const expected = [...sm.entries()].map(([k]) => k).sort(utf8Order);
      const actual = all(sm);
      if (actual.join('\n') !== expected.join('\n')) throw new Error(`step ${step}: keys ${actual.join(',')}, map ${expected.join(',')}`);
    }
    views.forEach((v) => v.release());
  });
});

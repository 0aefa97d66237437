import { CompactedError, UnavailableError } from '@app/consensus/core';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { entries, entry, MemoryLogger, plain, TempDirs } from '../../../test/support/wal-test-helpers';
import { WalClosedError, WalCorruptionError } from './errors';
import { Wal, WalOptions } from './wal';

const dirs = new TempDirs();
const opened: Wal[] = [];
afterEach(async () => {
  for (const wal of opened.splice(0)) await wal.close().catch(() => undefined);
  dirs.cleanup();
});

async function walWith(count: number, options: WalOptions = {}): Promise<Wal> {
  const wal = await Wal.open(dirs.make(), { logger: new MemoryLogger(), ...options });
  opened.push(wal);
  // Entry i has i bytes of data, terms 1, 1, 2, 2, 3, 3, ...
  for (let i = 1; i <= count; i++) await wal.save({ term: Math.ceil(i / 2), vote: '', commit: 0 }, [entry(i, Math.ceil(i / 2), i)]);
  return wal;
}

describe('WalStorage (the Storage contract of @app/consensus)', () => {
  it('reports first and last index, and terms in [first - 1, last]', async () => {
    const { storage } = await walWith(6);
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([1, 6]);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => storage.term(i))).toEqual([0, 1, 1, 2, 2, 3, 3]);
    expect(() => storage.term(7)).toThrow(UnavailableError);
    expect(() => storage.term(-1)).toThrow(CompactedError);
  });

  it('returns entries in [lo, hi), and throws outside the log', async () => {
    const { storage } = await walWith(6);
    expect(plain(storage.entries(2, 5))).toEqual(plain([entry(2, 1, 2), entry(3, 2, 3), entry(4, 2, 4)]));
    expect(storage.entries(3, 3)).toEqual([]);
    expect(() => storage.entries(0, 2)).toThrow(CompactedError);
    expect(() => storage.entries(5, 8)).toThrow(UnavailableError);
  });

  it.each([
    [0, [2]], // at least one entry, whatever its size
    [2, [2]],
    [4, [2]],
    [5, [2, 3]],
    [9, [2, 3, 4]],
    [Infinity, [2, 3, 4, 5]],
  ])('limits entries to maxBytes of data (%s bytes)', async (maxBytes, indexes) => {
    const { storage } = await walWith(6);
    expect(storage.entries(2, 6, maxBytes).map((e) => e.index)).toEqual(indexes);
  });

  it('re-reads evicted entries from disk, identical to what was saved', async () => {
    const wal = await walWith(300, { payloadCacheBytes: 4096, segmentSize: 8192 });
    const all = wal.storage.entries(1, 301);
    expect(plain(all)).toEqual(plain(Array.from({ length: 300 }, (_, k) => entry(k + 1, Math.ceil((k + 1) / 2), k + 1))));
    expect(plain(wal.storage.entries(120, 122))).toEqual(plain([entry(120, 60, 120), entry(121, 61, 121)]));
  });

  it('serves a mix of evicted and cached entries after a truncation', async () => {
    const wal = await walWith(50, { payloadCacheBytes: 2000 });
    await wal.save({ term: 30, vote: '', commit: 0 }, entries(40, 45, 30, 10));
    const expected = [
      ...Array.from({ length: 39 }, (_, k) => entry(k + 1, Math.ceil((k + 1) / 2), k + 1)),
      ...entries(40, 45, 30, 10),
    ];
    expect(plain(wal.storage.entries(1, 46))).toEqual(plain(expected));
  });

  it('detects damage when re-reading an evicted entry', async () => {
    const wal = await walWith(20, { payloadCacheBytes: 0 });
    const file = join(wal.dir, readdirSync(wal.dir).find((n) => n.endsWith('.wal'))!);
    const buf = readFileSync(file);
    const at = buf.indexOf(entry(10, 5, 10).data);
    buf[at] ^= 0x10;
    writeFileSync(file, buf);
    expect(() => wal.storage.entries(9, 12)).toThrow(WalCorruptionError);
    expect(() => wal.storage.entries(9, 12)).toThrow(`${file} at byte offset`);
    expect(wal.storage.entries(11, 13).map((e) => e.index)).toEqual([11, 12]);
  });

  it('reads from disk fail once the Wal is closed; the initial state is a copy', async () => {
    const wal = await walWith(5, { payloadCacheBytes: 0 });
    const state = wal.storage.initialState();
    state.hardState.term = 99;
    expect(wal.storage.initialState().hardState.term).toBe(3);
    await wal.close();
    expect(() => wal.storage.entries(1, 2)).toThrow(WalClosedError);
  });
});

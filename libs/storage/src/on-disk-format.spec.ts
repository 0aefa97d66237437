import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { entries, MemoryLogger, plain, TempDirs } from '../../../test/support/wal-test-helpers';
import { Wal } from './wal';

/**
 * docs/storage.md claims to be precise enough to write a reader. This is such a reader, written from the
 * page alone (it imports nothing from the library but Wal, to produce files): if the code and the page
 * drift apart, this test fails.
 */
function readWalFromTheDocs(dir: string) {
  const u64 = (b: Buffer, o: number): number => b.readUInt32LE(o + 4) * 2 ** 32 + b.readUInt32LE(o);
  const str = (b: Buffer, o: number): [string, number] => {
    const n = b.readUInt16LE(o);
    return [b.toString('utf8', o + 2, o + 2 + n), o + 2 + n];
  };
  const confStateAt = (p: Buffer): { voters: string[]; learners?: string[] } => {
    const lists: string[][] = [];
    let o2 = 0;
    for (let l = 0; l < 2; l++) {
      const list: string[] = [];
      const count = p.readUInt32LE(o2);
      o2 += 4;
      for (let k = 0; k < count; k++) {
        const [s, next] = str(p, o2);
        list.push(s);
        o2 = next;
      }
      lists.push(list);
    }
    return lists[1].length > 0 ? { voters: lists[0], learners: lists[1] } : { voters: lists[0] };
  };
  const names = readdirSync(dir)
    .filter((n) => /^[0-9a-f]{16}-[0-9a-f]{16}\.wal$/.test(n))
    .sort();
  const log = new Map<number, { term: number; type: number; data: string }>();
  let first = 0;
  let last = 0;
  let hardState = { term: 0, vote: '', commit: 0 };
  let confState: { voters: string[]; learners?: string[] } = { voters: [] };
  let snapshot: { index: number; term: number; confState: { voters: string[]; learners?: string[] } } | undefined;
  let prevTerm = 0;
  for (const name of names) {
    const buf = readFileSync(join(dir, name));
    let batch: Array<{ type: number; p: Buffer }> = [];
    for (let o = 0; o < buf.length; ) {
      const n = buf.readUInt32LE(o + 4);
      const type = buf[o + 8];
      const payload = buf.subarray(o + 12, o + 12 + n);
      if (buf.readUInt32LE(o) !== crc32(buf.subarray(o + 4, o + 12 + n))) throw new Error('crc');
      o += 12 + n;
      if (type !== 6) {
        batch.push({ type, p: payload });
        continue;
      }
      if (payload.readUInt32LE(0) !== batch.length) throw new Error('count');
      for (const { type: t, p } of batch) {
        if (t === 1) {
          expect(p.toString('latin1', 0, 4)).toBe('RWAL');
          const [from, before] = [u64(p, 16), u64(p, 24)];
          if (first === 0 || from < first) {
            [first, last, prevTerm] = [from, from - 1, before];
            log.clear();
          } else {
            expect(from).toBeLessThanOrEqual(last + 1);
            expect(log.get(from - 1)?.term ?? prevTerm).toBe(before);
            last = from - 1;
          }
        } else if (t === 2) {
          expect(u64(p, 0)).toBe(last + 1);
          last = u64(p, 0);
          log.set(last, { term: u64(p, 8), type: p[16], data: p.subarray(17).toString('hex') });
        } else if (t === 3) {
          hardState = { term: u64(p, 0), commit: u64(p, 8), vote: str(p, 16)[0] };
        } else if (t === 4) {
          confState = confStateAt(p);
        } else if (t === 5) {
          last = u64(p, 0) - 1;
        } else if (t === 7) {
          snapshot = { index: u64(p, 0), term: u64(p, 8), confState: confStateAt(p.subarray(17)) };
          if (p[16] === 1) {
            [first, last, prevTerm] = [snapshot.index + 1, snapshot.index, snapshot.term];
            log.clear();
            hardState = { ...hardState, commit: snapshot.index };
            confState = snapshot.confState;
          }
        }
      }
      batch = [];
    }
  }
  const ents = [];
  for (let i = first; i <= last; i++) ents.push({ index: i, ...log.get(i)! });
  const prev = log.get(first - 1)?.term ?? prevTerm;
  return { first, last, entries: ents, hardState, confState, snapshot, prevTerm: prev };
}

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe('the on-disk format, as docs/storage.md describes it', () => {
  it('is read identically by a reader written from the page', async () => {
    const dir = dirs.make();
    const wal = await Wal.open(dir, { segmentSize: 2048, logger: new MemoryLogger() });
    await wal.setConfState({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
    await wal.save({ term: 1, vote: 'n1', commit: 0 }, entries(1, 30, 1, 50));
    await wal.save({ term: 2, vote: 'nœud', commit: 10 }, entries(12, 40, 2, 7));
    await Promise.all([
      wal.save(undefined, entries(41, 45, 2, 0)),
      wal.save({ term: 3, vote: '', commit: 20 }, entries(44, 50, 3, 300)),
    ]);
    const s = wal.storage;
    const read = () => ({
      first: s.firstIndex(),
      last: s.lastIndex(),
      entries: plain(s.entries(s.firstIndex(), s.lastIndex() + 1)),
      ...s.initialState(),
      snapshot: wal.snapshotMetadata,
      prevTerm: s.term(s.firstIndex() - 1),
    });
    const expected = read();
    expect(readdirSync(dir).filter((n) => n.endsWith('.wal')).length).toBeGreaterThan(3);
    expect(readWalFromTheDocs(dir)).toEqual(expected);

    // A snapshot this node took, then compaction: the log now starts in a later segment.
    await wal.save({ term: 3, vote: '', commit: 48 }, []);
    await wal.saveSnapshot({ index: 45, term: 3, confState: { voters: ['n1', 'n2', 'n3'] } });
    await wal.save({ term: 3, vote: '', commit: 50 }, entries(51, 60, 3, 100));
    expect(await wal.compact(45)).toBeGreaterThan(0);
    expect(readdirSync(dir).sort()[0]).not.toMatch(/^0000000000000001-/);
    expect(readWalFromTheDocs(dir)).toEqual(read());

    // A snapshot installed from a leader: the log restarts after it.
    await wal.saveSnapshot({ index: 90, term: 5, confState: { voters: ['a', 'b'] } }, { installed: true });
    await wal.save({ term: 5, vote: 'a', commit: 92 }, entries(91, 95, 5, 40));
    expect(readWalFromTheDocs(dir)).toEqual(read());

    // A new leader overwrites from 93 entries that had rolled into a segment starting at 96: a segment rebased
    // at 93. Then compaction, and the states a crash halfway through it leaves: when the segment starting at
    // 96 is the first one left, the rebased segment restarts the log at 93.
    await wal.save({ term: 5, vote: 'a', commit: 92 }, entries(96, 120, 5, 60));
    await wal.save({ term: 6, vote: 'b', commit: 92 }, entries(93, 100, 6, 60));
    await wal.saveSnapshot({ index: 92, term: 5, confState: { voters: ['a', 'b'] } });
    const names = readdirSync(dir)
      .filter((n) => n.endsWith('.wal'))
      .sort();
    expect(names.slice(-2).map((n) => parseInt(n.slice(17, 33), 16))).toEqual([96, 93]);
    expect(readWalFromTheDocs(dir)).toEqual(read());
    const before = dirs.snapshot(dir);
    const deleted = await wal.compact(92);
    expect(deleted).toBe(names.length - 1);
    expect(readWalFromTheDocs(dir)).toEqual(read());
    await wal.close();
    for (let k = 1; k <= deleted; k++) {
      const copy = dirs.snapshot(before);
      for (const name of [...names.slice(0, k), 'LOCK']) unlinkSync(join(copy, name));
      const crashed = await Wal.open(copy, { logger: new MemoryLogger() });
      const c = crashed.storage;
      expect(readWalFromTheDocs(copy)).toEqual({
        first: c.firstIndex(),
        last: c.lastIndex(),
        entries: plain(c.entries(c.firstIndex(), c.lastIndex() + 1)),
        ...c.initialState(),
        snapshot: crashed.snapshotMetadata,
        prevTerm: c.term(c.firstIndex() - 1),
      });
      if (k === deleted - 1) expect(c.firstIndex()).toBe(93);
      await crashed.close();
    }
  });
});

import { CompactedError, HardState, SnapshotMetadata, UnavailableError } from '@app/consensus/core';
import { readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dumpWal as dump, entries, MemoryLogger, plain, TempDirs } from '../../../test/support/wal-test-helpers';
import { WalCorruptionError } from './errors';
import { Wal, WalOptions } from './wal';
import { CompactionSegment, compactionPoint } from './wal-compaction';
import { parseSegmentFileName } from './wal-segment';

const dirs = new TempDirs();
const opened: Wal[] = [];

afterEach(async () => {
  for (const wal of opened.splice(0)) await wal.close().catch(() => undefined);
  dirs.cleanup();
});

async function open(dir: string, options: WalOptions = {}): Promise<Wal> {
  const wal = await Wal.open(dir, { logger: new MemoryLogger(), segmentSize: 1024, ...options });
  opened.push(wal);
  return wal;
}

async function reopen(wal: Wal, options: WalOptions = {}): Promise<Wal> {
  await wal.close();
  return open(wal.dir, options);
}

function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => parseSegmentFileName(n))
    .sort();
}

function walBytes(dir: string): number {
  return segments(dir).reduce((n, name) => n + statSync(join(dir, name)).size, 0);
}

const hs = (term: number, commit: number): HardState => ({ term, vote: 'n1', commit });
const snap = (index: number, term: number, voters = ['n1', 'n2', 'n3']): SnapshotMetadata => ({ index, term, confState: { voters } });

describe('Wal snapshots', () => {
  it('a snapshot of an entry the log holds keeps the log, live and after a restart', async () => {
    let wal = await open(dirs.make());
    await wal.setConfState({ voters: ['n1', 'n2', 'n3'] });
    await wal.save(hs(2, 20), entries(1, 30, 2));
    await wal.saveSnapshot(snap(20, 2));
    const expected = {
      first: 1,
      last: 30,
      entries: plain(entries(1, 30, 2)),
      prevTerm: 0,
      state: { hardState: hs(2, 20), confState: { voters: ['n1', 'n2', 'n3'] } },
      snapshot: snap(20, 2),
    };
    expect(dump(wal)).toEqual(expected);
    expect(wal.snapshotMetadata).toEqual(snap(20, 2));
    wal = await reopen(wal);
    expect(dump(wal)).toEqual(expected);
    expect(wal.recordedSnapshots).toEqual([{ index: 20, term: 2 }]);
  });

  it('an installed snapshot the log does not match resets the log after it, live and after a restart', async () => {
    let wal = await open(dirs.make());
    await wal.setConfState({ voters: ['n1'] });
    await wal.save(hs(2, 5), entries(1, 10, 2));
    await wal.saveSnapshot(snap(50, 3, ['a', 'b']), { installed: true });
    const expected = {
      first: 51,
      last: 50,
      entries: [],
      prevTerm: 3,
      state: { hardState: hs(2, 50), confState: { voters: ['a', 'b'] } },
      snapshot: snap(50, 3, ['a', 'b']),
    };
    expect(dump(wal)).toEqual(expected);
    expect(() => wal.storage.entries(10, 11)).toThrow(CompactedError);
    expect(() => wal.storage.term(49)).toThrow(CompactedError);
    wal = await reopen(wal);
    expect(dump(wal)).toEqual(expected);
    // The log goes on after it.
    await wal.save(hs(3, 52), entries(51, 52, 3));
    wal = await reopen(wal);
    expect(dump(wal)).toMatchObject({ first: 51, last: 52, prevTerm: 3, state: { hardState: hs(3, 52) } });
  });

  it('an installed snapshot whose entry the log holds with that term keeps the log', async () => {
    const wal = await open(dirs.make());
    await wal.save(hs(2, 5), entries(1, 10, 2));
    await wal.saveSnapshot(snap(8, 2), { installed: true });
    expect(dump(wal)).toMatchObject({ first: 1, last: 10, snapshot: snap(8, 2) });
  });

  it('orders the reset with the saves: a save made right after it is checked against, and lands after, the reset log', async () => {
    let wal = await open(dirs.make());
    await wal.save(hs(1, 2), entries(1, 5, 1));
    let moved = false;
    const install = wal.saveSnapshot(snap(40, 2), {
      installed: true,
      before: async () => {
        moved = true;
      },
    });
    const after = wal.save(hs(2, 41), entries(41, 42, 2));
    await expect(wal.save(undefined, entries(6, 6, 1))).rejects.toThrow(RangeError);
    await Promise.all([install, after]);
    expect(moved).toBe(true);
    expect(dump(wal)).toMatchObject({ first: 41, last: 42, state: { hardState: hs(2, 41) } });
    wal = await reopen(wal);
    expect(dump(wal)).toMatchObject({ first: 41, last: 42, prevTerm: 2, state: { hardState: hs(2, 41) } });
  });

  it('refuses snapshots that would break the log, writing nothing', async () => {
    const wal = await open(dirs.make());
    await wal.save(hs(2, 8), entries(1, 10, 2));
    await wal.saveSnapshot(snap(6, 2));
    await expect(wal.saveSnapshot(snap(5, 2))).rejects.toThrow(/older than the snapshot \(6/);
    await expect(wal.saveSnapshot(snap(6, 1))).rejects.toThrow(/older than the snapshot/);
    await expect(wal.saveSnapshot(snap(9, 3))).rejects.toThrow(/does not hold entry 9 with term 3/);
    await expect(wal.saveSnapshot(snap(12, 2))).rejects.toThrow(/does not hold entry 12/);
    await expect(wal.saveSnapshot(snap(7, 3), { installed: true })).rejects.toThrow(/discard committed entries/);
    expect(dump(wal)).toMatchObject({ first: 1, last: 10, snapshot: snap(6, 2) });
  });

  it('a failing before() fails the Wal: the saves queued behind were checked against the reset log', async () => {
    const wal = await open(dirs.make());
    await wal.save(hs(1, 1), entries(1, 3, 1));
    const install = wal.saveSnapshot(snap(9, 2), {
      installed: true,
      before: () => Promise.reject(new Error('rename failed')),
    });
    const after = wal.save(undefined, entries(10, 10, 2));
    await expect(install).rejects.toThrow(/rename failed/);
    await expect(after).rejects.toThrow(/accepts no more writes/);
    expect(wal.storage.lastIndex()).toBe(3);
  });

  it('repeats the newest snapshot in the header batch of every new segment', async () => {
    let wal = await open(dirs.make(), { segmentSize: 512 });
    for (let i = 1; i <= 31; i++) await wal.save(hs(1, i), entries(i, i, 1, 50));
    await wal.saveSnapshot(snap(31, 1));
    const files = segments(wal.dir).length;
    // A large entry rolls over to a new segment, which starts at 32: its header batch carries the snapshot.
    await wal.save(hs(1, 32), entries(32, 32, 1, 600));
    expect(segments(wal.dir).length).toBe(files + 1);
    const all = segments(wal.dir);
    await wal.close();
    for (const name of all.slice(0, -1)) unlinkSync(join(wal.dir, name));
    wal = await open(wal.dir);
    expect(wal.snapshotMetadata).toEqual(snap(31, 1));
    expect(dump(wal)).toMatchObject({ first: 32, last: 32, prevTerm: 1, state: { hardState: hs(1, 32) } });
  });
});

describe('Wal compaction', () => {
  async function filled(options: WalOptions = {}): Promise<Wal> {
    const wal = await open(dirs.make(), options);
    await wal.setConfState({ voters: ['n1'] });
    for (let i = 1; i <= 200; i += 10) await wal.save(hs(1, i + 9), entries(i, i + 9, 1, 60));
    return wal;
  }

  it('deletes whole segments up to the snapshot and frees their disk space', async () => {
    const wal = await filled();
    expect(segments(wal.dir).length).toBeGreaterThan(10);
    // Without a snapshot no entry may go (only a segment that holds none, if any).
    await wal.compact(150);
    expect(wal.storage.firstIndex()).toBe(1);
    await wal.saveSnapshot(snap(150, 1));
    const before = { files: segments(wal.dir).length, bytes: walBytes(wal.dir) };
    const deleted = await wal.compact(150);
    expect(deleted).toBeGreaterThan(5);
    expect(segments(wal.dir).length).toBe(before.files - deleted);
    expect(walBytes(wal.dir)).toBeLessThan(before.bytes / 2);
    const first = wal.storage.firstIndex();
    expect(first).toBeGreaterThan(100);
    expect(first).toBeLessThanOrEqual(151);
    // Compaction is clamped to the snapshot, and by whole segments.
    expect(await wal.compact(1000)).toBe(0);
    expect(wal.storage.firstIndex()).toBe(first);
  });

  it('reads of compacted indexes throw CompactedError; term(first - 1) still works', async () => {
    const wal = await filled();
    await wal.saveSnapshot(snap(150, 1));
    await wal.compact(150);
    const s = wal.storage;
    const first = s.firstIndex();
    expect(() => s.entries(first - 1, first + 1)).toThrow(CompactedError);
    expect(() => s.term(first - 2)).toThrow(CompactedError);
    expect(s.term(first - 1)).toBe(1);
    expect(plain(s.entries(first, 201))).toEqual(plain(entries(first, 200, 1, 60)));
    expect(() => s.entries(first, 202)).toThrow(UnavailableError);
    expect(s.snapshot().metadata).toEqual(snap(150, 1));
  });

  it('recovers the compacted log after a restart, and keeps writing after it', async () => {
    let wal = await filled();
    await wal.saveSnapshot(snap(150, 1));
    await wal.compact(150);
    const expected = dump(wal);
    wal = await reopen(wal);
    expect(dump(wal)).toEqual(expected);
    expect(segments(wal.dir)[0].startsWith('0000000000000001-')).toBe(false);
    await wal.save(hs(2, 210), entries(201, 210, 2, 60));
    wal = await reopen(wal);
    expect(wal.storage.lastIndex()).toBe(210);
    expect(wal.storage.initialState().hardState).toEqual(hs(2, 210));
  });

  /**
   * Compacts `wal` up to `index`, then checks every state a crash halfway through could leave (the oldest k
   * segments deleted, for each k): each one must open and hold what `check` expects.
   */
  async function compactCheckingCrashes(wal: Wal, index: number, check: (w: Wal, finalFirst: number) => void): Promise<number> {
    const before = dirs.snapshot(wal.dir);
    const files = segments(before);
    const deleted = await wal.compact(index);
    const finalFirst = wal.storage.firstIndex();
    check(wal, finalFirst);
    for (let k = 0; k <= deleted; k++) {
      const copy = dirs.snapshot(before);
      unlinkSync(join(copy, 'LOCK'));
      for (const name of files.slice(0, k)) unlinkSync(join(copy, name));
      const w = await open(copy);
      expect(w.storage.firstIndex()).toBeLessThanOrEqual(finalFirst);
      check(w, finalFirst);
      await w.close();
    }
    return deleted;
  }

  it('a crash halfway through the deletions recovers: whichever oldest segments are gone, nothing else is lost', async () => {
    const wal = await filled();
    await wal.saveSnapshot(snap(150, 1));
    const deleted = await compactCheckingCrashes(wal, 150, (w, finalFirst) => {
      expect(w.storage.lastIndex()).toBe(200);
      expect(plain(w.storage.entries(finalFirst, 201))).toEqual(plain(entries(finalFirst, 200, 1, 60)));
      expect(w.snapshotMetadata).toEqual(snap(150, 1));
      expect(w.storage.initialState().hardState).toEqual(hs(1, 200));
    });
    expect(deleted).toBeGreaterThan(5);
  });

  it.each([
    [20, 3],
    [40, 4],
  ])(
    'after a new leader overwrote entries that had rolled into later segments, they go too (snapshot %i: %i deleted), and every crash point recovers',
    async (snapshotIndex, expectedDeleted) => {
      const wal = await open(dirs.make(), { segmentSize: 1024 });
      for (let i = 1; i <= 30; i += 10) await wal.save(hs(1, 10), entries(i, i + 9, 1, 60));
      // Uncommitted entries 11..30 ran into later segments; a new leader overwrites them from 11: a segment
      // rebased at 11 (no Truncate record), then the snapshot record rolls over to a segment that starts at 41.
      await wal.save(hs(2, 40), entries(11, 40, 2, 60));
      await wal.saveSnapshot(snap(snapshotIndex, 2));
      expect(segments(wal.dir).map((n) => parseSegmentFileName(n)?.firstIndex)).toEqual([1, 11, 21, 11, 41]);
      const expected = [...entries(1, 10, 1, 60), ...entries(11, 40, 2, 60)];
      // With the segments up to the one at 21 gone, recovery reads entries 21..30 first, then the rebased
      // segment restarts the log at 11: a valid start, since the snapshot covers entry 10.
      const deleted = await compactCheckingCrashes(wal, snapshotIndex, (w, finalFirst) => {
        const first = w.storage.firstIndex();
        expect([1, 11, finalFirst]).toContain(first);
        expect(w.storage.lastIndex()).toBe(40);
        expect(plain(w.storage.entries(first, 41))).toEqual(plain(expected.slice(first - 1)));
        expect(w.storage.term(first - 1)).toBe(first === 1 ? 0 : first <= 11 ? 1 : 2);
        expect(w.snapshotMetadata).toEqual(snap(snapshotIndex, 2));
        expect(w.storage.initialState().hardState).toEqual(hs(2, 40));
      });
      expect(deleted).toBe(expectedDeleted);
      expect(wal.storage.firstIndex()).toBe(snapshotIndex === 40 ? 41 : 11);
    },
  );

  it('an installed snapshot that reset the log below the active segment, then an overwrite below it: everything before goes', async () => {
    const wal = await open(dirs.make(), { segmentSize: 1024 });
    await wal.save(hs(1, 10), entries(1, 10, 1, 60));
    await wal.save(hs(1, 10), entries(11, 20, 1, 60));
    await wal.save(hs(1, 10), entries(21, 22, 1, 60));
    // A Reset record in the segment that starts at 21 restarts the log at 16; an overwrite from 17 then
    // starts a segment there (rebased), and the snapshot record rolls over to a segment at 31.
    await wal.saveSnapshot(snap(15, 2), { installed: true });
    await wal.save(hs(2, 16), entries(16, 19, 2, 60));
    await wal.save(hs(3, 30), entries(17, 30, 3, 60));
    await wal.saveSnapshot(snap(30, 3));
    expect(segments(wal.dir).map((n) => parseSegmentFileName(n)?.firstIndex)).toEqual([1, 11, 21, 17, 31]);
    const expected = [...entries(16, 16, 2, 60), ...entries(17, 30, 3, 60)];
    const deleted = await compactCheckingCrashes(wal, 30, (w) => {
      const first = w.storage.firstIndex();
      expect(first).toBeGreaterThanOrEqual(16);
      expect(w.storage.lastIndex()).toBe(30);
      expect(plain(w.storage.entries(first, 31))).toEqual(plain(expected.slice(first - 16)));
      expect(w.storage.term(first - 1)).toBe(first <= 17 ? 2 : 3);
      expect(w.storage.initialState().hardState).toEqual(hs(3, 30));
    });
    expect(deleted).toBe(4);
    expect(wal.storage.firstIndex()).toBe(31);
  });

  it('after an install over a divergent log, releases the discarded segments', async () => {
    const wal = await open(dirs.make(), { segmentSize: 1024 });
    for (let i = 1; i <= 60; i += 10) await wal.save(hs(1, 5), entries(i, i + 9, 1, 60));
    expect(segments(wal.dir).length).toBeGreaterThan(3);
    await wal.saveSnapshot(snap(30, 2), { installed: true });
    await wal.save(hs(2, 32), entries(31, 32, 2, 60));
    const total = segments(wal.dir).length;
    const deleted = await compactCheckingCrashes(wal, 30, (w) => {
      expect(dump(w)).toMatchObject({ last: 32, prevTerm: 2, snapshot: snap(30, 2), entries: plain(entries(31, 32, 2, 60)) });
    });
    expect(deleted).toBe(total - 1);
  });

  it('refuses a log whose start no recorded snapshot covers (segments deleted by hand)', async () => {
    const wal = await filled();
    const files = segments(wal.dir);
    await wal.close();
    // (The first segment holds only the configuration: the entries start in the second.)
    for (const name of files.slice(0, 2)) unlinkSync(join(wal.dir, name));
    await expect(open(wal.dir)).rejects.toThrow(WalCorruptionError);
    await expect(open(wal.dir)).rejects.toThrow(/records no snapshot: entries before \d+ are missing/);
  });
});

describe('compactionPoint', () => {
  /** A segment: first index, then optionally its lowest Truncate and whether it holds a Reset snapshot. */
  const seg = (firstIndex: number, minTruncate = Infinity, hasReset = false): Omit<CompactionSegment, 'seq'> => ({
    firstIndex,
    minTruncate,
    hasReset,
  });

  it.each<[string, Array<Omit<CompactionSegment, 'seq'>>, number, number]>([
    ['nothing to release', [seg(1), seg(11), seg(21)], 0, 0],
    ['up to the last segment whose start the snapshot covers', [seg(1), seg(11), seg(21), seg(31)], 25, 2],
    ['the active segment may become the first', [seg(1), seg(11), seg(21)], 100, 2],
    ['a Truncate at or above its own segment start is harmless', [seg(1), seg(11, 15), seg(21, 25)], 100, 2],
    // A rebased segment (an overwrite from 11, written at 31) lowers the start of every reading before it:
    // reading from the segment at 21 ends with the log from 11 on, which a snapshot at 15 covers.
    ['a rebased segment below earlier ones', [seg(1), seg(21), seg(11), seg(41)], 15, 2],
    ['a rebased segment, with a snapshot too old for it', [seg(1), seg(21), seg(11), seg(41)], 9, 0],
    // Written before rebased segments: a reader starting at 21 could not apply Truncate(11), for good.
    ['a deep Truncate (older writer)', [seg(1), seg(21, 11), seg(41), seg(51)], 50, 0],
    // Reading from 11, Truncate(15) acts on entries read; from 21 it would not.
    ['a deep Truncate blocks only the readings that start above it', [seg(1), seg(11), seg(21, 15), seg(31)], 30, 1],
    ['a Reset makes every segment up to it a valid start', [seg(1), seg(11), seg(21, Infinity, true), seg(31)], 5, 2],
    ['a deep Truncate before the Reset still counts', [seg(1), seg(21, 11, true), seg(31)], 50, 0],
  ])('%s', (_name, list, limit, expected) => {
    expect(compactionPoint(list.map((s, k) => ({ ...s, seq: k + 1 })), limit)).toBe(expected);
  });
});

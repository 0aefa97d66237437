import type { Entry, HardState, SnapshotMetadata } from '@app/consensus/core';
import type { SaveCallback, StateMachineView } from '@app/consensus/ports';
import { readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpWal as dump, entries, MemoryLogger, plain, TempDirs } from '../../../test/support/wal-test-helpers';
import { WalCorruptionError } from './errors';
import { NodeStorage, openNodeStorage } from './node-storage';
import { decodeRecord, encodeRecord, RecordType } from './record';
import {
  decodeEntryHeader,
  decodeSegmentHeader,
  decodeTruncate,
  encodeBatchEnd,
  encodeConfState,
  encodeHardState,
  encodeSegmentHeader,
  encodeSnapshotRecord,
  encodeTruncate,
  entryRecordSize,
  SnapshotMode,
  writeEntryRecord,
} from './record-payloads';
import { Wal, WalOptions } from './wal';
import { parseSegmentFileName, segmentFileName } from './wal-segment';

// Fsync-bound: thousands of durable saves and reopenings; seconds on a busy machine, not milliseconds.
jest.setTimeout(30_000);

/**
 * Rebased segments (docs/storage.md, "Segments"): a save that discards entries below the active segment's
 * first index starts a new segment there instead of writing a Truncate record that reaches back into older
 * segments, which used to pin compaction for good.
 */

const dirs = new TempDirs();
const wals: Wal[] = [];
const nodes: NodeStorage[] = [];

afterEach(async () => {
  for (const w of wals.splice(0)) await w.close().catch(() => undefined);
  for (const n of nodes.splice(0)) await n.close().catch(() => undefined);
  dirs.cleanup();
});

async function openWal(dir: string, options: WalOptions = {}): Promise<Wal> {
  const wal = await Wal.open(dir, { logger: new MemoryLogger(), segmentSize: 1024, ...options });
  wals.push(wal);
  return wal;
}

const hs = (term: number, commit: number): HardState => ({ term, vote: 'n1', commit });
const meta = (index: number, term: number): SnapshotMetadata => ({ index, term, confState: { voters: ['n1', 'n2', 'n3'] } });

/** The segment files of `dir`, in seq order, with their records' types and payload fields of interest. */
function segments(dir: string) {
  return readdirSync(dir)
    .map(parseSegmentFileName)
    .filter((s) => s !== undefined)
    .sort((a, b) => a.seq - b.seq)
    .map((name) => {
      const buf = readFileSync(join(dir, name.name));
      const truncates: number[] = [];
      const entryIndexes: number[] = [];
      for (let p = 0; p < buf.length; ) {
        const r = decodeRecord(buf, p);
        if (!r.ok) throw new Error(`${name.name}@${p}: ${r.reason}`);
        if (r.type === RecordType.Truncate) truncates.push(decodeTruncate(r.payload));
        if (r.type === RecordType.Entry) entryIndexes.push(decodeEntryHeader(r.payload).index);
        p = r.end;
      }
      return { ...name, truncates, firstEntry: entryIndexes[0] };
    });
}

/** The writer's rule: no Truncate record below its own segment's first index. */
function expectNoDeepTruncate(dir: string): void {
  for (const s of segments(dir)) for (const t of s.truncates) expect(t).toBeGreaterThanOrEqual(s.firstIndex);
}

/**
 * Entries 1..22 of term 1, commit 10, in three segments: [1, 10], [11, 20] and the active one, which starts at
 * 21 and has room left.
 */
async function followerLog(dir: string): Promise<Wal> {
  const wal = await openWal(dir);
  await wal.save(hs(1, 10), entries(1, 10, 1, 60));
  await wal.save(hs(1, 10), entries(11, 20, 1, 60));
  await wal.save(hs(1, 10), entries(21, 22, 1, 60));
  expect(segments(dir).map((s) => s.firstIndex)).toEqual([1, 11, 21]);
  return wal;
}

describe('a save that overwrites entries below the active segment', () => {
  it('starts a segment at the overwritten index, with no Truncate record; live and after a restart', async () => {
    const dir = dirs.make();
    let wal = await followerLog(dir);
    await wal.save(hs(2, 10), entries(15, 16, 2, 60));
    const files = segments(dir);
    expect(files.map((s) => [s.seq, s.firstIndex])).toEqual([[1, 1], [2, 11], [3, 21], [4, 15]]);
    expect(files[3]).toMatchObject({ name: segmentFileName(4, 15), firstEntry: 15, truncates: [] });
    const expected = [...entries(1, 14, 1, 60), ...entries(15, 16, 2, 60)];
    expect(plain(wal.storage.entries(1, 17))).toEqual(plain(expected));
    expect(wal.storage.lastIndex()).toBe(16);
    // A truncation at or above the new segment's start is an ordinary Truncate record in it.
    await wal.save(hs(3, 10), entries(16, 17, 3, 60));
    expect(segments(dir)).toHaveLength(4);
    expect(segments(dir)[3].truncates).toEqual([16]);
    const state = dump(wal);
    expect(state).toMatchObject({ first: 1, last: 17 });
    wal = await wal.close().then(() => openWal(dir, { payloadCacheBytes: 0 }));
    expect(dump(wal)).toEqual(state);
  });

  it('a batch that starts with a truncation and rolls over for size starts its segment there too', async () => {
    const dir = dirs.make();
    let wal = await followerLog(dir);
    await wal.save(hs(2, 10), entries(12, 40, 2, 60));
    expect(segments(dir).map((s) => s.firstIndex)).toEqual([1, 11, 21, 12]);
    expectNoDeepTruncate(dir);
    const state = dump(wal);
    wal = await wal.close().then(() => openWal(dir));
    expect(dump(wal)).toEqual(state);
    expect(plain(wal.storage.entries(1, 41))).toEqual(plain([...entries(1, 11, 1, 60), ...entries(12, 40, 2, 60)]));
  });

  it('group commit: saves queued together are split where one reaches below the segment it would join', async () => {
    const dir = dirs.make();
    let wal = await followerLog(dir);
    const a = wal.save(undefined, entries(23, 24, 1, 60));
    const b = wal.save(hs(2, 10), entries(12, 13, 2, 60)); // below 21: a new segment at 12
    const c = wal.save(undefined, entries(14, 14, 2, 60));
    const d = wal.save(hs(3, 10), entries(13, 14, 3, 60)); // above 12: a Truncate record in that segment
    const e = wal.save(hs(4, 11), entries(11, 11, 4, 60)); // below 12: another new segment
    await Promise.all([a, b, c, d, e]);
    expect(segments(dir).map((s) => s.firstIndex)).toEqual([1, 11, 21, 12, 11]);
    expect(segments(dir)[3].truncates).toEqual([13]);
    expectNoDeepTruncate(dir);
    const state = dump(wal);
    expect(plain(wal.storage.entries(1, 12))).toEqual(plain([...entries(1, 10, 1, 60), ...entries(11, 11, 4, 60)]));
    expect(wal.storage.initialState().hardState).toEqual(hs(4, 11));
    wal = await wal.close().then(() => openWal(dir, { payloadCacheBytes: 0 }));
    expect(dump(wal)).toEqual(state);
  });

  it('after an installed snapshot reset the log below the active segment, an overwrite there starts a segment too', async () => {
    const dir = dirs.make();
    let wal = await followerLog(dir);
    await wal.saveSnapshot(meta(15, 2), { installed: true }); // a Reset record in the segment that starts at 21
    await wal.save(hs(2, 16), entries(16, 19, 2, 60));
    await wal.save(hs(3, 16), entries(17, 18, 3, 60));
    expect(segments(dir).map((s) => s.firstIndex)).toEqual([1, 11, 21, 17]);
    expectNoDeepTruncate(dir);
    const state = dump(wal);
    expect(state).toMatchObject({ first: 16, last: 18, prevTerm: 2 });
    wal = await wal.close().then(() => openWal(dir));
    expect(dump(wal)).toEqual(state);
  });
});

describe('recovery of rebased segments', () => {
  /** Entries 1..10 of term 1 and 11..40 of term 2, the latter in a segment rebased at 11; snapshot at 40. */
  async function overwritten(dir: string): Promise<{ files: string[]; state: unknown }> {
    const wal = await openWal(dir);
    for (let i = 1; i <= 30; i += 10) await wal.save(hs(1, 10), entries(i, i + 9, 1, 60));
    await wal.save(hs(2, 40), entries(11, 40, 2, 60));
    await wal.saveSnapshot(meta(40, 2));
    const files = segments(dir);
    expect(files.map((s) => s.firstIndex).slice(0, 4)).toEqual([1, 11, 21, 11]);
    const state = dump(wal);
    await wal.close();
    return { files: files.map((s) => s.name), state };
  }

  it('starting after deleted segments, a rebased segment below the first one read restarts the log there', async () => {
    const dir = dirs.make();
    const { files, state } = await overwritten(dir);
    // Each prefix of the deletions compaction makes (oldest first); the last one leaves the rebased segment
    // first. With the segment starting at 21 read first, the rebased one restarts the log at 11.
    for (let k = 1; k <= 3; k++) {
      const copy = dirs.snapshot(dir);
      for (const name of files.slice(0, k)) unlinkSync(join(copy, name));
      const wal = await openWal(copy);
      const expected = { ...(state as object), first: 11, entries: plain(entries(11, 40, 2, 60)), prevTerm: 1 };
      expect(dump(wal)).toEqual(expected);
      await wal.close();
    }
  });

  it('a rebased header whose prevTerm is not the term of the entry before it is corruption, naming file and offset', async () => {
    const dir = dirs.make();
    const { files } = await overwritten(dir);
    const path = join(dir, files[3]);
    const buf = readFileSync(path);
    const header = decodeRecord(buf, 0);
    if (!header.ok) throw new Error(header.reason);
    const h = decodeSegmentHeader(header.payload);
    writeFileSync(path, Buffer.concat([encodeRecord(RecordType.SegmentHeader, encodeSegmentHeader({ ...h, prevTerm: 7 })), buf.subarray(header.end)]));
    const err = await Wal.open(dir, { logger: new MemoryLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalCorruptionError);
    expect(err).toMatchObject({
      file: path,
      offset: 0,
      reason: 'segment continues the log at index 11 after an entry of term 7, but entry 10 has term 1',
    });
  });

  it('a rebased header below the commit index is corruption', async () => {
    const dir = dirs.make();
    const { files } = await overwritten(dir);
    // The same segment, claiming to start at 5: it would discard entries 5..10, committed.
    const from = join(dir, files[3]);
    const buf = readFileSync(from);
    const header = decodeRecord(buf, 0);
    if (!header.ok) throw new Error(header.reason);
    const h = decodeSegmentHeader(header.payload);
    const to = join(dir, segmentFileName(h.seq, 5));
    renameSync(from, to);
    writeFileSync(to, Buffer.concat([encodeRecord(RecordType.SegmentHeader, encodeSegmentHeader({ ...h, firstIndex: 5 })), buf.subarray(header.end)]));
    await expect(Wal.open(dir, { logger: new MemoryLogger() })).rejects.toMatchObject({
      name: 'WalCorruptionError',
      file: to,
      offset: 0,
      reason: 'segment restarts the log at index 5, which would discard committed entries (commit 10)',
    });
  });
});

describe('a random workload of overwrites, snapshots and compactions', () => {
  it('never writes a deep Truncate, and every crash point of every compaction recovers the live log', async () => {
    const dir = dirs.make();
    const wal = await openWal(dir, { payloadCacheBytes: 4096 });
    let seed = 4242;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const model: Entry[] = [];
    let term = 1;
    let commit = 0;
    let snapshot = 0;
    let crashStates = 0;
    let rebased = 0;
    for (let round = 1; round <= 50; round++) {
      const saves: Array<Promise<void>> = [];
      for (let k = 0; k < 1 + rand(3); k++) {
        let from = model.length + 1;
        if (rand(6) === 0 && model.length > commit) {
          term++;
          from = commit + 1 + rand(model.length - commit);
        }
        const batch = entries(from, from + rand(10), term, rand(120));
        model.length = from - 1;
        model.push(...batch);
        commit = Math.min(model.length, commit + rand(6));
        saves.push(wal.save(hs(term, commit), batch));
      }
      await Promise.all(saves);
      if (round % 10 !== 0 || commit <= snapshot) continue;
      snapshot = commit;
      await wal.saveSnapshot(meta(snapshot, model[snapshot - 1].term));
      const before = dirs.snapshot(dir);
      const listed = segments(before);
      const files = listed.map((f) => f.name);
      rebased += listed.filter((f, k) => k > 0 && f.firstIndex < listed[k - 1].firstIndex).length;
      const deleted = await wal.compact(snapshot);
      const finalFirst = wal.storage.firstIndex();
      expect(finalFirst - 1).toBeLessThanOrEqual(snapshot);
      for (let k = 0; k <= deleted; k++) {
        const copy = dirs.snapshot(before);
        for (const name of [...files.slice(0, k), 'LOCK']) unlinkSync(join(copy, name));
        const w = await Wal.open(copy, { logger: new MemoryLogger(), segmentSize: 1024 });
        const first = w.storage.firstIndex();
        expect(first).toBeLessThanOrEqual(finalFirst);
        expect(w.storage.lastIndex()).toBe(model.length);
        expect(plain(w.storage.entries(first, model.length + 1))).toEqual(plain(model.slice(first - 1)));
        expect(w.storage.term(first - 1)).toBe(first === 1 ? 0 : model[first - 2].term);
        expect(w.storage.initialState().hardState).toEqual(hs(term, commit));
        await w.close();
        crashStates++;
      }
    }
    // The workload did what it is for: overwrites that started rebased segments, which compaction passed.
    expect(rebased).toBeGreaterThan(5);
    expect(crashStates).toBeGreaterThan(30);
    expect(wal.storage.firstIndex()).toBeGreaterThan(model.length / 2);
    expectNoDeepTruncate(dir);
  });
});

describe('directories written before rebased segments (a Truncate below its own segment)', () => {
  /** A segment file as the earlier writer laid it out: header batch, then `batches`, each ended by BatchEnd. */
  function writeSegment(dir: string, seq: number, firstIndex: number, prevTerm: number, state: HardState, batches: Buffer[][]): void {
    const header = [
      encodeRecord(RecordType.SegmentHeader, encodeSegmentHeader({ seq, firstIndex, prevTerm })),
      encodeRecord(RecordType.HardState, encodeHardState(state)),
      encodeRecord(RecordType.ConfState, encodeConfState({ voters: ['n1', 'n2', 'n3'] })),
    ];
    const parts: Buffer[] = [];
    for (const batch of [header, ...batches]) parts.push(...batch, encodeRecord(RecordType.BatchEnd, encodeBatchEnd(batch.length)));
    writeFileSync(join(dir, segmentFileName(seq, firstIndex)), Buffer.concat(parts));
  }
  const entryRecords = (from: number, to: number, term: number): Buffer[] =>
    entries(from, to, term, 60).map((e) => {
      const buf = Buffer.alloc(entryRecordSize(e));
      writeEntryRecord(buf, 0, e);
      return buf;
    });

  it('are read as before; compaction keeps every segment from the one before the deep Truncate, as documented', async () => {
    const dir = dirs.make();
    writeSegment(dir, 1, 1, 0, hs(0, 0), [[...entryRecords(1, 20, 1), encodeRecord(RecordType.HardState, encodeHardState(hs(1, 10)))]]);
    writeSegment(dir, 2, 21, 1, hs(1, 10), [
      entryRecords(21, 30, 1),
      [
        encodeRecord(RecordType.Truncate, encodeTruncate(11)),
        ...entryRecords(11, 40, 2),
        encodeRecord(RecordType.HardState, encodeHardState(hs(2, 40))),
      ],
      [encodeRecord(RecordType.Snapshot, encodeSnapshotRecord({ metadata: meta(40, 2), mode: SnapshotMode.Keep }))],
    ]);
    let wal = await openWal(dir);
    expect(plain(wal.storage.entries(1, 41))).toEqual(plain([...entries(1, 10, 1, 60), ...entries(11, 40, 2, 60)]));
    // The log goes on in new segments, and newer snapshots follow, but a reader starting at segment 2 could
    // not apply its Truncate(11): segment 1 stays, and so does everything after it.
    for (let i = 41; i <= 100; i += 10) await wal.save(hs(2, i + 9), entries(i, i + 9, 2, 60));
    await wal.saveSnapshot(meta(100, 2));
    expect(await wal.compact(100)).toBe(0);
    expect(wal.storage.firstIndex()).toBe(1);
    expect(segments(dir)[1]).toMatchObject({ firstIndex: 21, truncates: [11] });
    // The segments written since follow the new rule, and the whole still recovers.
    for (const s of segments(dir).slice(2)) expect(s.truncates).toEqual([]);
    const state = dump(wal);
    wal = await wal.close().then(() => openWal(dir));
    expect(dump(wal)).toEqual(state);
  });
});

describe('NodeStorage: compaction after an overwrite of entries that rolled into a later segment', () => {
  function call(fn: (done: SaveCallback) => void): Promise<void> {
    return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
  }
  const view = (index: number): StateMachineView => ({
    *chunks(): Generator<Uint8Array> {
      yield Buffer.from(`kv@${index}`);
    },
    release(): void {},
  });
  async function open(dir: string): Promise<NodeStorage> {
    const node = await openNodeStorage(dir, { logger: new MemoryLogger(), segmentSize: 1024 });
    nodes.push(node);
    return node;
  }

  it('keeps releasing segments: the disk stays bounded, and a restart recovers the same log', async () => {
    const dir = dirs.make();
    let node = await open(dir);
    for (let i = 1; i <= 30; i += 10) await call((done) => node.save(hs(1, 10), entries(i, i + 9, 1, 60), done));
    await call((done) => node.save(hs(2, 40), entries(11, 40, 2, 60), done));
    // The overwritten entries 11..30 had rolled into later segments: the overwrite starts its own.
    expect(segments(dir).map((s) => s.firstIndex)).toEqual([1, 11, 21, 11]);
    const overwritten = [...entries(1, 10, 1, 60), ...entries(11, 40, 2, 60)];
    expect(plain(node.storage.entries(1, 41))).toEqual(plain(overwritten));
    await node.close();
    node = await open(dir);
    expect(plain(node.storage.entries(1, 41))).toEqual(plain(overwritten));
    expect(node.storage.initialState().hardState).toEqual(hs(2, 40));

    for (let i = 41; i <= 2040; i += 10) {
      await call((done) => node.save(hs(2, i + 9), entries(i, i + 9, 2, 60), done));
      if ((i + 9) % 100 === 0) {
        await call((done) => node.createSnapshot(meta(i + 9, 2), view(i + 9), done));
        node.compact(i + 9);
        await node.wal.compact(0); // waits for the compaction queued before it
      }
    }
    const first = node.storage.firstIndex();
    expect(first).toBeGreaterThan(1900);
    expect(first).toBeLessThanOrEqual(2001);
    expect(segments(dir).length).toBeLessThan(20);
    expectNoDeepTruncate(dir);
    expect(plain(node.storage.entries(first, 2041))).toEqual(plain(entries(first, 2040, 2, 60)));
    const state = dump(node.wal);
    await node.close();
    node = await open(dir);
    expect(dump(node.wal)).toEqual(state);
  });
});

import { Entry, HardState } from '@app/consensus/core';
import { readdirSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { entries, entry, MemoryLogger, plain, TempDirs } from '../../../test/support/wal-test-helpers';
import { fileIo } from './durable-fs';
import { WalClosedError, WalCorruptionError, WalFailedError, WalLockedError } from './errors';
import { decodeRecord, RecordType } from './record';
import { decodeConfState } from './record-payloads';
import { Wal, WalOptions } from './wal';
import { parseSegmentFileName } from './wal-segment';

const dirs = new TempDirs();
const opened: Wal[] = [];

afterEach(async () => {
  jest.restoreAllMocks();
  for (const wal of opened.splice(0)) await wal.close().catch(() => undefined);
  dirs.cleanup();
});

async function open(dir: string, options: WalOptions = {}): Promise<{ wal: Wal; logger: MemoryLogger }> {
  const logger = new MemoryLogger();
  const wal = await Wal.open(dir, { logger, ...options });
  opened.push(wal);
  return { wal, logger };
}

/** Everything the Raft core can read, as plain values. */
function dump(wal: Wal): unknown {
  const s = wal.storage;
  return {
    first: s.firstIndex(),
    last: s.lastIndex(),
    entries: plain(s.entries(s.firstIndex(), s.lastIndex() + 1)),
    terms: Array.from({ length: s.lastIndex() - s.firstIndex() + 2 }, (_, k) => s.term(s.firstIndex() - 1 + k)),
    state: s.initialState(),
  };
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => parseSegmentFileName(n))
    .sort()
    .map((n) => join(dir, n));
}

/** The records of a segment file: offset, type and end of each. */
function recordsOf(file: string): Array<{ offset: number; type: RecordType; end: number }> {
  const buf = readFileSync(file);
  const out: Array<{ offset: number; type: RecordType; end: number }> = [];
  for (let p = 0; p < buf.length; ) {
    const r = decodeRecord(buf, p);
    if (!r.ok) throw new Error(`${file}@${p}: ${r.reason}`);
    out.push({ offset: p, type: r.type, end: r.end });
    p = r.end;
  }
  return out;
}

function flipBit(file: string, bit: number): Buffer {
  const original = readFileSync(file);
  const bad = Buffer.from(original);
  bad[bit >> 3] ^= 1 << (bit & 7);
  writeFileSync(file, bad);
  return original;
}

const hs = (term: number, commit: number, vote = 'n1'): HardState => ({ term, vote, commit });

describe('Wal', () => {
  describe('open', () => {
    it('creates the directory and an empty log with zero hard state', async () => {
      const dir = join(dirs.make(), 'nested', 'data');
      const { wal } = await open(dir);
      expect(dump(wal)).toEqual({
        first: 1,
        last: 0,
        entries: [],
        terms: [0],
        state: { hardState: { term: 0, vote: '', commit: 0 }, confState: { voters: [] } },
      });
      expect(wal.meta).toBeUndefined();
      expect(readdirSync(dir).sort()).toEqual(['0000000000000001-0000000000000001.wal', 'LOCK']);
      // The first segment holds its header batch: header, hard state, conf state, batch end.
      expect(recordsOf(segmentFiles(dir)[0]).map((r) => r.type)).toEqual([
        RecordType.SegmentHeader,
        RecordType.HardState,
        RecordType.ConfState,
        RecordType.BatchEnd,
      ]);
    });

    it('refuses a second open of the same directory in this process, naming the directory', async () => {
      const dir = dirs.make();
      await open(dir);
      const second = Wal.open(dir, { logger: new MemoryLogger() });
      await expect(second).rejects.toThrow(WalLockedError);
      await expect(second).rejects.toThrow(`WAL directory ${dir} is in use by another process`);
    });

    it('releases the lock on close, so the directory can be opened again', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir);
      await wal.close();
      await expect(open(dir)).resolves.toBeDefined();
    });
  });

  describe('save', () => {
    it('makes entries visible only once durable, and resolves saves in call order', async () => {
      const { wal } = await open(dirs.make());
      const order: number[] = [];
      const saves = [1, 2, 3].map((i) => wal.save(hs(1, 0), [entry(i, 1)]).then(() => order.push(i)));
      expect(wal.storage.lastIndex()).toBe(0);
      await Promise.all(saves);
      expect(order).toEqual([1, 2, 3]);
      expect(wal.storage.lastIndex()).toBe(3);
      expect(plain(wal.storage.entries(1, 4))).toEqual(plain(entries(1, 3, 1)));
      expect(wal.storage.initialState().hardState).toEqual(hs(1, 0));
    });

    it('group commit: saves made while an fsync is in flight share the next fsync', async () => {
      const fsyncs: number[] = [];
      const { wal } = await open(dirs.make(), { onFsync: (_s, bytes) => fsyncs.push(bytes) });
      const realWrite = fileIo.writev;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let calls = 0;
      jest.spyOn(fileIo, 'writev').mockImplementation(async (fd, buffers, position) => {
        if (calls++ === 0) await gate;
        return realWrite(fd, buffers, position);
      });
      const first = wal.save(hs(1, 0), [entry(1, 1)]);
      await new Promise((r) => setTimeout(r, 20)); // the first batch is now waiting in its fsync
      const more = Array.from({ length: 10 }, (_, k) => wal.save(undefined, [entry(k + 2, 1)]));
      release();
      await Promise.all([first, ...more]);
      expect(calls).toBe(2);
      expect(fsyncs).toHaveLength(2);
      expect(wal.storage.lastIndex()).toBe(11);
    });

    it('saves made in the same turn of the event loop go out in one batch', async () => {
      const fsyncs: number[] = [];
      const { wal } = await open(dirs.make(), { onFsync: (_s, bytes) => fsyncs.push(bytes) });
      await Promise.all(Array.from({ length: 50 }, (_, k) => wal.save(undefined, [entry(k + 1, 1)])));
      expect(fsyncs).toHaveLength(1);
      expect(fsyncs[0]).toBe(50 * (12 + 17 + 100) + 16);
    });

    it('a save with nothing to write resolves once earlier saves are durable', async () => {
      const { wal } = await open(dirs.make());
      const a = wal.save(hs(1, 0), [entry(1, 1)]);
      await wal.save(undefined, []);
      expect(wal.storage.lastIndex()).toBe(1);
      await a;
    });

    it('truncates a conflicting suffix with a record, without rewriting what was written', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir);
      await wal.save(hs(1, 3), entries(1, 10, 1));
      const [file] = segmentFiles(dir);
      const before = readFileSync(file);
      await wal.save(hs(2, 3, 'n2'), entries(6, 8, 2));
      const after = readFileSync(file);
      expect(after.subarray(0, before.length).equals(before)).toBe(true);
      expect(recordsOf(file).filter((r) => r.type === RecordType.Truncate)).toHaveLength(1);
      const expected = [...entries(1, 5, 1), ...entries(6, 8, 2)];
      expect(plain(wal.storage.entries(1, 9))).toEqual(plain(expected));
      expect(wal.storage.lastIndex()).toBe(8);
      // And appending after the truncation, then restarting, gives the same log.
      await wal.save(hs(2, 7, 'n2'), entries(9, 9, 2));
      const state = dump(wal);
      await wal.close();
      const { wal: again } = await open(dir, { payloadCacheBytes: 0 });
      expect(dump(again)).toEqual(state);
      expect(plain(again.storage.entries(1, 10))).toEqual(plain([...expected, entry(9, 2)]));
    });

    it('truncates back into an older segment', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir, { segmentSize: 1024 });
      for (let i = 1; i <= 30; i++) await wal.save(hs(1, Math.min(i, 2)), [entry(i, 1)]);
      expect(segmentFiles(dir).length).toBeGreaterThan(3);
      await wal.save(hs(3, 2, 'n3'), entries(3, 4, 3));
      const state = dump(wal);
      expect(wal.storage.lastIndex()).toBe(4);
      await wal.close();
      const { wal: again } = await open(dir, { segmentSize: 1024, payloadCacheBytes: 0 });
      expect(dump(again)).toEqual(state);
    });

    it.each<[string, HardState | undefined, Entry[], string]>([
      ['a gap after the last index', undefined, [entry(5, 1)], 'entries start at 5; the log holds [1, 2]'],
      ['non-consecutive entries', undefined, [entry(3, 1), entry(5, 1)], 'not consecutive'],
      ['terms going down in a batch', undefined, [entry(3, 2), entry(4, 1)], 'non-decreasing terms'],
      ['overwriting a committed entry', undefined, [entry(1, 2)], 'would overwrite a committed entry'],
      ['a commit beyond the last index', hs(1, 3), [], 'commit 3 is beyond the last index 2'],
      ['the term going down', hs(0, 1), [], 'term 0 is below 1'],
      ['the commit going down', hs(1, 0), [], 'commit 0 is below 1'],
      ['an index that is not a safe integer', undefined, [entry(2 ** 53, 1)], 'non-negative safe integer'],
    ])('rejects %s without writing anything, and stays usable', async (_name, state, ents, message) => {
      const { wal } = await open(dirs.make());
      await wal.save(hs(1, 1), entries(1, 2, 1));
      await expect(wal.save(state, ents)).rejects.toThrow(message);
      await expect(wal.save(hs(1, 2), [entry(3, 1)])).resolves.toBeUndefined();
      expect(wal.storage.lastIndex()).toBe(3);
    });

    it('checks a save against the queued saves ahead of it, not only against what is durable', async () => {
      const { wal } = await open(dirs.make());
      const a = wal.save(hs(1, 0), entries(1, 3, 1));
      const b = wal.save(undefined, entries(4, 5, 1)); // follows a, which is not durable yet
      await expect(wal.save(undefined, [entry(7, 1)])).rejects.toThrow('entries start at 7; the log holds [1, 5]');
      await Promise.all([a, b]);
      expect(wal.storage.lastIndex()).toBe(5);
    });
  });

  describe('failures', () => {
    it.each([
      ['fdatasync', 'fdatasync'],
      ['dsync', 'writev'],
    ] as const)('after a failed fsync (%s), rejects the batch and every later save, and recovers on reopen', async (syncMethod, call) => {
      const dir = dirs.make();
      const { wal, logger } = await open(dir, { syncMethod });
      await wal.save(hs(1, 0), entries(1, 2, 1));
      const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      if (call === 'writev') {
        // With O_DSYNC, the write itself reports the failed flush; let the bytes reach the page cache.
        const realWrite = fileIo.writev;
        jest.spyOn(fileIo, 'writev').mockImplementationOnce(async (fd, buffers, position) => {
          await realWrite(fd, buffers, position);
          throw eio;
        });
      } else {
        jest.spyOn(fileIo, 'fdatasync').mockRejectedValueOnce(eio);
      }
      const failed = wal.save(hs(1, 1), [entry(3, 1)]);
      const queued = wal.save(undefined, [entry(4, 1)]);
      await expect(failed).rejects.toThrow(WalFailedError);
      await expect(queued).rejects.toThrow(WalFailedError);
      await expect(wal.save(undefined, [entry(4, 1)])).rejects.toThrow('restart the process');
      expect(wal.storage.lastIndex()).toBe(2); // never made visible
      expect(logger.errors[0]).toContain('EIO: i/o error, fdatasync');
      await wal.close();
      // What was written before the failure is recovered; the failed batch may or may not be (it was not
      // acknowledged): here the page cache kept it.
      const { wal: again } = await open(dir);
      expect(again.storage.lastIndex()).toBeGreaterThanOrEqual(2);
      expect(plain(again.storage.entries(1, 3))).toEqual(plain(entries(1, 2, 1)));
    });

    it('after a write the disk refused (ENOSPC), rejects with StorageFullError and stays usable (storage-full.spec.ts)', async () => {
      const { wal } = await open(dirs.make());
      jest.spyOn(fileIo, 'writev').mockRejectedValueOnce(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
      await expect(wal.save(hs(1, 0), [entry(1, 1)])).rejects.toMatchObject({ name: 'StorageFullError', code: 'ENOSPC' });
      await expect(wal.save(hs(1, 0), [entry(1, 1)])).resolves.toBeUndefined();
      expect(wal.storage.lastIndex()).toBe(1);
    });

    it('rejects saves after close, but flushes the ones queued before', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir);
      const pending = wal.save(hs(1, 0), entries(1, 5, 1));
      const closing = wal.close();
      await expect(wal.save(undefined, [entry(6, 1)])).rejects.toThrow(WalClosedError);
      await pending;
      await closing;
      const { wal: again } = await open(dir);
      expect(again.storage.lastIndex()).toBe(5);
    });
  });

  describe('segments', () => {
    it('rolls over at the size limit; each segment is named after its first index and starts with a header', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir, { segmentSize: 1024 });
      await wal.setConfState({ voters: ['a', 'b', 'c'] });
      for (let i = 1; i <= 40; i++) await wal.save(hs(1, i - 1), [entry(i, 1)]);
      await wal.save(hs(1, 40), entries(41, 60, 1)); // one batch larger than a segment: alone in a new one
      const files = segmentFiles(dir);
      expect(files.length).toBeGreaterThan(5);
      for (const [k, file] of files.entries()) {
        const name = parseSegmentFileName(file.slice(dir.length + 1))!;
        expect(name.seq).toBe(k + 1);
        const records = recordsOf(file);
        expect(records.slice(0, 4).map((r) => r.type)).toEqual([
          RecordType.SegmentHeader,
          RecordType.HardState,
          RecordType.ConfState,
          RecordType.BatchEnd,
        ]);
        // The configuration is repeated in every segment, so dropping old segments never loses it (the first
        // segment was created before it was set).
        const buf = readFileSync(file);
        const conf = decodeRecord(buf, records[2].offset);
        expect(conf.ok && decodeConfState(conf.payload)).toEqual({ voters: k === 0 ? [] : ['a', 'b', 'c'] });
        const firstEntry = records.find((r) => r.type === RecordType.Entry);
        if (firstEntry) expect(buf.readUInt32LE(firstEntry.offset + 12)).toBe(name.firstIndex);
        if (k < files.length - 1) expect(statSync(file).size).toBeLessThanOrEqual(1024);
      }
      expect(statSync(files[files.length - 1]).size).toBeGreaterThan(1024);
      const state = dump(wal);
      await wal.close();
      const { wal: again } = await open(dir, { segmentSize: 1024 });
      expect(dump(again)).toEqual(state);
    });
  });

  describe('restart', () => {
    it.each(['dsync', 'fdatasync'] as const)('reproduces exactly the same log, hard state and configuration, after close or after a crash (%s)', async (syncMethod) => {
      const dir = dirs.make();
      const { wal } = await open(dir, { segmentSize: 4096, payloadCacheBytes: 2048, syncMethod });
      await wal.setConfState({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
      // A deterministic workload: batches of random size, term changes that overwrite the uncommitted
      // suffix, several saves in flight at once.
      let seed = 12345;
      const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
      const model: Entry[] = [];
      let term = 1;
      let commit = 0;
      for (let round = 0; round < 60; round++) {
        const inFlight: Array<Promise<void>> = [];
        for (let k = 0; k < 1 + rand(4); k++) {
          let from = model.length + 1;
          if (rand(5) === 0 && model.length > commit) {
            term++;
            from = commit + 1 + rand(model.length - commit);
          }
          const batch = entries(from, from + rand(8), term, rand(300));
          model.length = from - 1;
          model.push(...batch);
          commit = Math.min(model.length, commit + rand(3));
          inFlight.push(wal.save(hs(term, commit, `n${term % 3}`), batch));
        }
        await Promise.all(inFlight);
      }
      expect(plain(wal.storage.entries(1, wal.storage.lastIndex() + 1))).toEqual(plain(model));
      const state = dump(wal);
      const crashed = dirs.snapshot(dir); // the files as a crash now would leave them (LOCK included)
      await wal.close();

      const { wal: reopened } = await open(dir, { segmentSize: 4096, payloadCacheBytes: 0 });
      expect(dump(reopened)).toEqual(state);
      const { wal: recovered, logger } = await open(crashed, { segmentSize: 4096 });
      expect(dump(recovered)).toEqual(state);
      expect(logger.warnings.join('\n')).toContain('took over the stale lock');
    });
  });

  describe('recovery', () => {
    /** Five saves of one entry each (each one batch: entry, hard state, batch end). */
    async function fiveBatches(dir: string): Promise<{ fourth: unknown; fourthEnd: number; file: string }> {
      const { wal } = await open(dir);
      for (let i = 1; i <= 4; i++) await wal.save(hs(1, i - 1), [entry(i, 1)]);
      const fourth = dump(wal);
      const file = segmentFiles(dir)[0];
      const fourthEnd = statSync(file).size;
      await wal.save(hs(1, 4), [entry(5, 1)]);
      await wal.close();
      return { fourth, fourthEnd, file };
    }

    it('a torn final batch, cut at every byte offset, recovers to the previous batch with a warning', async () => {
      const dir = dirs.make();
      const { fourth, fourthEnd, file } = await fiveBatches(dir);
      const full = readFileSync(file);
      for (let cut = fourthEnd; cut < full.length; cut++) {
        writeFileSync(file, full.subarray(0, cut));
        const { wal, logger } = await open(dir);
        expect(dump(wal)).toEqual(fourth);
        if (cut > fourthEnd) {
          expect(logger.warnings).toHaveLength(1);
          expect(logger.warnings[0]).toContain(`torn write at the end of the write-ahead log: ${file}`);
          expect(logger.warnings[0]).toContain(`at offset ${fourthEnd}`);
        } else {
          expect(logger.warnings).toEqual([]);
        }
        expect(statSync(file).size).toBe(fourthEnd); // the torn bytes are gone from the file
        if (cut % 16 === 0 || cut === full.length - 1) {
          // The log goes on from there, and a restart sees it.
          await wal.save(hs(1, 4), [entry(5, 2)]);
          await wal.close();
          const { wal: again } = await open(dir);
          expect(again.storage.lastIndex()).toBe(5);
          expect(again.storage.term(5)).toBe(2);
          await again.close();
        } else {
          await wal.close();
        }
      }
    }, 30_000); // some 150 recoveries, each with an fsync: slow when the shared disk is busy

    it.each([
      ['zeros', (n: number) => Buffer.alloc(n)],
      ['garbage', (n: number) => Buffer.from(Array.from({ length: n }, (_, k) => (k * 2654435761) >>> 24))],
    ])('treats a final batch followed by %s as torn', async (_name, filler) => {
      const dir = dirs.make();
      const { fourth, fourthEnd, file } = await fiveBatches(dir);
      const full = readFileSync(file);
      writeFileSync(file, Buffer.concat([full.subarray(0, fourthEnd + 40), filler(4096)]));
      const { wal, logger } = await open(dir);
      expect(dump(wal)).toEqual(fourth);
      expect(logger.warnings[0]).toContain('torn write');
    });

    it('reports a flipped bit in a middle record as corruption, naming file and offset, and what to do', async () => {
      const dir = dirs.make();
      await fiveBatches(dir);
      const file = segmentFiles(dir)[0];
      const third = recordsOf(file).filter((r) => r.type === RecordType.Entry)[2];
      const length = third.end - third.offset;
      // Every bit of the header, and one bit in every byte of the payload.
      const bits = [
        ...Array.from({ length: 96 }, (_, b) => third.offset * 8 + b),
        ...Array.from({ length: length - 12 }, (_, k) => (third.offset + 12 + k) * 8 + (k % 8)),
      ];
      for (const bit of bits) {
        const original = flipBit(file, bit);
        const failure = await Wal.open(dir, { logger: new MemoryLogger() }).then(
          async (w) => {
            await w.close();
            return undefined;
          },
          (err: unknown) => err,
        );
        writeFileSync(file, original);
        expect(failure).toBeInstanceOf(WalCorruptionError);
        const err = failure as WalCorruptionError;
        expect({ bit, file: err.file, offset: err.offset }).toEqual({ bit, file, offset: third.offset });
      }
      const err = await Wal.open(dir, { logger: new MemoryLogger() }).then(
        (w) => w.close(),
        (e: unknown) => e,
      );
      expect(err).toBeUndefined(); // the restored file is fine again
    }, 30_000);

    it('says what to do in the corruption message', async () => {
      const dir = dirs.make();
      await fiveBatches(dir);
      const file = segmentFiles(dir)[0];
      const second = recordsOf(file).filter((r) => r.type === RecordType.Entry)[1];
      flipBit(file, (second.offset + 20) * 8);
      const open = Wal.open(dir, { logger: new MemoryLogger() });
      await expect(open).rejects.toThrow(`write-ahead log corrupted: ${file} at byte offset ${second.offset}: checksum mismatch`);
      // The remedy that works: a membership change, not a backup of this one member (it would forget its votes).
      const message = ((await open.catch((e: unknown) => e)) as Error).message;
      expect(message).toContain("Keep the directory for inspection and replace this member: from a running member, remove it (kvctl member remove <this node's NODE_ID>), then start a node with a new NODE_ID, an empty WAL_DIR and JOIN=<a member's URL>");
      expect(message).not.toContain('\n');
      // The lock is released when open fails.
      expect(readdirSync(dir)).not.toContain('LOCK');
    });

    it('reports any damage in a segment that is not the last one, even in its final batch', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir, { segmentSize: 1024 });
      for (let i = 1; i <= 20; i++) await wal.save(hs(1, i - 1), [entry(i, 1)]);
      await wal.close();
      const [first] = segmentFiles(dir);
      const records = recordsOf(first);
      const last = records[records.length - 1];
      flipBit(first, (last.offset + 13) * 8);
      await expect(Wal.open(dir, { logger: new MemoryLogger() })).rejects.toMatchObject({ file: first, offset: last.offset });
      flipBit(first, (last.offset + 13) * 8);
      truncateSync(first, last.offset + 5);
      await expect(Wal.open(dir, { logger: new MemoryLogger() })).rejects.toThrow('only the last segment can end with a torn write');
    });

    it.each([
      ['its entry', 3],
      ['its hard state', 2],
      ['its batch end', 1],
    ])('treats damage in %s, in the final batch, as torn: it cannot be told from a torn write', async (_name, fromEnd) => {
      const dir = dirs.make();
      const { fourth, file } = await fiveBatches(dir);
      const records = recordsOf(file);
      flipBit(file, (records[records.length - fromEnd].offset + 14) * 8);
      const { wal, logger } = await open(dir);
      expect(dump(wal)).toEqual(fourth);
      expect(logger.warnings[0]).toContain('checksum mismatch');
    });

    it('reports damage to the end of a batch that a later batch follows', async () => {
      const dir = dirs.make();
      const { file } = await fiveBatches(dir);
      const records = recordsOf(file);
      const fourthEnd = records[records.length - 4]; // batch 4's BatchEnd; batch 5 follows
      expect(fourthEnd.type).toBe(RecordType.BatchEnd);
      flipBit(file, (fourthEnd.offset + 12) * 8);
      await expect(Wal.open(dir, { logger: new MemoryLogger() })).rejects.toMatchObject({
        name: 'WalCorruptionError',
        offset: fourthEnd.offset,
      });
    });

    it('deletes a last segment whose header batch is torn (crash while rolling over)', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir, { segmentSize: 1024 });
      for (let i = 1; i <= 20; i++) await wal.save(hs(1, i - 1), [entry(i, 1)]);
      const files = segmentFiles(dir);
      const lastFile = files[files.length - 1];
      const lastFirstIndex = parseSegmentFileName(lastFile.slice(dir.length + 1))!.firstIndex;
      await wal.close();
      truncateSync(lastFile, 30);
      const { wal: again, logger } = await open(dir, { segmentSize: 1024 });
      expect(again.storage.lastIndex()).toBe(lastFirstIndex - 1);
      expect(segmentFiles(dir)).toEqual(files.slice(0, -1));
      expect(logger.warnings[0]).toContain('holds no complete batch');
      // It rolls over again from there.
      for (let i = lastFirstIndex; i <= 25; i++) await again.save(undefined, [entry(i, 1)]);
      expect(again.storage.lastIndex()).toBe(25);
    });

    it('reports a missing segment', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir, { segmentSize: 1024 });
      for (let i = 1; i <= 30; i++) await wal.save(hs(1, 0), [entry(i, 1)]);
      await wal.close();
      const files = segmentFiles(dir);
      unlinkSync(files[1]);
      await expect(Wal.open(dir, { logger: new MemoryLogger() })).rejects.toThrow('segment 2 is missing');
    });

    it('reports records that are intact but do not make a log', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir);
      await wal.save(hs(1, 0), entries(1, 3, 1));
      await wal.close();
      const file = segmentFiles(dir)[0];
      const buf = readFileSync(file);
      // Append a well-formed batch whose entry skips index 4.
      const { encodeRecord } = jest.requireActual<typeof import('./record')>('./record');
      const { encodeBatchEnd, entryRecordSize, writeEntryRecord } =
        jest.requireActual<typeof import('./record-payloads')>('./record-payloads');
      const e = entry(5, 1);
      const rec = Buffer.alloc(entryRecordSize(e));
      writeEntryRecord(rec, 0, e);
      writeFileSync(file, Buffer.concat([buf, rec, encodeRecord(RecordType.BatchEnd, encodeBatchEnd(1))]));
      await expect(Wal.open(dir, { logger: new MemoryLogger() })).rejects.toMatchObject({
        name: 'WalCorruptionError',
        offset: buf.length,
        reason: 'entry 5 does not follow the last index 3',
      });
    });
  });

  describe('metadata and configuration', () => {
    it('keeps the metadata and the configuration across restarts', async () => {
      const dir = dirs.make();
      const { wal } = await open(dir);
      await wal.setMeta({ nodeId: 'n1', clusterId: 'c-1', members: ['n1', 'n2', 'n3'] });
      await wal.setConfState({ voters: ['n1', 'n2', 'n3'] });
      expect(wal.meta).toEqual({ nodeId: 'n1', clusterId: 'c-1', members: ['n1', 'n2', 'n3'] });
      await wal.close();
      const { wal: again } = await open(dir);
      expect(again.meta).toEqual({ nodeId: 'n1', clusterId: 'c-1', members: ['n1', 'n2', 'n3'] });
      expect(again.storage.initialState().confState).toEqual({ voters: ['n1', 'n2', 'n3'] });
      expect(again.storage.snapshot().metadata).toEqual({ index: 0, term: 0, confState: { voters: ['n1', 'n2', 'n3'] } });
      expect(readdirSync(dir)).not.toContain('meta.json.tmp');
    });
  });
});

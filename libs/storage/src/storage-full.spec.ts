/**
 * A full disk (docs/storage.md, "When the disk is full"): a write the disk refuses (ENOSPC, EDQUOT, EIO from a
 * write or an open) is undone and rejected with StorageFullError, the storage stays usable and the same save
 * can be made again; a failed fsync stays fatal. Faults are injected at the file I/O seam (fileIo).
 */
import type { HardState, SnapshotMetadata } from '@app/consensus/core';
import type { SaveCallback, StateMachineView } from '@app/consensus/ports';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStorageFull as consensusIsStorageFull } from '../../consensus/src/errors';
import { dumpWal, entries, entry, MemoryLogger, plain, TempDirs } from '../../../test/support/wal-test-helpers';
import { fileIo } from './durable-fs';
import { isStorageFull, StorageFullError, WalFailedError } from './errors';
import { META_FILE } from './meta-file';
import { NodeStorage, openNodeStorage } from './node-storage';
import { encodeSnapshotFile } from './snapshot-file';
import { SNAPSHOT_DIR, snapshotFileName } from './snapshot-store';
import { Wal, WalOptions } from './wal';
import { parseSegmentFileName } from './wal-segment';

const dirs = new TempDirs();
const opened: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  jest.restoreAllMocks();
  for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  dirs.cleanup();
});

async function openWal(dir: string, options: WalOptions = {}): Promise<{ wal: Wal; logger: MemoryLogger }> {
  const logger = new MemoryLogger();
  const wal = await Wal.open(dir, { logger, ...options });
  opened.push(wal);
  return { wal, logger };
}

async function openNode(dir: string, options: WalOptions = {}): Promise<NodeStorage> {
  const node = await openNodeStorage(dir, { logger: new MemoryLogger(), segmentSize: 1024, ...options });
  opened.push(node);
  return node;
}

const hs = (term: number, commit: number): HardState => ({ term, vote: 'n1', commit });
const meta = (index: number, term = 1): SnapshotMetadata => ({ index, term, confState: { voters: ['n1', 'n2', 'n3'] } });

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected, write`), { code });
}

/**
 * The next `times` writev calls fail with `code`, each after a short write of its first `partial` bytes (done
 * for real: what a filling disk does). Later calls go through.
 */
function failWritev(code: string, partial = 0, times = 1): { calls: () => number } {
  const real = fileIo.writev;
  let left = times;
  let shortDone = false;
  let calls = 0;
  jest.spyOn(fileIo, 'writev').mockImplementation(async (fd, buffers, position) => {
    calls++;
    if (left <= 0) return real(fd, buffers, position);
    if (partial > 0 && !shortDone) {
      shortDone = true;
      return real(fd, [Buffer.concat(buffers).subarray(0, partial)], position);
    }
    left--;
    shortDone = false;
    throw errno(code);
  });
  return { calls: () => calls };
}

/** Every segment file's name and bytes. */
function segments(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).filter((n) => parseSegmentFileName(n)).sort()) {
    out[name] = readFileSync(join(dir, name)).toString('hex');
  }
  return out;
}

function call(fn: (done: SaveCallback) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

function view(chunks: Buffer[]): StateMachineView {
  return {
    *chunks() {
      yield* chunks;
    },
    release() {},
  };
}

/** Checks a rejection is a StorageFullError as the node loop sees it (the consensus library's isStorageFull). */
async function expectRefused(promise: Promise<unknown>, code = 'ENOSPC'): Promise<StorageFullError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(consensusIsStorageFull(err)).toBe(true);
  expect((err as StorageFullError).code).toBe(code);
  return err as StorageFullError;
}

describe('Wal: a write the disk refuses', () => {
  it.each([
    ['ENOSPC, nothing written (dsync)', 'ENOSPC', 0, 'dsync'],
    ['ENOSPC after a short write (dsync)', 'ENOSPC', 150, 'dsync'],
    ['EDQUOT after a short write (fdatasync)', 'EDQUOT', 150, 'fdatasync'],
    ['EIO from a plain write (fdatasync)', 'EIO', 40, 'fdatasync'],
  ] as const)('%s: rejects it and the saves queued behind, keeps nothing, and the retry is durable', async (_n, code, partial, syncMethod) => {
    const dir = dirs.make();
    const full: boolean[] = [];
    const { wal, logger } = await openWal(dir, { syncMethod, onStorageFull: (f) => full.push(f) });
    await wal.save(hs(1, 2), entries(1, 3, 1));
    const before = dumpWal(wal);
    const bytes = segments(dir);

    failWritev(code, partial);
    const refused = wal.save(hs(1, 3), entries(4, 6, 1));
    const queued = wal.save(hs(2, 5), entries(7, 8, 2));
    await expectRefused(refused, code);
    await expectRefused(queued, code);
    // Never visible, and the file is exactly as before the batch: the short write was cut off.
    expect(dumpWal(wal)).toEqual(before);
    expect(segments(dir)).toEqual(bytes);
    expect(wal.refusedWrites).toBe(1);
    expect(logger.errors).toEqual([]);
    expect(logger.warnings.join('\n')).toContain('the disk refused the write');

    // The same saves again: checked against the durable log (entry 4 follows 3 again), and durable.
    await wal.save(hs(1, 3), entries(4, 6, 1));
    await wal.save(hs(2, 5), entries(7, 8, 2));
    expect(full).toEqual([true, false]);
    const after = dumpWal(wal);
    expect(plain(wal.storage.entries(1, 9))).toEqual(plain([...entries(1, 6, 1), ...entries(7, 8, 2)]));
    await wal.close();
    const { wal: again, logger: reopened } = await openWal(dir);
    expect(dumpWal(again)).toEqual(after);
    expect(reopened.warnings).toEqual([]); // no torn tail
  });

  it('a refused batch is undone on disk: a reopen finds exactly the durable log, no torn tail', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    await wal.save(hs(1, 2), entries(1, 3, 1));
    const before = dumpWal(wal);
    failWritev('ENOSPC', 200);
    await expectRefused(wal.save(hs(1, 3), entries(4, 9, 1)));
    await wal.close();
    const { wal: again, logger } = await openWal(dir);
    expect(dumpWal(again)).toEqual(before);
    expect(logger.warnings).toEqual([]);
  });

  it('the same save may be refused many times, then succeeds like a first attempt', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    await wal.save(hs(1, 1), entries(1, 2, 1));
    const bytes = segments(dir);
    failWritev('ENOSPC', 30, 3);
    for (let k = 0; k < 3; k++) {
      await expectRefused(wal.save(hs(1, 2), entries(3, 5, 1)));
      expect(segments(dir)).toEqual(bytes);
      expect(wal.storage.lastIndex()).toBe(2);
    }
    await wal.save(hs(1, 2), entries(3, 5, 1));
    expect(wal.refusedWrites).toBe(3);
    const after = dumpWal(wal);
    await wal.close();
    const { wal: again } = await openWal(dir);
    expect(dumpWal(again)).toEqual(after);
    expect(plain(again.storage.entries(1, 6))).toEqual(plain(entries(1, 5, 1)));
  });

  it('rejects every write queued while the refused batch was in flight, and the log they were checked against is undone', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    await wal.save(hs(1, 1), entries(1, 2, 1));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const real = fileIo.writev;
    let calls = 0;
    jest.spyOn(fileIo, 'writev').mockImplementation(async (fd, buffers, position) => {
      if (calls++ > 0) return real(fd, buffers, position);
      await gate;
      throw errno('ENOSPC');
    });
    const first = wal.save(hs(1, 2), [entry(3, 1)]);
    await new Promise((r) => setTimeout(r, 10)); // the first batch is in its write
    const behind = [wal.save(undefined, [entry(4, 1)]), wal.setConfState({ voters: ['n1'] }), wal.save(hs(1, 4), [entry(5, 1)])];
    // While in flight, the queued saves were checked against the log with 3 and 4 in it...
    await expect(wal.save(undefined, [entry(9, 1)])).rejects.toThrow('the log holds [1, 5]');
    release();
    await expectRefused(first);
    for (const p of behind) await expectRefused(p);
    expect(wal.storage.lastIndex()).toBe(2);
    expect(wal.storage.initialState().confState).toEqual({ voters: [] });
    // ...and now against the durable log again: 4 cannot follow 2, 3 can.
    await expect(wal.save(undefined, [entry(4, 1)])).rejects.toThrow('entries start at 4; the log holds [1, 2]');
    await wal.save(hs(1, 2), [entry(3, 1)]);
    expect(wal.storage.lastIndex()).toBe(3);
    expect(calls).toBe(2);
  });

  it('a refused save that truncates a suffix keeps the old suffix; the retry truncates it', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    await wal.save(hs(1, 2), entries(1, 6, 1));
    failWritev('ENOSPC', 10);
    await expectRefused(wal.save(hs(2, 2), entries(4, 5, 2)));
    expect(plain(wal.storage.entries(1, 7))).toEqual(plain(entries(1, 6, 1)));
    await wal.save(hs(2, 2), entries(4, 5, 2));
    const expected = plain([...entries(1, 3, 1), ...entries(4, 5, 2)]);
    expect(plain(wal.storage.entries(1, 6))).toEqual(expected);
    await wal.close();
    const { wal: again } = await openWal(dir);
    expect(again.storage.lastIndex()).toBe(5);
    expect(plain(again.storage.entries(1, 6))).toEqual(expected);
  });

  describe('on roll-over', () => {
    /** A Wal whose next save of entries 31..40 rolls over to a new segment. */
    async function nearlyFull(dir: string): Promise<Wal> {
      const { wal } = await openWal(dir, { segmentSize: 2048 });
      for (let i = 1; i <= 30; i += 5) await wal.save(hs(1, i), entries(i, i + 4, 1));
      return wal;
    }

    it.each([
      ['creating the new segment file', 'open'],
      ['writing its first batch (short write, then ENOSPC)', 'writev'],
    ] as const)('refused while %s: no new segment is left, the roll is undone, the retry rolls', async (_n, where) => {
      const dir = dirs.make();
      const wal = await nearlyFull(dir);
      const bytes = segments(dir);
      const before = dumpWal(wal);
      if (where === 'open') {
        const real = fileIo.open;
        jest.spyOn(fileIo, 'open').mockImplementation(async (path, flags, mode) => {
          if (path.endsWith('.wal')) throw errno('ENOSPC');
          return real(path, flags, mode);
        });
      } else {
        failWritev('ENOSPC', 100);
      }
      await expectRefused(wal.save(hs(1, 31), entries(31, 40, 1)));
      expect(segments(dir)).toEqual(bytes);
      expect(dumpWal(wal)).toEqual(before);
      jest.restoreAllMocks();

      await wal.save(hs(1, 31), entries(31, 40, 1));
      const rolled = Object.keys(segments(dir));
      expect(rolled).toHaveLength(Object.keys(bytes).length + 1);
      // Every older segment untouched, and the new one is the next in sequence (the refused one left no gap).
      for (const [name, hex] of Object.entries(bytes)) expect(segments(dir)[name]).toBe(hex);
      expect(parseSegmentFileName(rolled[rolled.length - 1])?.seq).toBe(rolled.length);
      await wal.save(hs(1, 40), entries(41, 42, 1));
      const after = dumpWal(wal);
      await wal.close();
      const { wal: again, logger } = await openWal(dir, { segmentSize: 2048 });
      expect(dumpWal(again)).toEqual(after);
      expect(logger.warnings).toEqual([]);
    });
  });

  it('a refused rebase (an overwrite below the active segment, which starts a new segment there) is undone too', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir, { segmentSize: 1024 });
    for (let i = 1; i <= 30; i++) await wal.save(hs(1, Math.min(i, 2)), [entry(i, 1)]);
    const bytes = segments(dir);
    const before = dumpWal(wal);
    failWritev('ENOSPC', 64);
    await expectRefused(wal.save({ term: 3, vote: 'n3', commit: 2 }, entries(3, 4, 3)));
    expect(segments(dir)).toEqual(bytes);
    expect(dumpWal(wal)).toEqual(before);
    await wal.save({ term: 3, vote: 'n3', commit: 2 }, entries(3, 4, 3));
    expect(Object.keys(segments(dir))).toHaveLength(Object.keys(bytes).length + 1);
    expect(wal.storage.lastIndex()).toBe(4);
    const after = dumpWal(wal);
    await wal.close();
    const { wal: again, logger } = await openWal(dir, { segmentSize: 1024 });
    expect(dumpWal(again)).toEqual(after);
    expect(logger.warnings).toEqual([]);
  });

  describe('stays fatal', () => {
    it.each([
      ['a failed fdatasync', 'fdatasync'],
      ['EIO from an O_DSYNC write (it may be the flush that failed)', 'dsync'],
    ] as const)('%s: WalFailedError for that save and every later one', async (_n, syncMethod) => {
      const { wal } = await openWal(dirs.make(), { syncMethod });
      await wal.save(hs(1, 0), [entry(1, 1)]);
      if (syncMethod === 'fdatasync') jest.spyOn(fileIo, 'fdatasync').mockRejectedValueOnce(errno('EIO'));
      else failWritev('EIO');
      const failed = wal.save(hs(1, 1), [entry(2, 1)]);
      await expect(failed).rejects.toThrow(WalFailedError);
      await expect(failed.catch((e: unknown) => isStorageFull(e))).resolves.toBe(false);
      await expect(wal.save(hs(1, 1), [entry(2, 1)])).rejects.toThrow(WalFailedError);
      expect(wal.refusedWrites).toBe(0);
    });

    it('a refused write whose cut-back fails: WalFailedError (the end of the file is unknown)', async () => {
      const { wal } = await openWal(dirs.make());
      await wal.save(hs(1, 0), [entry(1, 1)]);
      failWritev('ENOSPC', 20);
      jest.spyOn(fileIo, 'ftruncate').mockRejectedValueOnce(errno('EIO'));
      await expect(wal.save(hs(1, 1), [entry(2, 1)])).rejects.toThrow(WalFailedError);
      await expect(wal.save(hs(1, 1), [entry(2, 1)])).rejects.toThrow(WalFailedError);
    });
  });

  it('compaction still works after writes were refused (it only deletes files)', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir, { segmentSize: 1024 });
    for (let i = 1; i <= 40; i += 4) await wal.save(hs(1, i + 3), entries(i, i + 3, 1));
    await wal.saveSnapshot(meta(30));
    const files = Object.keys(segments(dir)).length;
    failWritev('ENOSPC', 0, 100);
    await expectRefused(wal.save(hs(1, 41), [entry(41, 1)]));
    expect(await wal.compact(30)).toBeGreaterThan(0);
    expect(Object.keys(segments(dir)).length).toBeLessThan(files);
    jest.restoreAllMocks();
    await wal.save(hs(1, 41), [entry(41, 1)]);
    const after = dumpWal(wal);
    await wal.close();
    const { wal: again } = await openWal(dir, { segmentSize: 1024 });
    expect(dumpWal(again)).toEqual(after);
  });

  it('setMeta refused: the temporary file is removed, the old record stays, and it may be retried', async () => {
    const dir = dirs.make();
    const { wal } = await openWal(dir);
    await wal.setMeta({ node: 'a' });
    const real = fileIo.write;
    jest.spyOn(fileIo, 'write').mockImplementationOnce(async (fd, buf, offset) => {
      await real(fd, buf, offset, 3, 0); // a few bytes, then the disk is full
      throw errno('ENOSPC');
    });
    const err = await expectRefused(wal.setMeta({ node: 'b' }));
    expect(err.message).toContain('the disk is full');
    expect(readdirSync(dir).filter((n) => n.startsWith(META_FILE))).toEqual([META_FILE]);
    expect(wal.meta).toEqual({ node: 'a' });
    expect(wal.refusedWrites).toBe(1);
    await wal.setMeta({ node: 'b' });
    await wal.close();
    const { wal: again } = await openWal(dir);
    expect(again.meta).toEqual({ node: 'b' });
  });
});

describe('NodeStorage: snapshots on a full disk', () => {
  async function nodeWithLog(last: number, dir = dirs.make()): Promise<NodeStorage> {
    const node = await openNode(dir);
    for (let i = 1; i <= last; i += 10) await call((done) => node.save(hs(1, i + 9), entries(i, i + 9, 1, 60), done));
    return node;
  }

  const snapDir = (node: NodeStorage): string[] => readdirSync(join(node.wal.dir, SNAPSHOT_DIR)).sort();

  it('createSnapshot refused while writing the file: the temporary file is removed, nothing changed, the retry works', async () => {
    const node = await nodeWithLog(30);
    const real = fileIo.write;
    jest.spyOn(fileIo, 'write').mockImplementationOnce(async (fd, buf, offset) => {
      await real(fd, buf, offset, 10, 0);
      throw errno('ENOSPC');
    });
    const chunks = [Buffer.from('kv@20'), Buffer.alloc(3000, 7)];
    await expectRefused(call((done) => node.createSnapshot(meta(20), view(chunks), done)));
    expect(snapDir(node)).toEqual([]);
    expect(node.storage.snapshot().metadata.index).toBe(0);
    expect(node.wal.refusedWrites).toBe(1);
    await call((done) => node.createSnapshot(meta(20), view(chunks), done));
    expect(snapDir(node)).toEqual([snapshotFileName(20, 1)]);
    expect(node.storage.snapshot().metadata).toEqual(meta(20));
  });

  it('createSnapshot refused by the WAL record: the snapshot file is removed, nothing changed', async () => {
    const node = await nodeWithLog(30);
    failWritev('ENOSPC');
    await expectRefused(call((done) => node.createSnapshot(meta(20), view([Buffer.from('x')]), done)));
    expect(snapDir(node)).toEqual([]);
    expect(node.storage.snapshot().metadata.index).toBe(0);
    expect(node.wal.snapshotMetadata).toBeUndefined();
  });

  it('a received snapshot file refused mid-transfer: its temporary file is removed and the transfer fails', async () => {
    const node = await nodeWithLog(10);
    const incoming = node.snapshotFiles.receive();
    const pieces: Buffer[] = [];
    for await (const b of encodeSnapshotFile(meta(50), [Buffer.alloc(2000, 1), Buffer.alloc(2000, 2)])) pieces.push(b);
    await incoming.write(pieces[0]);
    jest.spyOn(fileIo, 'write').mockRejectedValueOnce(errno('EDQUOT'));
    await expectRefused(incoming.write(pieces[1]), 'EDQUOT');
    await new Promise((r) => setTimeout(r, 20)); // the aborted transfer's cleanup runs in the background
    expect(snapDir(node)).toEqual([]);
    await expect(incoming.finish()).rejects.toThrow('aborted');
  });

  it('installSnapshot refused by the WAL: the received file is back, nothing changed, and the install may be retried', async () => {
    const leader = await nodeWithLog(100);
    await call((done) => leader.createSnapshot(meta(90), view([Buffer.from('kv@90')]), done));
    const node = await nodeWithLog(5);
    const incoming = node.snapshotFiles.receive();
    for await (const piece of leader.snapshotFiles.openForSending(90, 1)!.stream) await incoming.write(piece);
    const received = await incoming.finish();
    const before = dumpWal(node.wal);
    const files = snapDir(node);
    expect(files).toHaveLength(1);

    failWritev('ENOSPC', 0, 2);
    for (let k = 0; k < 2; k++) {
      await expectRefused(call((done) => node.installSnapshot({ metadata: received, data: new Uint8Array(0) }, done)));
      expect(snapDir(node)).toEqual(files);
      expect(node.snapshotIndex).toBe(0);
      expect(dumpWal(node.wal)).toEqual(before);
    }
    await call((done) => node.installSnapshot({ metadata: received, data: new Uint8Array(0) }, done));
    expect(snapDir(node)).toEqual([snapshotFileName(90, 1)]);
    expect(node.storage.firstIndex()).toBe(91);
    const dir = node.wal.dir;
    await node.close();
    const again = await openNode(dir);
    expect(again.storage.snapshot().metadata).toEqual(meta(90));
    expect(again.storage.firstIndex()).toBe(91);
  });
});

/**
 * The real thing: a 1 MiB tmpfs filled up. Mounting needs root (and the right to mount); without it, the same
 * steps run against the injected fault (a short write, then ENOSPC, for as long as the "disk" is full), so the
 * test always asserts.
 */
describe('a real full disk (tmpfs of 1 MiB when root can mount one, else the injected fault)', () => {
  let dir = '';
  let mounted = false;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'wal-full-'));
    if (process.getuid?.() !== 0) return;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
      mounted = true;
    } catch {
      mounted = false; // root without the right to mount (a container): the injected fault stands in
    }
  });

  afterAll(() => {
    if (mounted) execFileSync('umount', [dir], { stdio: 'pipe' });
    rmSync(dir, { recursive: true, force: true });
  });

  /** Fills the disk (a ballast file written until ENOSPC); returns how to free it. */
  function fill(): () => void {
    if (!mounted) {
      const real = fileIo.writev;
      let full = true;
      jest.spyOn(fileIo, 'writev').mockImplementation(async (fd, buffers, position) => {
        if (!full) return real(fd, buffers, position);
        const bytes = Buffer.concat(buffers);
        if (bytes.length > 1000) return real(fd, [bytes.subarray(0, 1000)], position);
        throw errno('ENOSPC');
      });
      return () => {
        full = false;
      };
    }
    const ballast = join(dir, 'ballast');
    const fd = openSync(ballast, 'w');
    const page = Buffer.alloc(4096, 0xee);
    try {
      for (;;) writeSync(fd, page);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
    return () => unlinkSync(ballast);
  }

  it('the save is refused while the disk is full, succeeds once space is freed, and a reopen sees everything', async () => {
    const walDir = join(dir, 'wal');
    const { wal } = await openWal(walDir, { segmentSize: 256 * 1024 });
    await wal.save(hs(1, 5), entries(1, 10, 1));
    const free = fill();
    // Larger than a page: the last page of the segment has room for a few bytes only (a short write).
    const err = await expectRefused(wal.save(hs(1, 20), entries(11, 110, 1)));
    // The kernel's own error when mounted, not the stand-in.
    expect(err.message).toContain(mounted ? 'no space left on device' : 'injected');
    await expectRefused(wal.save(hs(1, 20), entries(11, 110, 1)));
    expect(wal.storage.lastIndex()).toBe(10);
    free();
    await wal.save(hs(1, 20), entries(11, 110, 1));
    await wal.save(hs(2, 110), entries(111, 120, 2));
    const after = dumpWal(wal);
    await wal.close();
    const { wal: again, logger } = await openWal(walDir, { segmentSize: 256 * 1024 });
    expect(dumpWal(again)).toEqual(after);
    expect(plain(again.storage.entries(1, 121))).toEqual(plain([...entries(1, 110, 1), ...entries(111, 120, 2)]));
    expect(logger.warnings).toEqual([]);
    await again.close();
  });
});

import type { HardState, SnapshotMetadata } from '@app/consensus/core';
import type { SaveCallback, StateMachineView } from '@app/consensus/ports';
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { entries, MemoryLogger, plain, TempDirs } from '../../../test/support/wal-test-helpers';
import { SnapshotCorruptionError, SnapshotUnusableError } from './errors';
import { NodeStorage, NodeStorageOptions, openNodeStorage, restoreDataDir } from './node-storage';
import { SNAPSHOT_DIR, snapshotFileName, SnapshotStore } from './snapshot-store';
import { parseSegmentFileName } from './wal-segment';

const dirs = new TempDirs();
const opened: NodeStorage[] = [];

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  dirs.cleanup();
});

async function open(dir: string, options: NodeStorageOptions = {}): Promise<{ node: NodeStorage; logger: MemoryLogger }> {
  const logger = new MemoryLogger();
  const node = await openNodeStorage(dir, { logger, segmentSize: 1024, ...options });
  opened.push(node);
  return { node, logger };
}

async function reopen(node: NodeStorage): Promise<{ node: NodeStorage; logger: MemoryLogger }> {
  await node.close();
  return open(node.wal.dir);
}

/** Resolves or rejects as the port's callback is called. */
function call(fn: (done: SaveCallback) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

const hs = (term: number, commit: number): HardState => ({ term, vote: 'n1', commit });
const meta = (index: number, term = 1): SnapshotMetadata => ({ index, term, confState: { voters: ['n1', 'n2', 'n3'] } });
/** The state machine's content at `index`: a few chunks, one of them empty, derived from the index. */
const stateAt = (index: number): Buffer[] => [Buffer.from(`kv@${index}`), Buffer.alloc(0), Buffer.alloc(500 + index, index & 0xff)];

function view(chunks: Buffer[]): StateMachineView & { pulled: number } {
  const v = {
    pulled: 0,
    *chunks(): Generator<Uint8Array> {
      for (const c of chunks) {
        v.pulled++;
        yield c;
      }
    },
    release(): void {},
  };
  return v;
}

async function content(node: NodeStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const c of node.snapshotContent()) out.push(Buffer.from(c).toString('hex'));
  return out;
}

const hex = (chunks: Buffer[]): string[] => chunks.map((c) => c.toString('hex'));

function snapFiles(dir: string): string[] {
  return readdirSync(join(dir, SNAPSHOT_DIR)).sort();
}

function walBytes(dir: string): number {
  return readdirSync(dir)
    .filter((n) => parseSegmentFileName(n))
    .reduce((n, name) => n + statSync(join(dir, name)).size, 0);
}

/** A node with entries 1..`last` of term 1, all committed. */
async function nodeWithLog(last: number, dir = dirs.make()): Promise<{ node: NodeStorage; logger: MemoryLogger }> {
  const opened = await open(dir);
  for (let i = 1; i <= last; i += 10) {
    const to = Math.min(last, i + 9);
    await call((done) => opened.node.save(hs(1, to), entries(i, to, 1, 60), done));
  }
  return opened;
}

async function takeSnapshot(node: NodeStorage, index: number, term = 1): Promise<void> {
  await call((done) => node.createSnapshot(meta(index, term), view(stateAt(index)), done));
}

describe('NodeStorage (the RaftStorage port over the WAL and the snapshot files)', () => {
  it('createSnapshot writes the file, records it with the log, and serves it; the newest two are kept', async () => {
    const { node } = await nodeWithLog(60);
    expect(node.storage.snapshot().metadata.index).toBe(0);
    expect(() => node.snapshotContent()).toThrow('no snapshot');
    await takeSnapshot(node, 20);
    expect(node.storage.snapshot()).toEqual({ metadata: meta(20), data: new Uint8Array(0) });
    expect(node.wal.snapshotMetadata).toEqual(meta(20));
    expect(await content(node)).toEqual(hex(stateAt(20)));
    const path = join(node.wal.dir, SNAPSHOT_DIR, snapshotFileName(20, 1));
    expect(node.latestSnapshot).toEqual({ index: 20, term: 1, size: statSync(path).size, path });
    await takeSnapshot(node, 40);
    await takeSnapshot(node, 55);
    expect(snapFiles(node.wal.dir)).toEqual([snapshotFileName(40, 1), snapshotFileName(55, 1)]);
    expect(node.snapshotIndex).toBe(55);
    const { node: again } = await reopen(node);
    expect(again.storage.snapshot().metadata).toEqual(meta(55));
    expect(await content(again)).toEqual(hex(stateAt(55)));
  });

  it('createSnapshot fails without changing anything for an entry the log does not hold, or an older snapshot', async () => {
    const { node } = await nodeWithLog(30);
    await expect(takeSnapshot(node, 40)).rejects.toThrow(/does not hold entry 40/);
    await expect(takeSnapshot(node, 20, 2)).rejects.toThrow(/does not hold entry 20 with term 2/);
    await takeSnapshot(node, 20);
    await expect(takeSnapshot(node, 10)).rejects.toThrow(/not newer/);
    expect(snapFiles(node.wal.dir)).toEqual([snapshotFileName(20, 1)]);
    // The same snapshot again is already there.
    await takeSnapshot(node, 20);
  });

  it('compact releases whole segments up to the snapshot; the disk space drops and a restart recovers', async () => {
    const { node } = await nodeWithLog(200);
    await takeSnapshot(node, 30);
    await takeSnapshot(node, 150);
    const before = walBytes(node.wal.dir);
    node.compact(1000); // clamped to the snapshot
    await node.wal.compact(0); // waits for the compaction queued before it
    expect(walBytes(node.wal.dir)).toBeLessThan(before / 2);
    const first = node.storage.firstIndex();
    expect(first).toBeGreaterThan(100);
    expect(first).toBeLessThanOrEqual(151);
    const { node: again, logger } = await reopen(node);
    expect(again.storage.firstIndex()).toBe(first);
    expect(again.storage.snapshot().metadata).toEqual(meta(150));
    expect(plain(again.storage.entries(first, 201))).toEqual(plain(entries(first, 200, 1, 60)));
    expect(snapFiles(again.wal.dir)).toEqual([snapshotFileName(30, 1), snapshotFileName(150, 1)]);
    expect(logger.warnings).toEqual([]);
  });

  it('installs a snapshot received from the leader: the log restarts after it, and saves made right after land after it', async () => {
    const { node: leader } = await nodeWithLog(100);
    await takeSnapshot(leader, 90, 1);
    const { node } = await nodeWithLog(5);
    const incoming = node.snapshotFiles.receive();
    const sending = leader.snapshotFiles.openForSending(90, 1)!;
    for await (const piece of sending.stream) await incoming.write(piece);
    const received = await incoming.finish();
    expect(received).toEqual(meta(90));

    const installed = call((done) => node.installSnapshot({ metadata: received, data: new Uint8Array(0) }, done));
    const saved = call((done) => node.save(hs(2, 91), entries(91, 92, 2, 60), done));
    await Promise.all([installed, saved]);
    const check = (n: NodeStorage): void => {
      expect(n.storage.snapshot().metadata).toEqual(meta(90));
      expect(n.storage.firstIndex()).toBe(91);
      expect(n.storage.lastIndex()).toBe(92);
      expect(n.storage.term(90)).toBe(1);
      expect(n.storage.initialState()).toEqual({ hardState: hs(2, 91), confState: meta(90).confState });
    };
    check(node);
    expect(await content(node)).toEqual(hex(stateAt(90)));
    expect(snapFiles(node.wal.dir)).toEqual([snapshotFileName(90, 1)]);
    const { node: again } = await reopen(node);
    check(again);
    expect(await content(again)).toEqual(hex(stateAt(90)));
  });

  it('a snapshot being written when the leader snapshot is installed is refused, and leaves nothing behind', async () => {
    const { node: leader } = await nodeWithLog(100);
    await takeSnapshot(leader, 90, 1);
    const { node } = await nodeWithLog(20);
    const incoming = node.snapshotFiles.receive();
    for await (const piece of leader.snapshotFiles.openForSending(90, 1)!.stream) await incoming.write(piece);
    const received = await incoming.finish();
    // Many chunks: the write yields between them, and the install lands meanwhile.
    const slow = view(Array.from({ length: 200 }, (_, k) => Buffer.alloc(4096, k)));
    const taking = call((done) => node.createSnapshot(meta(10), slow, done));
    await call((done) => node.installSnapshot({ metadata: received, data: new Uint8Array(0) }, done));
    await expect(taking).rejects.toThrow(/superseded while it was written|older than the snapshot \(90, term 1\) already recorded/);
    expect(node.storage.snapshot().metadata).toEqual(meta(90));
    expect(snapFiles(node.wal.dir)).toEqual([snapshotFileName(90, 1)]);
    const { node: again } = await reopen(node);
    expect(again.storage.snapshot().metadata).toEqual(meta(90));
    expect(again.storage.firstIndex()).toBe(91);
  });

  it('installSnapshot fails when no such file was received', async () => {
    const { node } = await nodeWithLog(5);
    await expect(call((done) => node.installSnapshot({ metadata: meta(90), data: new Uint8Array(0) }, done))).rejects.toThrow(
      /no received snapshot file/,
    );
    expect(node.storage.lastIndex()).toBe(5);
  });
});

describe('openNodeStorage: recovery at each crash point', () => {
  it('a temporary snapshot file left by a crash while writing is removed; the previous snapshot stays in use', async () => {
    const { node } = await nodeWithLog(40);
    await takeSnapshot(node, 20);
    await node.close();
    writeFileSync(join(node.wal.dir, SNAPSHOT_DIR, `${snapshotFileName(30, 1)}.0a1b2c3d.tmp`), 'half of it');
    const { node: again } = await open(node.wal.dir);
    expect(snapFiles(again.wal.dir)).toEqual([snapshotFileName(20, 1)]);
    expect(again.storage.snapshot().metadata).toEqual(meta(20));
  });

  it('a snapshot taken here, renamed into place but not yet recorded, is used: the log matches it (and it is recorded now)', async () => {
    const { node } = await nodeWithLog(40);
    await node.close();
    // The state a crash leaves right after the file's rename and directory fsync.
    const store = await SnapshotStore.open(node.wal.dir, new MemoryLogger());
    await store.write(meta(30), stateAt(30));
    const { node: again } = await open(node.wal.dir);
    expect(again.storage.snapshot().metadata).toEqual(meta(30));
    expect(await content(again)).toEqual(hex(stateAt(30)));
    expect(again.wal.snapshotMetadata).toEqual(meta(30));
    expect(again.storage.lastIndex()).toBe(40);
  });

  it('an installed snapshot renamed into place before its WAL record is ignored and removed, with a warning', async () => {
    const { node } = await nodeWithLog(40);
    await takeSnapshot(node, 10);
    await node.close();
    const store = await SnapshotStore.open(node.wal.dir, new MemoryLogger());
    await store.write(meta(500, 4), stateAt(500));
    const { node: again, logger } = await open(node.wal.dir);
    expect(again.storage.snapshot().metadata).toEqual(meta(10));
    expect(again.storage.lastIndex()).toBe(40);
    expect(snapFiles(again.wal.dir)).toEqual([snapshotFileName(10, 1)]);
    expect(logger.warnings.join('\n')).toMatch(/00000000000001f4-0000000000000004\.snap is neither recorded .* ignored and removed/);
  });

  it('recorded in the WAL but older files not yet pruned and old segments only partly deleted: recovers, nothing lost', async () => {
    const { node } = await nodeWithLog(200);
    await takeSnapshot(node, 50);
    await takeSnapshot(node, 100);
    await node.close();
    // The crash: the snapshot at 150 written and recorded, nothing pruned or compacted yet.
    const { node: n2 } = await open(node.wal.dir);
    const store = await SnapshotStore.open(node.wal.dir, new MemoryLogger());
    await store.write(meta(150), stateAt(150));
    await n2.wal.saveSnapshot(meta(150));
    const walDir = n2.wal.dir;
    const segs = readdirSync(walDir).filter((n) => parseSegmentFileName(n)).sort();
    await n2.close();
    // ... and the compaction that follows cut short after deleting the two oldest segments.
    for (const name of segs.slice(0, 2)) unlinkSync(join(walDir, name));
    const { node: again } = await open(walDir);
    expect(again.storage.snapshot().metadata).toEqual(meta(150));
    expect(snapFiles(walDir)).toEqual([snapshotFileName(100, 1), snapshotFileName(150, 1)]);
    const first = again.storage.firstIndex();
    expect(first).toBeLessThanOrEqual(151);
    expect(plain(again.storage.entries(first, 201))).toEqual(plain(entries(first, 200, 1, 60)));
    expect(await content(again)).toEqual(hex(stateAt(150)));
  });
});

describe('openNodeStorage: damaged or missing snapshots', () => {
  function damage(path: string): void {
    const b = readFileSync(path);
    b[b.length - 30] ^= 0x40;
    writeFileSync(path, b);
  }

  it('falls back to the older snapshot when the log still holds every entry up to the newer one', async () => {
    const { node } = await nodeWithLog(60);
    await takeSnapshot(node, 20);
    await takeSnapshot(node, 40);
    await node.close();
    const newest = join(node.wal.dir, SNAPSHOT_DIR, snapshotFileName(40, 1));
    damage(newest);
    const { node: again, logger } = await open(node.wal.dir);
    expect(again.storage.snapshot().metadata).toEqual(meta(20));
    expect(await content(again)).toEqual(hex(stateAt(20)));
    expect(plain(again.storage.entries(21, 61))).toEqual(plain(entries(21, 60, 1, 60)));
    expect(logger.warnings.join('\n')).toContain(newest);
    expect(logger.warnings.join('\n')).toMatch(/replaying entries 21 to 40 from the log/);
    expect(snapFiles(again.wal.dir)).toEqual([snapshotFileName(20, 1), `${snapshotFileName(40, 1)}.damaged`]);
    // Compaction stays behind the snapshot actually in use.
    again.compact(40);
    await again.wal.compact(0);
    expect(again.storage.firstIndex()).toBeLessThanOrEqual(21);
  });

  it('refuses to start when the log no longer covers the gap, naming the damaged file and what to do', async () => {
    const { node } = await nodeWithLog(200);
    await takeSnapshot(node, 20);
    await takeSnapshot(node, 150);
    node.compact(150);
    await node.wal.compact(0);
    expect(node.storage.firstIndex()).toBeGreaterThan(21);
    await node.close();
    const newest = join(node.wal.dir, SNAPSHOT_DIR, snapshotFileName(150, 1));
    damage(newest);
    const err = await open(node.wal.dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotUnusableError);
    expect(err).toMatchObject({ file: newest });
    expect((err as Error).message).toMatch(/is damaged .*The node will not start: replace this member: from a running member, remove it \(kvctl member remove .*JOIN=/);
    expect((err as Error).message).not.toContain('\n');
    // The lock was released: a second attempt reports the same.
    await expect(open(node.wal.dir)).rejects.toBeInstanceOf(SnapshotUnusableError);
  });

  it('keeps an older snapshot whose WAL record compaction took away, even when it cannot be used', async () => {
    const { node } = await nodeWithLog(200);
    await takeSnapshot(node, 30);
    await takeSnapshot(node, 200);
    // A large entry rolls over to a segment that starts at 201: every segment before it can go.
    await call((done) => node.save(hs(1, 201), entries(201, 201, 1, 1100), done));
    node.compact(200);
    await node.wal.compact(0);
    expect(node.storage.firstIndex()).toBe(201);
    await node.close();
    damage(join(node.wal.dir, SNAPSHOT_DIR, snapshotFileName(200, 1)));
    const logger = new MemoryLogger();
    await expect(openNodeStorage(node.wal.dir, { logger })).rejects.toBeInstanceOf(SnapshotUnusableError);
    expect(snapFiles(node.wal.dir)).toEqual([snapshotFileName(30, 1), `${snapshotFileName(200, 1)}.damaged`]);
    expect(logger.warnings.join('\n')).not.toMatch(/being installed/);
  });

  it('refuses a log that starts after 1 when its snapshot file is missing', async () => {
    const { node } = await nodeWithLog(200);
    await takeSnapshot(node, 150);
    node.compact(150);
    await node.wal.compact(0);
    await node.close();
    const path = join(node.wal.dir, SNAPSHOT_DIR, snapshotFileName(150, 1));
    unlinkSync(path);
    await expect(open(node.wal.dir)).rejects.toThrow(`snapshot file ${path} is missing`);
  });

  it('with every snapshot gone but the log whole from entry 1, starts from the log alone', async () => {
    const { node } = await nodeWithLog(30);
    await takeSnapshot(node, 20);
    await node.close();
    unlinkSync(join(node.wal.dir, SNAPSHOT_DIR, snapshotFileName(20, 1)));
    const { node: again, logger } = await open(node.wal.dir);
    expect(again.storage.snapshot().metadata.index).toBe(0);
    expect(again.storage.firstIndex()).toBe(1);
    expect(logger.warnings.join('\n')).toMatch(/is missing; starting from the start of the log/);
  });
});

describe('restoreDataDir', () => {
  it('builds a directory whose node starts from the snapshot with an empty log after it', async () => {
    const { node } = await nodeWithLog(60);
    await takeSnapshot(node, 50);
    const backup = node.latestSnapshot!.path;
    const target = join(dirs.make(), 'restored');
    const summary = await restoreDataDir(backup, target, { logger: new MemoryLogger() });
    expect(summary).toMatchObject(meta(50));
    expect(readdirSync(target)).not.toContain('meta.json');
    const { node: restored } = await open(target);
    expect(restored.storage.snapshot().metadata).toEqual(meta(50));
    expect(restored.storage.firstIndex()).toBe(51);
    expect(restored.storage.lastIndex()).toBe(50);
    expect(restored.storage.term(50)).toBe(1);
    // No configuration recorded: the new cluster's members are those its nodes are started with.
    expect(restored.storage.initialState()).toEqual({ hardState: { term: 1, vote: '', commit: 50 }, confState: { voters: [] } });
    expect(restored.meta).toBeUndefined();
    expect(await content(restored)).toEqual(hex(stateAt(50)));
    // At first start the node writes the same snapshot again, recording its own members: the file is replaced.
    const ours = { index: 50, term: 1, confState: { voters: ['a', 'b', 'c'] } };
    await call((done) => restored.createSnapshot(ours, view(stateAt(50)), done));
    expect(restored.storage.snapshot().metadata).toEqual(ours);
    expect(snapFiles(target)).toEqual([snapshotFileName(50, 1)]);
    // Taking it once more with the same members changes nothing.
    const again = view(stateAt(50));
    await call((done) => restored.createSnapshot(ours, again, done));
    expect(again.pulled).toBe(0);
    await call((done) => restored.save(hs(2, 51), entries(51, 51, 2), done));
    const { node: reopened } = await reopen(restored);
    expect(reopened.storage.snapshot().metadata).toEqual(ours);
    expect(await content(reopened)).toEqual(hex(stateAt(50)));
    expect(reopened.storage.lastIndex()).toBe(51);
  });

  it('refuses a directory that holds anything, and a damaged file', async () => {
    const { node } = await nodeWithLog(20);
    await takeSnapshot(node, 10);
    const backup = node.latestSnapshot!.path;
    const target = dirs.make();
    mkdirSync(join(target, 'something'));
    await expect(restoreDataDir(backup, target, { logger: new MemoryLogger() })).rejects.toThrow(/refusing to restore into .*not empty/);
    const bad = join(dirs.make(), 'bad.snap');
    const b = readFileSync(backup);
    b[40] ^= 1;
    writeFileSync(bad, b);
    const err = await restoreDataDir(bad, join(dirs.make(), 'new'), { logger: new MemoryLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotCorruptionError);
    expect((err as Error).message).toContain(bad);
  });
});

import type { SnapshotMetadata } from '@app/consensus/core';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryLogger, TempDirs } from '../../../test/support/wal-test-helpers';
import { SnapshotCorruptionError } from './errors';
import { readSnapshotFile, verifySnapshotFile } from './snapshot-file';
import { SNAPSHOT_DIR, snapshotFileName, SnapshotStore } from './snapshot-store';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

const meta = (index: number, term = 1): SnapshotMetadata => ({ index, term, confState: { voters: ['n1', 'n2'] } });
const content = (index: number): Buffer[] => [Buffer.from(`state at ${index}`), Buffer.alloc(3000, index & 0xff), Buffer.alloc(0)];

async function collect(iterable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of iterable) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

function snapDir(walDir: string): string[] {
  return readdirSync(join(walDir, SNAPSHOT_DIR)).sort();
}

describe('SnapshotStore', () => {
  it('writes a snapshot durably under <index>-<term>.snap, readable back chunk for chunk', async () => {
    const walDir = dirs.make();
    const store = await SnapshotStore.open(walDir, new MemoryLogger());
    const info = await store.write(meta(0x1234, 7), content(0x1234));
    expect(snapshotFileName(0x1234, 7)).toBe('0000000000001234-0000000000000007.snap');
    expect(info).toEqual({ index: 0x1234, term: 7, size: readFileSync(info.path).length, path: join(walDir, 'snap', snapshotFileName(0x1234, 7)) });
    expect(snapDir(walDir)).toEqual([snapshotFileName(0x1234, 7)]);
    const reader = await readSnapshotFile(info.path);
    expect(reader.metadata).toEqual(meta(0x1234, 7));
    const chunks: string[] = [];
    for await (const c of reader.chunks()) chunks.push(Buffer.from(c).toString('hex'));
    expect(chunks).toEqual(content(0x1234).map((c) => c.toString('hex')));
  });

  it('keeps the newest two on prune (never the protected one), and lists newest first', async () => {
    const walDir = dirs.make();
    const store = await SnapshotStore.open(walDir, new MemoryLogger());
    for (const i of [10, 30, 20, 40]) await store.write(meta(i), content(i));
    expect(store.list().map((f) => f.index)).toEqual([40, 30, 20, 10]);
    expect(await store.prune({ index: 10, term: 1 })).toBe(1);
    expect(store.list().map((f) => f.index)).toEqual([40, 30, 10]);
    expect(await store.prune()).toBe(1);
    expect(snapDir(walDir)).toEqual([snapshotFileName(30, 1), snapshotFileName(40, 1)]);
    // A reopened store finds them.
    const again = await SnapshotStore.open(walDir, new MemoryLogger());
    expect(again.list().map((f) => [f.index, f.term])).toEqual([
      [40, 1],
      [30, 1],
    ]);
  });

  it('removes temporary files left by a crash when it opens, and leaves other files alone', async () => {
    const walDir = dirs.make();
    const store = await SnapshotStore.open(walDir, new MemoryLogger());
    await store.write(meta(5), content(5));
    const dir = join(walDir, SNAPSHOT_DIR);
    writeFileSync(join(dir, `${snapshotFileName(9, 1)}.ab12cd34.tmp`), 'half a snapshot');
    writeFileSync(join(dir, 'incoming-0123456789ab.tmp'), 'half a transfer');
    writeFileSync(join(dir, `${snapshotFileName(3, 1)}.damaged`), 'kept for inspection');
    const logger = new MemoryLogger();
    const again = await SnapshotStore.open(walDir, logger);
    expect(snapDir(walDir)).toEqual([snapshotFileName(3, 1) + '.damaged', snapshotFileName(5, 1)]);
    expect(again.list().map((f) => f.index)).toEqual([5]);
    expect(logger.logs.join('\n')).toMatch(/removed 2 temporary file/);
  });

  it('a write that fails leaves no file behind', async () => {
    const walDir = dirs.make();
    const store = await SnapshotStore.open(walDir, new MemoryLogger());
    function* failing(): Generator<Uint8Array> {
      yield Buffer.from('a');
      throw new Error('view broke');
    }
    await expect(store.write(meta(5), failing())).rejects.toThrow('view broke');
    expect(snapDir(walDir)).toEqual([]);
    expect(store.list()).toEqual([]);
  });

  it('streams a durable file for sending, byte for byte; undefined once it is gone', async () => {
    const walDir = dirs.make();
    const store = await SnapshotStore.open(walDir, new MemoryLogger());
    const big = [Buffer.alloc(2_500_000, 7), Buffer.from('tail')];
    const info = await store.write(meta(8, 2), big);
    const sending = store.openForSending(8, 2);
    expect(sending?.size).toBe(info.size);
    expect((await collect(sending!.stream)).equals(readFileSync(info.path))).toBe(true);
    expect(store.openForSending(8, 3)).toBeUndefined();
    await store.remove(8, 2);
    expect(store.openForSending(8, 2)).toBeUndefined();
  });

  it('receives a file in pieces, verifies it, and promotes it on install', async () => {
    const leaderDir = dirs.make();
    const leader = await SnapshotStore.open(leaderDir, new MemoryLogger());
    await leader.write(meta(50, 3), content(50));
    const walDir = dirs.make();
    const store = await SnapshotStore.open(walDir, new MemoryLogger());
    const incoming = store.receive();
    for await (const piece of leader.openForSending(50, 3)!.stream) {
      const b = Buffer.from(piece);
      for (let p = 0; p < b.length; p += 1000) await incoming.write(b.subarray(p, p + 1000));
    }
    expect(await incoming.finish()).toEqual(meta(50, 3));
    expect(store.receivedFile(50, 3)).toMatchObject({ metadata: meta(50, 3) });
    expect(store.receivedFile(50, 4)).toBeUndefined();
    expect(store.list()).toEqual([]); // not a durable snapshot until installed
    const info = await store.promoteReceived(50, 3);
    expect(info.path).toBe(join(walDir, SNAPSHOT_DIR, snapshotFileName(50, 3)));
    expect(await verifySnapshotFile(info.path)).toMatchObject(meta(50, 3));
    expect(snapDir(walDir)).toEqual([snapshotFileName(50, 3)]);
    await expect(store.promoteReceived(50, 3)).rejects.toThrow(/no received snapshot file for \(50, term 3\)/);
  });

  it('rejects a damaged or cut transfer, and leaves nothing of it', async () => {
    const walDir = dirs.make();
    const store = await SnapshotStore.open(walDir, new MemoryLogger());
    const source = await store.write(meta(7), content(7));
    const bytes = readFileSync(source.path);
    await store.remove(7, 1);

    const damaged = Buffer.from(bytes);
    damaged[100] ^= 4;
    const a = store.receive();
    await expect(a.write(damaged)).rejects.toBeInstanceOf(SnapshotCorruptionError);
    await expect(a.finish()).rejects.toThrow(/aborted/);

    const b = store.receive();
    await b.write(bytes.subarray(0, bytes.length - 10));
    await expect(b.finish()).rejects.toThrow(/truncated/);

    const c = store.receive();
    await c.write(bytes.subarray(0, 500));
    c.abort();
    await store.close(); // waits for the aborted files' deletion
    expect(snapDir(walDir)).toEqual([]);
    expect(store.receivedFile(7, 1)).toBeUndefined();
  });

  it('keeps at most one received file: the newer one', async () => {
    const walDir = dirs.make();
    const store = await SnapshotStore.open(walDir, new MemoryLogger());
    const bytesOf = async (index: number): Promise<Buffer> => {
      const info = await store.write(meta(index), content(index));
      const b = readFileSync(info.path);
      await store.remove(index, 1);
      return b;
    };
    const receive = async (b: Buffer): Promise<void> => {
      const f = store.receive();
      await f.write(b);
      await f.finish();
    };
    const [b20, b30, b10] = [await bytesOf(20), await bytesOf(30), await bytesOf(10)];
    await receive(b20);
    await receive(b30);
    expect(store.receivedFile(20, 1)).toBeUndefined();
    expect(store.receivedFile(30, 1)).toBeDefined();
    await receive(b10);
    expect(store.receivedFile(10, 1)).toBeUndefined();
    expect(snapDir(walDir).length).toBe(1);
    // A durable snapshot at or past it supersedes it.
    await store.write(meta(30), content(30));
    expect(store.receivedFile(30, 1)).toBeUndefined();
    expect(snapDir(walDir)).toEqual([snapshotFileName(30, 1)]);
  });
});

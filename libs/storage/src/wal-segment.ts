import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileIo } from './durable-fs';
import { refusedWrite } from './errors';

/**
 * One segment file of the write-ahead log: `<seq>-<firstIndex>.wal`, both 16 lowercase hex digits, so the
 * names sort in log order. `seq` counts segments from 1 without gaps; `firstIndex` is the index the next
 * entry appended after the segment's header gets. Segments are append-only; the last one is the active one.
 */

const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export interface SegmentName {
  seq: number;
  firstIndex: number;
  name: string;
}

export function segmentFileName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}.wal`;
}

export function parseSegmentFileName(name: string): SegmentName | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const seq = parseInt(m[1], 16);
  const firstIndex = parseInt(m[2], 16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(firstIndex)) return undefined;
  return { seq, firstIndex, name };
}

/** The segment files in `dir`, in sequence order. Other files are ignored. */
export async function listSegments(dir: string): Promise<SegmentName[]> {
  const names = await fs.promises.readdir(dir);
  return names
    .map(parseSegmentFileName)
    .filter((s): s is SegmentName => s !== undefined)
    .sort((a, b) => a.seq - b.seq);
}

/**
 * How appends are made durable. `dsync`: the descriptor is opened with O_DSYNC, so each write returns once
 * its data (and the file size) is on disk: one system call, one trip through libuv's thread pool.
 * `fdatasync`: a plain write, then fdatasync(2). Same guarantee; measured slower (docs/benchmarks.md).
 */
export type SyncMethod = 'dsync' | 'fdatasync';

export class WalSegment {
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    readonly seq: number,
    readonly firstIndex: number,
    /** Bytes in the file that belong to the log (the file may not be longer). */
    public size: number,
    fd: number | undefined,
    /** How appends are made durable; undefined for a read-only segment. */
    private readonly sync: SyncMethod | undefined,
  ) {
    this.fd = fd;
  }

  /**
   * Creates a new, empty segment file for appending; fails if it exists. Its name is not durable until the
   * caller fsyncs the directory.
   */
  static async create(dir: string, seq: number, firstIndex: number, sync: SyncMethod): Promise<WalSegment> {
    const path = join(dir, segmentFileName(seq, firstIndex));
    const { O_RDWR, O_CREAT, O_EXCL } = fs.constants;
    return new WalSegment(path, seq, firstIndex, 0, await openFd(path, O_RDWR | O_CREAT | O_EXCL | dsyncFlag(sync)), sync);
  }

  /**
   * A segment already on disk, `size` bytes long. With `sync`, it is opened for appending (the active
   * segment); without, it is opened read-only on first read.
   */
  static async open(dir: string, name: SegmentName, size: number, sync?: SyncMethod): Promise<WalSegment> {
    const path = join(dir, name.name);
    const fd = sync ? await openFd(path, fs.constants.O_RDWR | dsyncFlag(sync)) : undefined;
    return new WalSegment(path, name.seq, name.firstIndex, size, fd, sync);
  }

  /**
   * Writes `buffers` (`bytes` in total) at the end of the segment and resolves once they are on disk, with
   * the file size. A short write is continued; a full disk shows as a short write, then as an error.
   *
   * Rejects with StorageFullError when the disk refused the write (ENOSPC, EDQUOT; EIO too with `fdatasync`,
   * where the write only reaches the page cache): the segment's `size` is unchanged, and the caller must cut
   * the file back to it (truncateTo) before writing again. Any other rejection (a failed fsync, or EIO from
   * an O_DSYNC write, which may be the flush's) leaves the segment's end unknown: the caller must stop.
   */
  async appendDurably(buffers: Buffer[], bytes: number): Promise<void> {
    const fd = this.requireFd();
    let done = 0;
    let pending = buffers;
    while (done < bytes) {
      let written: number;
      try {
        written = await fileIo.writev(fd, pending, this.size + done);
      } catch (err) {
        throw refusedWrite(err, `writing ${this.path}`, this.sync === 'dsync') ?? err;
      }
      if (written <= 0) throw new Error(`write to ${this.path} made no progress at offset ${this.size + done}`);
      done += written;
      if (done < bytes) pending = remainder(pending, written);
    }
    if (this.sync === 'fdatasync') await fileIo.fdatasync(fd);
    this.size += bytes;
  }

  /**
   * Cuts the file back to `size` bytes (at most its current size; after a refused append, to what it held
   * before), durably: the bytes of a refused batch must not come back after a crash, to be mistaken for a
   * torn write, nor stay in a file that the next batch will extend. Rejects on failure: the caller must stop.
   */
  async truncateTo(size: number): Promise<void> {
    const fd = this.requireFd();
    await fileIo.ftruncate(fd, size);
    await fileIo.fdatasync(fd);
    this.size = size;
  }

  /**
   * Deletes the file of a segment just created whose first batch never became durable (a roll-over the disk
   * refused). The caller fsyncs the directory.
   */
  async discard(): Promise<void> {
    this.close();
    await fs.promises.unlink(this.path);
  }

  /** Reads `length` bytes at `offset`, synchronously (the Raft core's reads are synchronous). */
  readSync(offset: number, length: number): Buffer {
    if (this.fd === undefined) this.fd = fs.openSync(this.path, 'r');
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) throw new Error(`unexpected end of ${this.path} at offset ${offset + done}`);
      done += n;
    }
    return buf;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private requireFd(): number {
    if (this.fd === undefined || !this.sync) throw new Error(`segment ${this.path} is not open for writing`);
    return this.fd;
  }
}

function dsyncFlag(sync: SyncMethod): number {
  return sync === 'dsync' ? fs.constants.O_DSYNC : 0;
}

/** A raw descriptor; a refused creation (ENOSPC, EDQUOT, EIO) rejects with StorageFullError. */
async function openFd(path: string, flags: number): Promise<number> {
  try {
    return await fileIo.open(path, flags);
  } catch (err) {
    throw (flags & fs.constants.O_CREAT ? refusedWrite(err, `creating ${path}`) : undefined) ?? err;
  }
}

/** `buffers` without their first `skip` bytes (after a short write). */
function remainder(buffers: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { refusedWrite } from './errors';

/**
 * The few file-system calls whose order makes data durable, as promises over Node's callback API (a bit
 * faster than fs/promises on the hot path). Everything the WAL writes goes through `fileIo`, which is also
 * the seam tests use to inject a failing write or fsync.
 */
export const fileIo = {
  /** A raw descriptor (not a FileHandle, which would close it when garbage-collected). */
  open(path: string, flags: number, mode = 0o644): Promise<number> {
    return new Promise((resolve, reject) => fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
  },
  write(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) =>
      fs.write(fd, buffer, offset, length, position, (err, written) => (err ? reject(err) : resolve(written))),
    );
  },
  writev(fd: number, buffers: Buffer[], position: number): Promise<number> {
    return new Promise((resolve, reject) =>
      fs.writev(fd, buffers, position, (err, written) => (err ? reject(err) : resolve(written))),
    );
  },
  /** Makes the file's data (and the metadata needed to read it back, such as its size) durable. */
  fdatasync(fd: number): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  },
  fsync(fd: number): Promise<void> {
    return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
  },
  ftruncate(fd: number, length: number): Promise<void> {
    return new Promise((resolve, reject) => fs.ftruncate(fd, length, (err) => (err ? reject(err) : resolve())));
  },
};

/**
 * Writes `bytes` of `buf` at `position`, through fileIo.write, until all are written: a full disk first
 * shows as a short write, then as an error (ENOSPC) on the next call, which is thrown as is.
 */
export async function writeFully(fd: number, buf: Buffer, bytes: number, position: number): Promise<void> {
  let done = 0;
  while (done < bytes) {
    const written = await fileIo.write(fd, buf, done, bytes - done, position + done);
    if (written <= 0) throw Object.assign(new Error(`write made no progress at offset ${position + done}`), { code: 'EIO' });
    done += written;
  }
}

/**
 * Makes a directory's entries durable: after creating, renaming or deleting a file, the file's data being
 * on disk is not enough, its name must be too (Linux, ext4/xfs: fsync on the directory's descriptor).
 */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await fileIo.fsync(handle.fd);
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` with `data` atomically and durably: readers see the old content or the new one, never a
 * mix, even across a crash. Order: write `<path>.tmp`, fsync it, rename it over `path`, fsync the directory.
 * If anything fails before the rename, the temporary file is removed and `path` is untouched; a write the
 * disk refused (ENOSPC, EDQUOT, EIO) rejects with StorageFullError.
 */
export async function writeFileAtomic(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp`;
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd: number | undefined;
  try {
    fd = await fileIo.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC);
    try {
      await writeFully(fd, buf, buf.length, 0);
    } catch (err) {
      throw refusedWrite(err, `writing ${tmp}`) ?? err;
    }
    await fileIo.fsync(fd);
    await closeFd(fd);
    fd = undefined;
    await fs.promises.rename(tmp, path);
  } catch (err) {
    if (fd !== undefined) await closeFd(fd).catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw refusedWrite(err, `writing ${tmp}`, true) ?? err;
  }
  await fsyncDir(dirname(path));
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

/**
 * Creates `dir` (and missing parents) if needed; when it creates anything, fsyncs the parent of the topmost
 * directory it created so the new directory survives a crash.
 */
export async function ensureDir(dir: string): Promise<void> {
  const first = await fs.promises.mkdir(dir, { recursive: true });
  if (first !== undefined) await fsyncDir(dirname(first));
}

/** Removes a leftover `<name>.tmp` of an interrupted writeFileAtomic (its target is intact). */
export async function removeStaleTemp(path: string): Promise<boolean> {
  try {
    await fs.promises.unlink(`${path}.tmp`);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

import * as fs from 'node:fs';
import { dirname } from 'node:path';

/**
 * The few file-system calls whose order makes data durable, as promises over Node's callback API (a bit
 * faster than fs/promises on the hot path). Everything the WAL writes goes through `fileIo`, which is also
 * the seam tests use to inject a failing write or fsync.
 */
export const fileIo = {
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
};

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
 */
export async function writeFileAtomic(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await fs.promises.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await fileIo.fsync(handle.fd);
  } finally {
    await handle.close();
  }
  await fs.promises.rename(tmp, path);
  await fsyncDir(dirname(path));
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

import type { SnapshotMetadata } from '@app/consensus/core';
import type { IncomingSnapshotFile, SnapshotFiles } from '@app/consensus/ports';
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, fileIo, fsyncDir, isErrno, writeFully } from './durable-fs';
import { refusedWrite, StorageFullError } from './errors';
import { encodeSnapshotFile, SnapshotDecoder, SnapshotFileSummary } from './snapshot-file';

/** The subdirectory of WAL_DIR that holds snapshot files. */
export const SNAPSHOT_DIR = 'snap';

const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
/** Writes are gathered up to this size before each write call. */
const WRITE_BATCH_BYTES = 1024 * 1024;
const SEND_READ_SIZE = 1024 * 1024;

/** A durable snapshot file. */
export interface SnapshotFileInfo {
  index: number;
  term: number;
  /** Size in bytes. */
  size: number;
  /** Absolute path. */
  path: string;
}

/** The subset of a logger the store uses. */
export interface SnapshotStoreLogger {
  log(message: string): void;
  warn(message: string): void;
}

/** Options of SnapshotStore.open(). */
export interface SnapshotStoreOptions {
  /** Called each time the disk refuses a write (a snapshot being written or received). Must not throw. */
  onStorageFull?: (error: StorageFullError) => void;
}

/** A snapshot file received from a peer, verified, waiting to be installed. */
interface Received {
  path: string;
  summary: SnapshotFileSummary;
}

/** `<index>-<term>.snap`, both 16 lowercase hexadecimal digits, so names sort by index. */
export function snapshotFileName(index: number, term: number): string {
  return `${index.toString(16).padStart(16, '0')}-${term.toString(16).padStart(16, '0')}.snap`;
}

/**
 * The snapshot files of a node, in `<WAL_DIR>/snap/` (docs/storage.md, "Snapshot files"):
 *
 * - durable snapshots `<index>-<term>.snap`, written whole to a temporary file, fsynced, renamed into place
 *   and the directory fsynced, so a name always stands for a complete file;
 * - at most one received file (from the leader, through receive()), kept under its temporary name until it
 *   is installed (promoteReceived) or superseded;
 * - temporary files (`*.tmp`): a crash leaves them behind; open() deletes them.
 *
 * The store does not decide which snapshot is current: the WAL records that (node-storage.ts). It also
 * implements the transport's SnapshotFiles port.
 */
export class SnapshotStore implements SnapshotFiles {
  private files: SnapshotFileInfo[] = [];
  private received: Received | undefined;
  /** The received file promoteReceived() last made durable, for unpromote(). */
  private promoted: Received | undefined;
  private readonly incoming = new Set<Incoming>();
  /** Deletions of aborted transfers' files, still running. */
  private readonly cleanups = new Set<Promise<void>>();
  private closed = false;

  private constructor(
    /** Absolute path of the snapshot directory. */
    readonly dir: string,
    private readonly logger: SnapshotStoreLogger,
    private readonly options: SnapshotStoreOptions,
  ) {}

  /** Opens (creating if needed) `<walDir>/snap/`, deleting temporary files a crash left there. */
  static async open(walDir: string, logger: SnapshotStoreLogger, options: SnapshotStoreOptions = {}): Promise<SnapshotStore> {
    const store = new SnapshotStore(join(walDir, SNAPSHOT_DIR), logger, options);
    await ensureDir(store.dir);
    let removed = 0;
    for (const name of await fsp.readdir(store.dir)) {
      const path = join(store.dir, name);
      if (name.endsWith('.tmp')) {
        await fsp.unlink(path);
        removed++;
        continue;
      }
      const m = NAME.exec(name);
      if (!m) continue;
      const index = parseInt(m[1], 16);
      const term = parseInt(m[2], 16);
      if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term)) continue;
      store.files.push({ index, term, size: (await fsp.stat(path)).size, path });
    }
    if (removed > 0) {
      await fsyncDir(store.dir);
      logger.log(`removed ${removed} temporary file(s) left in ${store.dir} (a snapshot being written or received when the node stopped)`);
    }
    store.sort();
    return store;
  }

  /** The durable snapshot files, newest (highest index, then term) first. */
  list(): SnapshotFileInfo[] {
    return this.files.map((f) => ({ ...f }));
  }

  find(index: number, term: number): SnapshotFileInfo | undefined {
    const f = this.files.find((x) => x.index === index && x.term === term);
    return f && { ...f };
  }

  /** Where the durable snapshot (index, term) is, or would be. */
  pathFor(index: number, term: number): string {
    return join(this.dir, snapshotFileName(index, term));
  }

  /**
   * Writes a snapshot file durably: chunks are pulled from `chunks` and written one batch at a time (each
   * write awaited, so the event loop keeps turning), to a temporary file that is fsynced, renamed to
   * `<index>-<term>.snap` and made durable by an fsync of the directory. A failure removes the temporary
   * file and changes nothing; when the disk refused a write (ENOSPC, EDQUOT, EIO), it is a StorageFullError.
   */
  async write(metadata: SnapshotMetadata, chunks: Iterable<Uint8Array>): Promise<SnapshotFileInfo> {
    this.checkOpen();
    const final = this.pathFor(metadata.index, metadata.term);
    const tmp = `${final}.${randomBytes(4).toString('hex')}.tmp`;
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(tmp, 'wx');
    } catch (err) {
      throw this.refused(err, `creating ${tmp}`);
    }
    let size = 0;
    /** A failed fsync is not a refused write: it is reported as it is. */
    let syncing = false;
    try {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async (): Promise<void> => {
        await writeAll(handle, pending, pendingBytes, size);
        size += pendingBytes;
        pending = [];
        pendingBytes = 0;
      };
      for await (const buf of encodeSnapshotFile(metadata, chunks)) {
        pending.push(buf);
        pendingBytes += buf.length;
        if (pendingBytes >= WRITE_BATCH_BYTES) await flush();
      }
      await flush();
      syncing = true;
      await fileIo.fsync(handle.fd);
      await handle.close();
      syncing = false;
      await fsp.rename(tmp, final);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fsp.unlink(tmp).catch(() => undefined);
      throw syncing ? err : this.refused(err, `writing snapshot file ${tmp}`);
    }
    await fsyncDir(this.dir);
    const info = { index: metadata.index, term: metadata.term, size, path: final };
    this.add(info);
    await this.dropReceivedCoveredBy(metadata.index);
    return { ...info };
  }

  /**
   * Copies a snapshot file from elsewhere into the store (for a restore), durably, the same way as write().
   * The caller has verified it; `summary` is what verification returned.
   */
  async importFile(source: string, summary: SnapshotFileSummary): Promise<SnapshotFileInfo> {
    this.checkOpen();
    const final = this.pathFor(summary.index, summary.term);
    const tmp = `${final}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await fsp.copyFile(source, tmp, 0);
      const handle = await fsp.open(tmp, 'r+');
      try {
        await fileIo.fsync(handle.fd);
      } finally {
        await handle.close();
      }
    } catch (err) {
      await fsp.unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fsp.rename(tmp, final);
    await fsyncDir(this.dir);
    const info = { index: summary.index, term: summary.term, size: summary.size, path: final };
    this.add(info);
    return { ...info };
  }

  /** Deletes a durable snapshot file (then fsyncs the directory). */
  async remove(index: number, term: number): Promise<void> {
    const f = this.files.find((x) => x.index === index && x.term === term);
    if (!f) return;
    await unlinkIfPresent(f.path);
    await fsyncDir(this.dir);
    this.files = this.files.filter((x) => x !== f);
  }

  /**
   * Moves a damaged snapshot file out of the way, renamed `<name>.damaged` (kept for inspection; the store
   * ignores it from then on). Returns the new path.
   */
  async setAside(index: number, term: number): Promise<string> {
    const f = this.files.find((x) => x.index === index && x.term === term);
    const path = `${this.pathFor(index, term)}.damaged`;
    if (!f) return path;
    await fsp.rename(f.path, path);
    await fsyncDir(this.dir);
    this.files = this.files.filter((x) => x !== f);
    return path;
  }

  /**
   * Deletes durable snapshot files beyond the newest `keep`, never `protect` (the snapshot in use). Call it
   * only once the newest one is recorded in the WAL.
   */
  async prune(protect?: { index: number; term: number }, keep = 2): Promise<number> {
    const doomed = this.files
      .slice(keep)
      .filter((f) => !(protect && f.index === protect.index && f.term === protect.term));
    for (const f of doomed) {
      await unlinkIfPresent(f.path);
      this.files = this.files.filter((x) => x !== f);
    }
    if (doomed.length > 0) await fsyncDir(this.dir);
    return doomed.length;
  }

  /** The received file for (index, term), verified, if there is one. */
  receivedFile(index: number, term: number): { path: string; metadata: SnapshotMetadata; size: number } | undefined {
    const r = this.received;
    if (!r || r.summary.index !== index || r.summary.term !== term) return undefined;
    const { index: i, term: t, confState, size } = r.summary;
    return { path: r.path, metadata: { index: i, term: t, confState }, size };
  }

  /**
   * Makes the received file for (index, term) a durable snapshot file: renamed to `<index>-<term>.snap`,
   * directory fsynced. Throws when there is no such received file; StorageFullError when the disk refused
   * the rename (nothing changed).
   */
  async promoteReceived(index: number, term: number): Promise<SnapshotFileInfo> {
    this.checkOpen();
    const r = this.received;
    if (!r || r.summary.index !== index || r.summary.term !== term) {
      throw new Error(`no received snapshot file for (${index}, term ${term}) in ${this.dir}`);
    }
    const final = this.pathFor(index, term);
    try {
      await fsp.rename(r.path, final);
    } catch (err) {
      throw this.refused(err, `installing ${r.path} as ${final}`, true);
    }
    await fsyncDir(this.dir);
    if (this.received === r) this.received = undefined;
    this.promoted = r;
    const info = { index, term, size: r.summary.size, path: final };
    this.add(info);
    return { ...info };
  }

  /**
   * Undoes promoteReceived(index, term), when the write-ahead log then refused to record the install (a
   * full disk): the file goes back under its received name (directory fsynced) and is the received file
   * again, so that the install may be retried; unless a newer file was received meanwhile, which wins as
   * in any other case (this one is then deleted).
   */
  async unpromote(index: number, term: number): Promise<void> {
    const r = this.promoted;
    const f = this.files.find((x) => x.index === index && x.term === term);
    if (!r || !f || r.summary.index !== index || r.summary.term !== term) {
      throw new Error(`snapshot (${index}, term ${term}) was not the last one promoted in ${this.dir}`);
    }
    this.promoted = undefined;
    this.files = this.files.filter((x) => x !== f);
    const now = this.received;
    if (now && (now.summary.index > index || (now.summary.index === index && now.summary.term > term))) {
      await unlinkIfPresent(f.path);
      await fsyncDir(this.dir);
      return;
    }
    await fsp.rename(f.path, r.path);
    await fsyncDir(this.dir);
    this.received = r;
    if (now) await unlinkIfPresent(now.path);
  }

  /** SnapshotFiles: the durable file (index, term) as a stream, opened when first read. */
  openForSending(index: number, term: number): { size: number; stream: AsyncIterable<Uint8Array> } | undefined {
    const f = this.files.find((x) => x.index === index && x.term === term);
    if (!f) return undefined;
    return { size: f.size, stream: streamFile(f.path) };
  }

  /** SnapshotFiles: a file arriving from a peer, written aside and verified as it comes. */
  receive(): IncomingSnapshotFile {
    this.checkOpen();
    const path = join(this.dir, `incoming-${randomBytes(6).toString('hex')}.tmp`);
    const file = new Incoming(path, this);
    this.incoming.add(file);
    return file;
  }

  /**
   * Stops: aborts the transfers in progress and deletes their files and the received file (a restart would
   * anyway). Resolves once they are gone.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const file of [...this.incoming]) file.abort();
      const received = this.received;
      this.received = undefined;
      if (received) await unlinkIfPresent(received.path);
    }
    await Promise.all([...this.cleanups]);
  }

  /** @internal An incoming file finished and verified: it becomes the received file, or is dropped. */
  async accept(file: Incoming, summary: SnapshotFileSummary): Promise<void> {
    this.incoming.delete(file);
    if (this.closed) {
      await unlinkIfPresent(file.path);
      throw new Error(`snapshot store ${this.dir} is closed`);
    }
    const prev = this.received;
    // One received file at most: the newer one wins (the core only installs snapshots newer than its state).
    if (prev && (prev.summary.index > summary.index || (prev.summary.index === summary.index && prev.summary.term > summary.term))) {
      await unlinkIfPresent(file.path);
      this.logger.log(`received snapshot (${summary.index}, term ${summary.term}) dropped: a newer one is waiting to be installed`);
      return;
    }
    this.received = { path: file.path, summary };
    if (prev) await unlinkIfPresent(prev.path);
  }

  /**
   * @internal `err` as a StorageFullError (reported to onStorageFull) when the disk refused a write, else
   * `err` itself.
   */
  refused(err: unknown, what: string, eioIsFatal = false): unknown {
    const full = refusedWrite(err, what, eioIsFatal);
    if (!full) return err;
    try {
      this.options.onStorageFull?.(full);
    } catch {
      // metrics must never break storage
    }
    return full;
  }

  /** @internal An incoming file was aborted; `cleanup` deletes it. */
  forget(file: Incoming, cleanup: Promise<void>): void {
    this.incoming.delete(file);
    this.cleanups.add(cleanup);
    void cleanup.finally(() => this.cleanups.delete(cleanup));
  }

  private async dropReceivedCoveredBy(index: number): Promise<void> {
    const r = this.received;
    if (r && r.summary.index <= index) {
      this.received = undefined;
      await unlinkIfPresent(r.path);
    }
  }

  private add(info: SnapshotFileInfo): void {
    this.files = this.files.filter((x) => !(x.index === info.index && x.term === info.term));
    this.files.push(info);
    this.sort();
  }

  private sort(): void {
    this.files.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`snapshot store ${this.dir} is closed`);
  }
}

/**
 * A snapshot file arriving from a peer. Bytes are checked as they come (a damaged record fails write() at
 * once) and appended to a temporary file; finish() checks the trailer, fsyncs the file and hands it to the
 * store. Any failure deletes the file.
 */
class Incoming implements IncomingSnapshotFile {
  private readonly decoder: SnapshotDecoder;
  private handle: fsp.FileHandle | undefined;
  private size = 0;
  private chain: Promise<void> = Promise.resolve();
  private state: 'open' | 'finished' | 'aborted' = 'open';

  constructor(
    readonly path: string,
    private readonly store: SnapshotStore,
  ) {
    this.decoder = new SnapshotDecoder(path, { chunks: false });
  }

  write(chunk: Uint8Array): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.state !== 'open') throw new Error(`snapshot transfer to ${this.path} is ${this.state}`);
      try {
        // A copy: the decoder keeps the bytes of an incomplete record, and the caller may reuse its buffer.
        const buf = Buffer.from(chunk);
        this.decoder.push(buf);
        this.handle ??= await fsp.open(this.path, 'wx');
        await writeAll(this.handle, [buf], buf.length, this.size);
        this.size += buf.length;
      } catch (err) {
        this.abort();
        throw this.store.refused(err, `receiving snapshot file ${this.path}`);
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  finish(): Promise<SnapshotMetadata> {
    const run = this.chain.then(async () => {
      if (this.state !== 'open') throw new Error(`snapshot transfer to ${this.path} is ${this.state}`);
      try {
        const summary = this.decoder.end();
        try {
          this.handle ??= await fsp.open(this.path, 'wx');
        } catch (err) {
          throw this.store.refused(err, `receiving snapshot file ${this.path}`);
        }
        await fileIo.fsync(this.handle.fd);
        await this.handle.close();
        this.handle = undefined;
        this.state = 'finished';
        await this.store.accept(this, summary);
        return { index: summary.index, term: summary.term, confState: summary.confState };
      } catch (err) {
        this.abort();
        throw err;
      }
    });
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    const handle = this.handle;
    this.handle = undefined;
    const cleanup = (async () => {
      await handle?.close().catch(() => undefined);
      await unlinkIfPresent(this.path).catch(() => undefined);
    })();
    this.store.forget(this, cleanup);
  }
}

async function* streamFile(path: string): AsyncGenerator<Uint8Array> {
  const stream = createReadStream(path, { highWaterMark: SEND_READ_SIZE });
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } finally {
    stream.destroy();
  }
}

async function writeAll(handle: fsp.FileHandle, buffers: Buffer[], bytes: number, position: number): Promise<void> {
  if (bytes === 0) return;
  const buf = buffers.length === 1 ? buffers[0] : Buffer.concat(buffers, bytes);
  await writeFully(handle.fd, buf, bytes, position);
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await fsp.unlink(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

import type { Entry, HardState, Snapshot, SnapshotMetadata, Storage } from '@app/consensus/core';
import type { RaftStorage, SaveCallback, SnapshotFiles, StateMachineView } from '@app/consensus/ports';
import { Logger } from '@nestjs/common';
import { promises as fsp } from 'node:fs';
import { resolve } from 'node:path';
import { isErrno } from './durable-fs';
import { REPLACE_MEMBER, SnapshotCorruptionError, SnapshotUnusableError } from './errors';
import { WalMeta } from './meta-file';
import { copyConfState, readSnapshotFile, SnapshotFileSummary, verifySnapshotFile } from './snapshot-file';
import { SnapshotFileInfo, SnapshotStore } from './snapshot-store';
import { Wal, WalLogger, WalOptions } from './wal';

/** Options of openNodeStorage() and restoreDataDir(): those of the Wal. */
export type NodeStorageOptions = WalOptions;

/** The snapshot a node's state starts from: its metadata and its file. */
export interface CurrentSnapshot {
  metadata: SnapshotMetadata;
  file: SnapshotFileInfo;
}

const EMPTY = new Uint8Array(0);

/**
 * A node's storage: the write-ahead log and the snapshot files, kept consistent with each other
 * (docs/storage.md, "Snapshots and compaction"). Implements the node loop's RaftStorage port; `snapshotFiles`
 * is the transport's SnapshotFiles port. Obtain one with openNodeStorage().
 */
export class NodeStorage implements RaftStorage {
  /** The core's read view: the WAL's, except that snapshot() is the snapshot the node really starts from. */
  readonly storage: Storage;
  /** The transport's access to snapshot files (sending the newest one, receiving one from the leader). */
  readonly snapshotFiles: SnapshotFiles;
  private current: CurrentSnapshot | undefined;
  private snapshotChain: Promise<void> = Promise.resolve();
  private closing?: Promise<void>;

  /** @internal use openNodeStorage() */
  constructor(
    readonly wal: Wal,
    readonly snapshots: SnapshotStore,
    current: CurrentSnapshot | undefined,
    private readonly logger: WalLogger,
  ) {
    this.current = current;
    this.snapshotFiles = snapshots;
    const walStorage = wal.storage;
    this.storage = {
      initialState: () => walStorage.initialState(),
      entries: (lo, hi, maxBytes) => walStorage.entries(lo, hi, maxBytes),
      term: (i) => walStorage.term(i),
      firstIndex: () => walStorage.firstIndex(),
      lastIndex: () => walStorage.lastIndex(),
      snapshot: () => this.snapshotView(),
    };
  }

  /** The newest durable snapshot (for /status and metrics), or undefined when the node has none. */
  get latestSnapshot(): { index: number; term: number; size: number; path: string } | undefined {
    const c = this.current;
    return c && { index: c.metadata.index, term: c.metadata.term, size: c.file.size, path: c.file.path };
  }

  /** Index of the newest durable snapshot, 0 when there is none. */
  get snapshotIndex(): number {
    return this.current?.metadata.index ?? 0;
  }

  get meta(): WalMeta | undefined {
    return this.wal.meta;
  }

  setMeta(meta: Record<string, unknown>): Promise<void> {
    return this.wal.setMeta(meta);
  }

  save(hardState: HardState | undefined, entries: Entry[], done: SaveCallback): void {
    this.wal.save(hardState, entries).then(
      () => done(),
      (error: unknown) => done(toError(error)),
    );
  }

  /**
   * Writes the view's content to a snapshot file (temporary file, fsync, rename, directory fsync), then
   * records the snapshot in the WAL, then deletes snapshot files beyond the newest two. One runs at a time.
   * On failure nothing changed (the file, if written, is removed) and done gets the error: a
   * StorageFullError when the disk refused the file or the WAL record.
   */
  createSnapshot(metadata: SnapshotMetadata, view: StateMachineView, done: SaveCallback): void {
    const run = this.snapshotChain.then(() => this.takeSnapshot(metadata, view));
    this.snapshotChain = run.catch(() => undefined);
    run.then(
      () => done(),
      (error: unknown) => done(toError(error)),
    );
  }

  /**
   * Releases log entries up to `index`, at most up to the newest snapshot: whole WAL segments are deleted in
   * the background. Errors are logged.
   */
  compact(index: number): void {
    const limit = Math.min(index, this.snapshotIndex);
    if (limit <= 0) return;
    this.wal.compact(limit).catch((err: unknown) => this.logger.error(`compaction up to ${limit} failed: ${toError(err).message}`));
  }

  /**
   * Installs the snapshot the transport received (and verified) for snapshot.metadata's index and term: in
   * the WAL's write order, the received file is renamed into place (directory fsynced), then a Snapshot
   * record resets the log. Saves made after this call land after the reset. Then older snapshot files are
   * pruned and the discarded log is released. A StorageFullError (the disk refused the record, or the rename)
   * means nothing changed: the received file is back under its received name and the install may be made
   * again. Any other error (no such received file, a failed fsync) means the node must stop.
   */
  installSnapshot(snapshot: Snapshot, done: SaveCallback): void {
    const { index, term } = snapshot.metadata;
    const received = this.snapshots.receivedFile(index, term);
    if (!received) {
      const error = new Error(
        `cannot install snapshot (${index}, term ${term}): no received snapshot file for it in ${this.snapshots.dir}`,
      );
      process.nextTick(() => done(error));
      return;
    }
    let file: SnapshotFileInfo | undefined;
    const metadata = snapshot.metadata;
    this.wal
      .saveSnapshot(metadata, {
        installed: true,
        before: async () => {
          file = await this.snapshots.promoteReceived(index, term);
        },
        undo: async () => {
          await this.snapshots.unpromote(index, term);
          file = undefined;
        },
      })
      .then(async () => {
        this.current = { metadata: copyMetadata(metadata), file: file as SnapshotFileInfo };
        await this.afterNewSnapshot();
        this.compact(index);
      })
      .then(
        () => done(),
        (error: unknown) => done(toError(error)),
      );
  }

  /** The newest snapshot's content, chunk by chunk as written (read from its file, each record checked). */
  snapshotContent(): AsyncIterable<Uint8Array> {
    const c = this.current;
    if (!c) throw new Error('there is no snapshot');
    const path = c.file.path;
    return {
      async *[Symbol.asyncIterator]() {
        const reader = await readSnapshotFile(path);
        yield* reader.chunks();
      },
    };
  }

  /** Waits for a snapshot being written, then closes the WAL (writing what is queued) and the store. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.snapshotChain;
      await this.wal.close();
      await this.snapshots.close();
    })();
    return this.closing;
  }

  private async takeSnapshot(metadata: SnapshotMetadata, view: StateMachineView): Promise<void> {
    const { index, term } = metadata;
    const cur = this.current?.metadata;
    // The same snapshot again is a no-op, unless it records other members (a restored backup's first start
    // replaces the old cluster's): then the file is rewritten in place.
    if (cur && cur.index === index && cur.term === term && sameConf(cur.confState, metadata.confState)) return;
    if (cur && (index < cur.index || (index === cur.index && cur.term !== term))) {
      throw new RangeError(`snapshot at ${index} is not newer than the current snapshot at ${cur.index}`);
    }
    if (!this.wal.holds(index, term)) {
      throw new RangeError(`snapshot (${index}, term ${term}): the log does not hold entry ${index} with term ${term}`);
    }
    const file = await this.snapshots.write(metadata, view.chunks());
    // An install from the leader may have landed while the file was written: recording this older snapshot
    // now would name a state the log no longer leads to.
    const now = this.current?.metadata;
    if ((now && index < now.index) || !this.wal.holds(index, term)) {
      await this.snapshots.remove(index, term).catch(() => undefined);
      throw new RangeError(`snapshot at ${index} was superseded while it was written (the leader's snapshot at ${now?.index} was installed)`);
    }
    try {
      await this.wal.saveSnapshot(metadata);
    } catch (err) {
      await this.snapshots.remove(index, term).catch(() => undefined);
      throw err;
    }
    this.current = { metadata: copyMetadata(metadata), file };
    await this.afterNewSnapshot();
  }

  /** Once a new snapshot is recorded: older files beyond the newest two go (failures only logged). */
  private async afterNewSnapshot(): Promise<void> {
    try {
      await this.snapshots.prune(this.current?.metadata);
    } catch (err) {
      this.logger.warn(`could not delete old snapshot files: ${toError(err).message}`);
    }
  }

  private snapshotView(): Snapshot {
    const c = this.current;
    if (c) return { metadata: copyMetadata(c.metadata), data: EMPTY };
    return { metadata: { index: 0, term: 0, confState: this.wal.storage.initialState().confState }, data: EMPTY };
  }
}

/**
 * Opens a node's storage in `dir` (WAL_DIR): the write-ahead log (locked, recovered) and the snapshot files
 * in `dir/snap/`, and chooses the snapshot the node starts from (docs/storage.md, "Recovery with
 * snapshots"):
 *
 * - a snapshot file (S, T) is usable when it verifies and the WAL records a snapshot (S, T) or holds entry S
 *   with term T, and the log holds every entry after S;
 * - the newest usable one is chosen; one the WAL does not record but matches (taken just before a crash) is
 *   recorded now;
 * - a file the WAL neither records nor matches (a crash while installing it, before its WAL record) is
 *   removed, with a warning; a damaged one is set aside as `<name>.damaged`, with a warning;
 * - if the newest snapshot the WAL records is damaged or missing, the older one (or none, on a log that
 *   starts at 1) is used when the log holds every entry from it up to the newer one's index; otherwise
 *   SnapshotUnusableError names the file and says what to do.
 *
 * Throws WalLockedError / WalCorruptionError from the WAL as Wal.open() does.
 */
export async function openNodeStorage(dir: string, options: NodeStorageOptions = {}): Promise<NodeStorage> {
  const logger = options.logger ?? new Logger('Storage');
  const wal = await Wal.open(dir, options);
  try {
    const store = await SnapshotStore.open(wal.dir, logger, { onStorageFull: (error) => wal.noteRefused(error) });
    const current = await chooseSnapshot(wal, store, logger);
    if (current) await store.prune(current.metadata);
    return new NodeStorage(wal, store, current, logger);
  } catch (err) {
    await wal.close();
    throw err;
  }
}

async function chooseSnapshot(wal: Wal, store: SnapshotStore, logger: WalLogger): Promise<CurrentSnapshot | undefined> {
  const recordedNewest = wal.snapshotMetadata;
  const first = wal.storage.firstIndex();
  const last = wal.storage.lastIndex();
  const isRecorded = (i: number, t: number): boolean => wal.recordedSnapshots.some((r) => r.index === i && r.term === t);
  let damaged: { path: string; reason: string } | undefined;
  let chosen: CurrentSnapshot | undefined;

  for (const f of store.list()) {
    const usable = isRecorded(f.index, f.term) || wal.holds(f.index, f.term);
    if (!usable && f.index > (recordedNewest?.index ?? 0)) {
      logger.warn(
        `snapshot file ${f.path} is neither recorded in the write-ahead log nor matches its log (a crash while it was ` +
          'being installed, before it was recorded): ignored and removed',
      );
      await store.remove(f.index, f.term);
      continue;
    }
    // An older snapshot whose entries were compacted since (its record went with them): kept, not used.
    if (!usable) continue;
    // Older files have lower indexes still: none of them can be continued by this log either.
    if (f.index < first - 1) break;
    let summary: SnapshotFileSummary;
    try {
      summary = await verifySnapshotFile(f.path);
      if (summary.index !== f.index || summary.term !== f.term) {
        throw new SnapshotCorruptionError(f.path, 0, `its header says (${summary.index}, term ${summary.term}), unlike its name`);
      }
    } catch (err) {
      if (!(err instanceof SnapshotCorruptionError)) throw err;
      const aside = await store.setAside(f.index, f.term);
      logger.warn(`${err.message}; moved aside to ${aside}`);
      if (recordedNewest && f.index === recordedNewest.index && f.term === recordedNewest.term) {
        damaged = { path: f.path, reason: err.reason };
      }
      continue;
    }
    chosen = { metadata: { index: summary.index, term: summary.term, confState: summary.confState }, file: f };
    break;
  }

  if (recordedNewest && (!chosen || chosen.metadata.index < recordedNewest.index)) {
    // The snapshot the WAL counts on is gone: an older base works only if the log still covers the gap.
    const base = chosen?.metadata.index ?? 0;
    const path = damaged?.path ?? store.pathFor(recordedNewest.index, recordedNewest.term);
    const what = damaged ? `is damaged (${damaged.reason})` : 'is missing';
    if (first - 1 > base || last < recordedNewest.index) {
      throw new SnapshotUnusableError(
        path,
        `snapshot file ${path} ${what}, and the write-ahead log in ${wal.dir} no longer holds the entries needed to ` +
          `rebuild the state without it (it holds [${first}, ${last}]; rebuilding from ` +
          `${chosen ? `the older snapshot ${chosen.file.path}` : 'the start'} needs entries from ${base + 1} to ` +
          `${recordedNewest.index}). The node will not start: ${REPLACE_MEMBER}.`,
      );
    }
    logger.warn(
      `snapshot file ${path} ${what}; starting from ${chosen ? `the older snapshot ${chosen.file.path}` : 'the start of the log'} ` +
        `and replaying entries ${base + 1} to ${recordedNewest.index} from the log`,
    );
  } else if (chosen && !isRecorded(chosen.metadata.index, chosen.metadata.term)) {
    // Taken by this node just before it stopped, before its WAL record: the log matches, so record it now.
    await wal.saveSnapshot(chosen.metadata);
    logger.log(`recorded snapshot ${chosen.file.path}, written before the node stopped`);
  }
  if (!chosen && first > 1) {
    // The WAL checks that a recorded snapshot covers its start, so this means that snapshot's file is unusable.
    throw new SnapshotUnusableError(store.dir, `the log in ${wal.dir} starts at entry ${first} and there is no usable snapshot in ${store.dir}`);
  }
  return chosen;
}

/**
 * Builds a new data directory from a snapshot file, for `kvctl snapshot restore`: verifies the file
 * (SnapshotCorruptionError naming it), refuses a `walDir` that exists and is not empty, then creates it with
 * the file in `snap/` and a WAL whose log is reset at the snapshot (index S, term T): no entries, hard state
 * {term: T, vote: '', commit: S}, the snapshot's configuration. No meta.json: the node writes its identity
 * on first start. If it fails halfway, delete the directory and run it again.
 */
export async function restoreDataDir(file: string, walDir: string, options: NodeStorageOptions = {}): Promise<SnapshotFileSummary> {
  const summary = await verifySnapshotFile(file);
  if (summary.index < 1) throw new RangeError(`snapshot file ${file} is at index 0: there is nothing to restore`);
  const dir = resolve(walDir);
  try {
    const present = await fsp.readdir(dir);
    if (present.length > 0) {
      throw new Error(
        `refusing to restore into ${dir}: the directory is not empty (${present.length} entries). ` +
          'Restore into a new or empty directory; never over a member\'s existing data.',
      );
    }
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  const logger = options.logger ?? new Logger('Storage');
  const wal = await Wal.open(dir, options);
  try {
    const store = await SnapshotStore.open(wal.dir, logger);
    await store.importFile(file, summary);
    const metadata = { index: summary.index, term: summary.term, confState: summary.confState };
    await wal.saveSnapshot(metadata, { installed: true });
    // No configuration: the new cluster's members are the ones its nodes are started with, not the old
    // cluster's that the snapshot records (the node then writes a snapshot recording its own).
    await wal.setConfState({ voters: [] });
    await wal.save({ term: summary.term, vote: '', commit: summary.index }, []);
  } finally {
    await wal.close();
  }
  return summary;
}

function sameConf(a: SnapshotMetadata['confState'], b: SnapshotMetadata['confState']): boolean {
  const key = (c: SnapshotMetadata['confState']) => JSON.stringify([[...c.voters].sort(), [...(c.learners ?? [])].sort()]);
  return key(a) === key(b);
}

function copyMetadata(m: SnapshotMetadata): SnapshotMetadata {
  return { index: m.index, term: m.term, confState: copyConfState(m.confState) };
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

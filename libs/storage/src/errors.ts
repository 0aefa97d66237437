/**
 * Errors of the write-ahead log. Each one says what happened, where, and what the operator should do: the
 * node's entry point prints `message` and exits (no stack trace, no restart loop that would hide it).
 */

/**
 * What to do with a member whose data directory cannot be used, in the one-line messages below: it is
 * replaced through a membership change (docs/storage.md, "Replacing a member whose data is damaged"), never
 * restored from a backup on its own (it would have forgotten votes and entries it acknowledged); a backup
 * restores a whole new cluster, for when a majority of members lost their data.
 */
export const REPLACE_MEMBER =
  "replace this member: from a running member, remove it (kvctl member remove <this node's NODE_ID>), then start a " +
  "node with a new NODE_ID, an empty WAL_DIR and JOIN=<a member's URL> (docs/storage.md, \"Replacing a member whose data is damaged\"); " +
  'if a majority of the members lost their data, restore a new cluster from a backup instead (kvctl snapshot restore)';

/**
 * The log on disk is damaged somewhere a crash cannot explain (not a torn final write), or is logically
 * inconsistent. Starting anyway could silently drop entries this node acknowledged, so the WAL refuses.
 */
export class WalCorruptionError extends Error {
  constructor(
    /** Absolute path of the damaged file. */
    readonly file: string,
    /** Byte offset of the first damaged record in `file`. */
    readonly offset: number,
    /** What is wrong, in a few words (e.g. "checksum mismatch"). */
    readonly reason: string,
  ) {
    super(
      `write-ahead log corrupted: ${file} at byte offset ${offset}: ${reason}. ` +
        'This is not a torn final write left by a crash, so entries this node acknowledged may be damaged; ' +
        `the node will not start on it. Keep the directory for inspection and ${REPLACE_MEMBER}. ` +
        'Do not delete or truncate the file to make the node start: that silently loses acknowledged entries ' +
        'and can break Raft safety.',
    );
    this.name = 'WalCorruptionError';
  }
}

/** Another process (or another Wal in this process) holds the directory's lock. */
export class WalLockedError extends Error {
  constructor(
    readonly dir: string,
    /** Who holds it, as far as the lock file says (e.g. "pid 1234 on host node-a"). */
    readonly holder: string,
    hint = 'stop the other process, or point WAL_DIR at a different directory',
  ) {
    super(`WAL directory ${dir} is in use by another process (${holder}); ${hint}`);
    this.name = 'WalLockedError';
  }
}

/**
 * A write or fsync failed earlier. After a failed fsync the kernel may have dropped the dirty pages and
 * marked them clean, so a retry can "succeed" without the data being on disk; the only safe continuation
 * is to restart the process and recover from what the disk really holds.
 */
export class WalFailedError extends Error {
  constructor(override readonly cause: unknown) {
    super(
      `write-ahead log failed and accepts no more writes: ${cause instanceof Error ? cause.message : String(cause)}. ` +
        'Durability can no longer be promised; restart the process (it recovers from what is on disk)',
    );
    this.name = 'WalFailedError';
  }
}

/** The Wal was closed. */
export class WalClosedError extends Error {
  constructor(dir: string) {
    super(`write-ahead log ${dir} is closed`);
    this.name = 'WalClosedError';
  }
}

/**
 * A snapshot file is damaged or truncated: a record fails its checksum, the file ends early, or its trailer
 * does not match what precedes it. Thrown by the snapshot file reader and verifier; the message names the
 * file and the byte offset of the first bad record. What to do depends on the file (see docs/storage.md):
 * a damaged backup cannot be restored, a damaged received file is fetched again, a damaged local snapshot is
 * replaced by an older one when the log allows.
 */
export class SnapshotCorruptionError extends Error {
  constructor(
    /** Path (or name) of the damaged file. */
    readonly file: string,
    /** Byte offset of the first bad record in `file`. */
    readonly offset: number,
    /** What is wrong, in a few words. */
    readonly reason: string,
  ) {
    super(`snapshot file damaged: ${file} at byte offset ${offset}: ${reason}`);
    this.name = 'SnapshotCorruptionError';
  }
}

/**
 * The node cannot rebuild its state: the snapshot it needs is damaged or missing and the log no longer holds
 * the entries to rebuild it from an older one. The message names the file and says what to do.
 */
export class SnapshotUnusableError extends Error {
  constructor(
    /** Path of the snapshot file that is damaged or missing. */
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotUnusableError';
  }
}

/** Error codes with which the disk refuses a write for want of space (or fails it outright: EIO). */
const REFUSED_CODES = new Set(['ENOSPC', 'EDQUOT', 'EIO']);

// The consensus library's StorageFullError (the contract of RaftStorage.save), reached through its ports.
export { isStorageFull, StorageFullError } from '@app/consensus/ports';
import { isStorageFull, StorageFullError } from '@app/consensus/ports';

/**
 * `err` as a StorageFullError when it is a refused write (ENOSPC, EDQUOT, or EIO unless `eioIsFatal`),
 * otherwise undefined. `what` says what was being written, for the message.
 */
export function refusedWrite(err: unknown, what: string, eioIsFatal = false): StorageFullError | undefined {
  if (isStorageFull(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (!code || !REFUSED_CODES.has(code) || (eioIsFatal && code === 'EIO')) return undefined;
  const why = code === 'EIO' ? 'an I/O error' : code === 'EDQUOT' ? 'the disk quota is exceeded' : 'the disk is full';
  const detail = err instanceof Error ? err.message : String(err);
  return new StorageFullError(`${what}: the disk refused the write (${why}: ${detail}); nothing was kept, retry once there is space`, code, err);
}

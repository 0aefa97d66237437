/**
 * Errors of the write-ahead log. Each one says what happened, where, and what the operator should do: the
 * node's entry point prints `message` and exits (no stack trace, no restart loop that would hide it).
 */

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
        'the node will not start on it. Keep the directory for inspection and either restore it from a backup ' +
        'or replace this node (remove it from the cluster and add it back with an empty WAL_DIR). ' +
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

/**
 * `kvctl snapshot save | status | restore`: backups of the whole map, as etcd's `snapshot save` and `restore`.
 * A backup is a snapshot file (docs/storage.md, "Snapshot files"); these functions download, check and
 * restore one, with the storage library's own reader and restore (the code the node itself runs).
 */
import { restoreDataDir, SnapshotCorruptionError, SnapshotFileSummary, verifySnapshotFile, WalLogger } from '@app/storage';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KvClient } from './kv-client';
import { ExitCode, KvctlError } from './kvctl-error';

/** What save and status report about a sound snapshot file. */
export interface SnapshotReport {
  file: string;
  index: number;
  term: number;
  /** Keys in the snapshot: known when it was just downloaded (the node says), not from the file alone. */
  keys?: number;
  members: string[];
  /** File size in bytes. */
  size: number;
  /** SHA-256 of the whole file, as `sha256sum` prints it. */
  sha256: string;
  chunks: number;
  contentBytes: number;
  /** Every record's CRC, the chunk count and length, and the content digest in the trailer match. */
  verified: true;
}

export interface RestoreReport {
  file: string;
  walDir: string;
  nodeId: string;
  index: number;
  term: number;
  /** The old cluster's members, as the snapshot records them (the new cluster's are the ones its nodes start with). */
  snapshotMembers: string[];
}

/** NODE_ID's own rule (config/node-config.ts). */
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The storage library logs through Nest by default; kvctl keeps stdout for its own report. */
const quietLogger = (stderr: (text: string) => void): WalLogger => ({
  log: () => undefined,
  warn: (message) => stderr(`kvctl: ${message}\n`),
  error: (message) => stderr(`kvctl: ${message}\n`),
});

/**
 * Downloads the leader's snapshot to `file`: into `file.tmp`, fsynced, verified, then renamed over `file`
 * (and the directory fsynced), so that `file` is either absent or a complete, verified backup. Refuses to
 * replace an existing `file` unless `force`.
 */
export async function saveSnapshot(client: KvClient, file: string, options: { force: boolean }): Promise<SnapshotReport> {
  const target = resolve(file);
  const tmp = `${target}.tmp`;
  if (!options.force && (await exists(target))) {
    throw new KvctlError(`${file} already exists: choose another file name, or give --force to replace it`, ExitCode.Usage);
  }
  await checkDirectory(dirname(target), file);
  const download = await client.snapshot();
  const hash = createHash('sha256');
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(tmp, 'w');
    for await (const chunk of download.body) {
      hash.update(chunk);
      await handle.write(chunk);
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    let summary: SnapshotFileSummary;
    try {
      summary = await verifySnapshotFile(tmp);
    } catch (error) {
      if (error instanceof SnapshotCorruptionError) {
        throw new KvctlError(`the snapshot downloaded from ${download.origin} is damaged (nothing was saved): ${error.message}`, ExitCode.Failed);
      }
      throw error;
    }
    if (download.index !== undefined && download.index !== summary.index) {
      throw new KvctlError(
        `the snapshot downloaded from ${download.origin} is at index ${summary.index}, its headers said ${download.index} (nothing was saved)`,
        ExitCode.Failed,
      );
    }
    if (!options.force && (await exists(target))) {
      throw new KvctlError(`${file} was created meanwhile: nothing was saved; choose another file name, or give --force`, ExitCode.Usage);
    }
    await fsp.rename(tmp, target);
    await syncDirectory(dirname(target));
    return report(file, summary, hash.digest('hex'), download.keys);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw asKvctlError(error, file);
  }
}

/** Verifies a snapshot file and reports its metadata; SnapshotCorruptionError becomes exit code 1. */
export async function snapshotStatus(file: string): Promise<SnapshotReport> {
  const summary = await verify(file);
  return report(file, summary, await sha256Of(file));
}

/**
 * Prepares a new member's data directory from a backup (restoreDataDir: verified file, empty directory, a
 * log reset at the snapshot, no configuration recorded): the new cluster's members are the ones its nodes
 * are started with, and each node replaces the snapshot's recorded members (the old cluster's) at first start.
 */
export async function restoreSnapshot(
  file: string,
  options: { walDir: string; nodeId: string },
  stderr: (text: string) => void,
): Promise<RestoreReport> {
  if (!NODE_ID.test(options.nodeId)) {
    throw new KvctlError(`--node-id '${options.nodeId}' is not a valid NODE_ID (1-64 letters, digits, '.', '_', '-')`, ExitCode.Usage);
  }
  const summary = await verify(file);
  const dir = resolve(options.walDir);
  const present = await fsp.readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw asKvctlError(error, options.walDir);
  });
  if (present.length > 0) {
    throw new KvctlError(
      `refusing to restore into ${options.walDir}: the directory is not empty (${present.length} entries). ` +
        "Restore into a new or empty directory; never over a member's existing data.",
      ExitCode.Usage,
    );
  }
  const logger = quietLogger(stderr);
  try {
    await restoreDataDir(file, dir, { logger });
  } catch (error) {
    throw asKvctlError(error, file);
  }
  return {
    file,
    walDir: options.walDir,
    nodeId: options.nodeId,
    index: summary.index,
    term: summary.term,
    snapshotMembers: summary.confState.voters,
  };
}

export function formatSnapshotReport(r: SnapshotReport): string {
  const rows: Array<[string, string]> = [
    ['index', String(r.index)],
    ['term', String(r.term)],
    ...(r.keys === undefined ? [] : ([['keys', String(r.keys)]] as Array<[string, string]>)),
    ['members', r.members.join(', ')],
    ['size', `${r.size} bytes`],
    ['sha256', r.sha256],
    ['verified', `OK (${r.chunks} chunk${r.chunks === 1 ? '' : 's'}, ${r.contentBytes} content bytes; every checksum and the digest match)`],
  ];
  return rows.map(([k, v]) => `${k.padEnd(9)}${v}\n`).join('');
}

export function formatRestoreReport(r: RestoreReport): string {
  return (
    `Restored ${r.file} (index ${r.index}, term ${r.term}) into ${r.walDir} for ${r.nodeId}\n` +
    `next     restore every other member's directory from the same file, then start ${r.nodeId} with WAL_DIR=${r.walDir}; ` +
    `the new cluster's members are the ones its nodes are started with (ADVERTISE_URL and PEER_URLS)\n`
  );
}

function report(file: string, summary: SnapshotFileSummary, sha256: string, keys?: number): SnapshotReport {
  return {
    file,
    index: summary.index,
    term: summary.term,
    ...(keys === undefined ? {} : { keys }),
    members: summary.confState.voters,
    size: summary.size,
    sha256,
    chunks: summary.chunks,
    contentBytes: summary.contentBytes,
    verified: true,
  };
}

async function verify(file: string): Promise<SnapshotFileSummary> {
  try {
    return await verifySnapshotFile(file);
  } catch (error) {
    throw asKvctlError(error, file);
  }
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function checkDirectory(dir: string, file: string): Promise<void> {
  const stat = await fsp.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) throw new KvctlError(`cannot save ${file}: the directory ${dir} does not exist`, ExitCode.Usage);
}

/** Makes a rename in `dir` durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** File-system and storage errors as one-line kvctl errors with their exit codes. */
function asKvctlError(error: unknown, path: string): unknown {
  if (error instanceof KvctlError) return error;
  if (error instanceof SnapshotCorruptionError) return new KvctlError(error.message, ExitCode.Failed);
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return new KvctlError(`no such file or directory: ${path}`, ExitCode.Usage);
  if (code === 'EISDIR') return new KvctlError(`${path} is a directory`, ExitCode.Usage);
  if (code === 'EACCES' || code === 'EPERM') return new KvctlError(`permission denied: ${(error as Error).message}`, ExitCode.Failed);
  if (error instanceof Error && /^(WalLockedError|WalCorruptionError|WalError)$/.test(error.name)) return new KvctlError(error.message, ExitCode.Failed);
  if (error instanceof Error && error.message.startsWith('refusing to restore')) return new KvctlError(error.message, ExitCode.Usage);
  if (error instanceof RangeError) return new KvctlError(error.message, ExitCode.Failed);
  return error;
}

// The write-ahead log: the Raft log and hard state on disk, with crash recovery (docs/storage.md).
export { Wal } from './wal';
export type { SaveSnapshotOptions, WalLogger, WalOptions } from './wal';
export type { WalMeta } from './meta-file';
export type { SyncMethod } from './wal-segment';
export {
  SnapshotCorruptionError,
  SnapshotUnusableError,
  WalClosedError,
  WalCorruptionError,
  WalFailedError,
  WalLockedError,
} from './errors';

// Snapshot files: the format, and the directory that holds a node's snapshots.
export { encodeSnapshotFile, readSnapshotFile, SnapshotDecoder, verifySnapshotFile } from './snapshot-file';
export type { SnapshotDecoderOptions, SnapshotFileReader, SnapshotFileSummary } from './snapshot-file';
export { SNAPSHOT_DIR, snapshotFileName, SnapshotStore } from './snapshot-store';
export type { SnapshotFileInfo, SnapshotStoreLogger, SnapshotStoreOptions } from './snapshot-store';

// A node's storage (WAL + snapshots) as the RaftStorage port, and the restore of a backup.
export { NodeStorage, openNodeStorage, restoreDataDir } from './node-storage';
export type { CurrentSnapshot, NodeStorageOptions } from './node-storage';

// The Nest module that opens it and provides it by DI.
export { NODE_STORAGE, StorageModule, WAL, WAL_MODULE_OPTIONS } from './storage.module';
export type { StorageModuleAsyncOptions, WalModuleOptions } from './storage.module';

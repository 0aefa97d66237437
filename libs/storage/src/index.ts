// The write-ahead log: the Raft log and hard state on disk, with crash recovery (docs/storage.md).
export { Wal } from './wal';
export type { WalLogger, WalOptions } from './wal';
export type { WalMeta } from './meta-file';
export type { SyncMethod } from './wal-segment';
export { WalClosedError, WalCorruptionError, WalFailedError, WalLockedError } from './errors';

// The Nest module that opens it and provides it by DI.
export { StorageModule, WAL, WAL_MODULE_OPTIONS } from './storage.module';
export type { StorageModuleAsyncOptions, WalModuleOptions } from './storage.module';

import { RAFT_STORAGE, SNAPSHOT_FILES } from '@app/consensus/ports';
import { DynamicModule, FactoryProvider, Inject, Injectable, Module, ModuleMetadata, OnApplicationShutdown } from '@nestjs/common';
import { NodeStorage, openNodeStorage } from './node-storage';
import { Wal, WalOptions } from './wal';

/** Injection token of the opened Wal. */
export const WAL = Symbol('WAL');
/** Injection token of the node's storage (WAL and snapshot files), also provided as RAFT_STORAGE. */
export const NODE_STORAGE = Symbol('NODE_STORAGE');
/** Injection token of the options the module opened it with. */
export const WAL_MODULE_OPTIONS = Symbol('WAL_MODULE_OPTIONS');

export interface WalModuleOptions extends WalOptions {
  /** The WAL directory (WAL_DIR, default ./data). Snapshot files go to its `snap/` subdirectory. */
  dir: string;
  /** Another name for segmentSize (segmentSize wins when both are given). */
  segmentBytes?: number;
}

export interface StorageModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => WalModuleOptions | Promise<WalModuleOptions>;
  /** Register the module globally (WAL injectable everywhere). */
  global?: boolean;
}

/** Closes the storage in the last shutdown phase, after the modules that write to it stopped (onModuleDestroy). */
@Injectable()
class StorageCloser implements OnApplicationShutdown {
  constructor(@Inject(NODE_STORAGE) private readonly storage: NodeStorage) {}

  async onApplicationShutdown(): Promise<void> {
    await this.storage.close();
  }
}

function openFromOptions(o: WalModuleOptions): Promise<NodeStorage> {
  const { dir, segmentBytes, ...wal } = o;
  return openNodeStorage(dir, { ...wal, segmentSize: wal.segmentSize ?? segmentBytes });
}

/**
 * Provides the node's storage, opened (locked, recovered, snapshot chosen) during module initialisation:
 * under NODE_STORAGE and as the consensus driver's RAFT_STORAGE port, its snapshot files as the transport's
 * SNAPSHOT_FILES port, and its write-ahead log under WAL.
 * Opening fails the application's start with WalLockedError, WalCorruptionError or SnapshotUnusableError,
 * whose messages say what to do.
 */
@Module({})
export class StorageModule {
  static forRootAsync(options: StorageModuleAsyncOptions): DynamicModule {
    return {
      module: StorageModule,
      global: options.global ?? false,
      imports: options.imports ?? [],
      providers: [
        { provide: WAL_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        { provide: NODE_STORAGE, useFactory: openFromOptions, inject: [WAL_MODULE_OPTIONS] },
        { provide: WAL, useFactory: (s: NodeStorage): Wal => s.wal, inject: [NODE_STORAGE] },
        { provide: RAFT_STORAGE, useExisting: NODE_STORAGE },
        { provide: SNAPSHOT_FILES, useFactory: (s: NodeStorage) => s.snapshotFiles, inject: [NODE_STORAGE] },
        StorageCloser,
      ],
      exports: [WAL, NODE_STORAGE, RAFT_STORAGE, SNAPSHOT_FILES],
    };
  }
}

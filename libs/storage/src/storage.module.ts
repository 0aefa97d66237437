import { RAFT_STORAGE } from '@app/consensus/ports';
import { DynamicModule, FactoryProvider, Inject, Injectable, Module, ModuleMetadata, OnApplicationShutdown } from '@nestjs/common';
import { walRaftStorage } from './wal-raft-storage';
import { Wal, WalOptions } from './wal';

/** Injection token of the opened Wal. */
export const WAL = Symbol('WAL');
/** Injection token of the options the module opened it with. */
export const WAL_MODULE_OPTIONS = Symbol('WAL_MODULE_OPTIONS');

export interface WalModuleOptions extends WalOptions {
  /** The WAL directory (WAL_DIR, default ./data). */
  dir: string;
}

export interface StorageModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => WalModuleOptions | Promise<WalModuleOptions>;
  /** Register the module globally (WAL injectable everywhere). */
  global?: boolean;
}

/** Closes the Wal in the last shutdown phase, after the modules that write to it stopped (onModuleDestroy). */
@Injectable()
class WalCloser implements OnApplicationShutdown {
  constructor(@Inject(WAL) private readonly wal: Wal) {}

  async onApplicationShutdown(): Promise<void> {
    await this.wal.close();
  }
}

/**
 * Provides the write-ahead log, opened (locked and recovered) during module initialisation, under `WAL`
 * (and as the consensus driver's RAFT_STORAGE port).
 * Opening fails the application's start with WalLockedError or WalCorruptionError, whose messages say what
 * to do.
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
        { provide: WAL, useFactory: (o: WalModuleOptions) => Wal.open(o.dir, o), inject: [WAL_MODULE_OPTIONS] },
        { provide: RAFT_STORAGE, useFactory: walRaftStorage, inject: [WAL] },
        WalCloser,
      ],
      exports: [WAL, RAFT_STORAGE],
    };
  }
}

import { DynamicModule, FactoryProvider, Module, ModuleMetadata } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { RAFT_STORAGE, RaftStorage, STATE_MACHINE } from '@app/consensus';
import { BackupController } from './backup/backup.controller';
import { KvBackupService } from './backup/kv-backup.service';
import { KvController } from './kv.controller';
import { KvExpiryService } from './kv-expiry.service';
import { KvMetrics } from './kv.metrics';
import { KV_OPTIONS, KvOptions, KvService } from './kv.service';
import { KvStateMachine } from './kv-state-machine';
import { StatusController } from './status.controller';
import { WatchController } from './watch/watch.controller';
import { WatchHub } from './watch/watch-hub';
import { WatchService } from './watch/watch.service';

/**
 * The map, told where a snapshot of the previous format finds its index: the consensus driver restores the
 * storage's newest snapshot (ports.ts, RaftStorage.snapshotContent), so that snapshot's metadata has it. The
 * storage is looked up when such a snapshot is restored, not injected: the consensus module imports this one,
 * and the storage is a sibling of it there.
 */
function kvStateMachine(moduleRef: ModuleRef): KvStateMachine {
  const machine = new KvStateMachine();
  machine.useSnapshotIndex(() => moduleRef.get<RaftStorage>(RAFT_STORAGE, { strict: false }).storage.snapshot().metadata.index);
  return machine;
}

/**
 * The replicated map, provided as the consensus driver's STATE_MACHINE. It has no dependencies, so the
 * consensus module can import it without a cycle.
 */
@Module({
  providers: [
    { provide: KvStateMachine, useFactory: kvStateMachine, inject: [ModuleRef] },
    { provide: STATE_MACHINE, useExisting: KvStateMachine },
    // Attached when created, before the consensus module (which needs the state machine) can apply anything.
    {
      provide: WatchHub,
      inject: [KvStateMachine],
      useFactory: (stateMachine: KvStateMachine) => {
        const hub = new WatchHub();
        stateMachine.events = hub;
        return hub;
      },
    },
  ],
  exports: [KvStateMachine, STATE_MACHINE, WatchHub],
})
export class KvStateMachineModule {}

export interface KvModuleAsyncOptions {
  /** The module that exports RaftNodeService (the configured ConsensusModule). */
  consensus: DynamicModule;
  /** Modules providing what the factory injects (beyond global ones). */
  imports?: ModuleMetadata['imports'];
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => KvOptions | Promise<KvOptions>;
}

/**
 * The public API: /kv, /watch, /status, and backups (/cluster/snapshot); the data-size gauges (prom-client's Registry
 * must be provided globally).
 */
@Module({})
export class KvModule {
  static forRootAsync({ consensus, imports, inject, useFactory }: KvModuleAsyncOptions): DynamicModule {
    return {
      module: KvModule,
      imports: [consensus, KvStateMachineModule, ...(imports ?? [])],
      controllers: [KvController, StatusController, BackupController, WatchController],
      providers: [KvService, KvExpiryService, KvBackupService, KvMetrics, WatchService, { provide: KV_OPTIONS, useFactory, inject: inject ?? [] }],
    };
  }
}

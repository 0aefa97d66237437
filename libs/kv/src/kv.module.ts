import { DynamicModule, Module } from '@nestjs/common';
import { STATE_MACHINE } from '@app/consensus';
import { KvController } from './kv.controller';
import { KV_OPTIONS, KvOptions, KvService } from './kv.service';
import { KvStateMachine } from './kv-state-machine';
import { StatusController } from './status.controller';

/**
 * The replicated map, provided as the consensus driver's STATE_MACHINE. It has no dependencies, so the
 * consensus module can import it without a cycle.
 */
@Module({
  providers: [KvStateMachine, { provide: STATE_MACHINE, useExisting: KvStateMachine }],
  exports: [KvStateMachine, STATE_MACHINE],
})
export class KvStateMachineModule {}

export interface KvModuleOptions {
  /** The module that exports RaftNodeService (the configured ConsensusModule). */
  consensus: DynamicModule;
  options: KvOptions;
}

/** The public API: /kv and /status. */
@Module({})
export class KvModule {
  static register({ consensus, options }: KvModuleOptions): DynamicModule {
    return {
      module: KvModule,
      imports: [consensus, KvStateMachineModule],
      controllers: [KvController, StatusController],
      providers: [KvService, { provide: KV_OPTIONS, useValue: options }],
    };
  }
}

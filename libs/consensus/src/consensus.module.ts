import { DynamicModule, Module, ModuleMetadata } from '@nestjs/common';
import { RaftNode } from './raft-node';
import { CONSENSUS_OPTIONS, ConsensusOptions, RaftNodeService } from './raft-node.service';
import { RaftMetrics } from './raft.metrics';

export interface ConsensusModuleAsyncOptions {
  /** Modules providing RAFT_STORAGE, PEER_TRANSPORT, CLUSTER_BOOTSTRAP and STATE_MACHINE (and what the factory injects). */
  imports?: ModuleMetadata['imports'];
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  useFactory: (...args: never[]) => ConsensusOptions | Promise<ConsensusOptions>;
}

/**
 * Provides the Raft node (RaftNodeService, also under RaftNode). Its ports come from the imported modules: RAFT_STORAGE (the WAL),
 * PEER_TRANSPORT and CLUSTER_BOOTSTRAP (cluster RPC: the transport, and the cluster identity the node starts
 * from) and STATE_MACHINE (the KV store); prom-client's Registry must be provided globally for the metrics.
 */
@Module({})
export class ConsensusModule {
  static forRootAsync(options: ConsensusModuleAsyncOptions): DynamicModule {
    return {
      module: ConsensusModule,
      imports: options.imports ?? [],
      providers: [
        { provide: CONSENSUS_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        RaftMetrics,
        RaftNodeService,
        // Consumers that only use the node (not its lifecycle) ask for RaftNode, so that tests and the
        // simulator can hand them a RaftNode on fake ports.
        { provide: RaftNode, useExisting: RaftNodeService },
      ],
      exports: [RaftNodeService, RaftNode],
    };
  }
}

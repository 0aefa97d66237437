import { HttpModule } from '@nestjs/axios';
import { DynamicModule, FactoryProvider, Module, ModuleMetadata } from '@nestjs/common';
import { OPTIONAL_PEER_TLS, peerHttpOptions } from '../peer-tls';
import { CLUSTER_ADMIN_OPTIONS, ClusterAdminOptions } from './cluster-admin.options';
import { ClusterStatusController } from './cluster-status.controller';
import { ClusterStatusService } from './cluster-status.service';
import { MembersAuthGuard } from './members-auth.guard';
import { ClusterMembersController } from './members.controller';
import { ClusterMembersService } from './members.service';

export interface ClusterAdminModuleAsyncOptions {
  /** The module that exports RaftNode (the configured ConsensusModule). */
  consensus: DynamicModule;
  /** Modules providing CLUSTER_BOOTSTRAP (the cluster's identity) and what the factory injects. */
  imports?: ModuleMetadata['imports'];
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => ClusterAdminOptions | Promise<ClusterAdminOptions>;
}

/**
 * The cluster's admin API, on every node: the membership (`/cluster/members`: list, add, promote, remove,
 * through the Raft node) and the cluster-wide status view built from per-request calls to the members
 * (@nestjs/axios's HttpService), off the Raft hot path, which has its own transport: `GET /cluster/status`.
 */
@Module({})
export class ClusterAdminModule {
  static forRootAsync(options: ClusterAdminModuleAsyncOptions): DynamicModule {
    return {
      module: ClusterAdminModule,
      imports: [
        // The status fan-out calls every member: through the TLS agent when the node has one.
        HttpModule.registerAsync({ inject: [OPTIONAL_PEER_TLS], useFactory: peerHttpOptions }),
        options.consensus, ...(options.imports ?? [])],
      controllers: [ClusterStatusController, ClusterMembersController],
      providers: [
        { provide: CLUSTER_ADMIN_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        ClusterStatusService,
        ClusterMembersService,
        MembersAuthGuard,
      ],
    };
  }
}

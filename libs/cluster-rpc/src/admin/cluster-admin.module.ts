import { HttpModule } from '@nestjs/axios';
import { DynamicModule, FactoryProvider, Module, ModuleMetadata } from '@nestjs/common';
import { CLUSTER_ADMIN_OPTIONS, ClusterAdminOptions } from './cluster-admin.options';
import { ClusterStatusController } from './cluster-status.controller';
import { ClusterStatusService } from './cluster-status.service';

export interface ClusterAdminModuleAsyncOptions {
  /** Modules providing PEER_TRANSPORT (the configured ClusterRpcModule) and what the factory injects. */
  imports?: ModuleMetadata['imports'];
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => ClusterAdminOptions | Promise<ClusterAdminOptions>;
}

/**
 * Cluster-wide admin views built from per-request calls to the members (@nestjs/axios's HttpService), off
 * the Raft hot path, which has its own transport: `GET /cluster/status`.
 */
@Module({})
export class ClusterAdminModule {
  static forRootAsync(options: ClusterAdminModuleAsyncOptions): DynamicModule {
    return {
      module: ClusterAdminModule,
      imports: [HttpModule, ...(options.imports ?? [])],
      controllers: [ClusterStatusController],
      providers: [
        { provide: CLUSTER_ADMIN_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        ClusterStatusService,
      ],
    };
  }
}

import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { Registry } from 'prom-client';
import { ConsensusModule, ConsensusOptions } from '@app/consensus';
import { ClusterRpcModule, ClusterRpcOptions } from '@app/cluster-rpc';
import { KvModule, KvStateMachineModule } from '@app/kv';
import { StorageModule, WalModuleOptions } from '@app/storage';
import { NODE_CONFIG, NodeConfig } from '@app/config';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { walMetrics } from './metrics/wal-metrics';

/** Provides the validated NodeConfig (under NODE_CONFIG and through @nestjs/config's ConfigService). */
@Module({})
class NodeConfigModule {
  static register(config: NodeConfig): DynamicModule {
    return {
      module: NodeConfigModule,
      global: true,
      imports: [ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ node: config })] })],
      providers: [{ provide: NODE_CONFIG, useValue: config }],
      exports: [NODE_CONFIG],
    };
  }
}

/**
 * The node: storage (WAL), cluster RPC (peer transport), the KV state machine, the Raft node that joins them,
 * and around it the public API, health checks and metrics. Every piece is a module of its own; this is
 * only wiring.
 */
@Module({})
export class AppModule {
  static forRoot(config: NodeConfig): DynamicModule {
    const storage = StorageModule.forRootAsync({
      inject: [NODE_CONFIG, Registry],
      useFactory: (c: NodeConfig, registry: Registry): WalModuleOptions => ({
        dir: c.walDir,
        onFsync: walMetrics(registry),
      }),
    });
    const clusterRpc = ClusterRpcModule.forRootAsync({
      inject: [NODE_CONFIG],
      useFactory: (c: NodeConfig): ClusterRpcOptions => ({
        self: c.advertiseUrl,
        name: c.nodeId,
        peers: c.peerUrls,
        clusterId: c.clusterId,
        token: c.clusterToken,
        stallTimeoutMs: Math.max(500, c.electionTimeoutMs),
      }),
    });
    const consensus = ConsensusModule.forRootAsync({
      imports: [storage, clusterRpc, KvStateMachineModule],
      inject: [NODE_CONFIG],
      useFactory: (c: NodeConfig): ConsensusOptions => ({
        id: c.advertiseUrl,
        name: c.nodeId,
        members: c.members,
        clusterId: c.clusterId,
        heartbeatIntervalMs: c.heartbeatIntervalMs,
        electionTimeoutMs: c.electionTimeoutMs,
        requestTimeoutMs: c.requestTimeoutMs,
      }),
    });
    return {
      module: AppModule,
      imports: [
        NodeConfigModule.register(config),
        MetricsModule,
        consensus,
        KvModule.register({
          consensus,
          options: { maxKeyBytes: config.maxKeyBytes, maxValueBytes: config.maxValueBytes },
        }),
        HealthModule.register(consensus),
      ],
    };
  }
}

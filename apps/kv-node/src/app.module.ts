import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { Registry } from 'prom-client';
import { ConsensusModule, ConsensusOptions } from '@app/consensus';
import { ClusterAdminModule, ClusterAdminOptions, ClusterRpcModule, ClusterRpcOptions } from '@app/cluster-rpc';
import { KvModule, KvOptions, KvStateMachineModule } from '@app/kv';
import { NODE_STORAGE, NodeStorage, StorageModule, WalModuleOptions } from '@app/storage';
import { nodeConfig, nodeConfigFrom, NodeConfigType, tokenKey } from '@app/config';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { walMetrics } from './metrics/wal-metrics';

export interface AppModuleOptions {
  /**
   * The environment the configuration is read from (default: process.env). main.ts validates it before
   * Nest starts, so that a bad variable stops the node with one line; loading it here validates it again
   * (the same function on the same variables) and provides it under nodeConfig.KEY.
   */
  env?: NodeJS.ProcessEnv;
}

/**
 * The node: storage (WAL), cluster RPC (peer transport), the KV state machine, the Raft node that joins them,
 * and around it the public API, the cluster-wide admin view, health checks and metrics. Every piece is a
 * module of its own, configured by a factory that injects the `node` configuration namespace
 * (@nestjs/config, global); this is only wiring.
 */
@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions = {}): DynamicModule {
    const config = ConfigModule.forRoot({
      isGlobal: true,
      // The environment is the configuration (the seed's variables); no .env file is read.
      ignoreEnvFile: true,
      load: [nodeConfigFrom(options.env ?? process.env)],
    });
    const storage = StorageModule.forRootAsync({
      inject: [nodeConfig.KEY, Registry],
      useFactory: (c: NodeConfigType, registry: Registry): WalModuleOptions => ({
        dir: c.walDir,
        segmentBytes: c.walSegmentBytes,
        onFsync: walMetrics(registry),
      }),
    });
    const clusterRpc = ClusterRpcModule.forRootAsync({
      // The storage's RAFT_STORAGE (the data directory's identity record) and SNAPSHOT_FILES (the snapshot
      // files the transport sends to and receives from peers).
      imports: [storage],
      inject: [nodeConfig.KEY],
      useFactory: (c: NodeConfigType): ClusterRpcOptions => ({
        nodeId: c.nodeId,
        advertiseUrl: c.advertiseUrl,
        advertiseUrlGiven: c.advertiseUrlGiven,
        httpPort: c.httpPort,
        peerUrls: c.peerUrls,
        join: c.join,
        token: c.clusterToken,
        admission: { allowAny: c.peerAllowAny, allowedAddresses: c.peerAllowedAddresses },
        stallTimeoutMs: Math.max(500, c.electionTimeoutMs),
      }),
    });
    const consensus = ConsensusModule.forRootAsync({
      // clusterRpc: PEER_TRANSPORT, and CLUSTER_BOOTSTRAP (the cluster identity the node starts from).
      imports: [storage, clusterRpc, KvStateMachineModule],
      inject: [nodeConfig.KEY, NODE_STORAGE],
      useFactory: (c: NodeConfigType, files: NodeStorage): ConsensusOptions => ({
        name: c.nodeId,
        heartbeatIntervalMs: c.heartbeatIntervalMs,
        electionTimeoutMs: c.electionTimeoutMs,
        requestTimeoutMs: c.requestTimeoutMs,
        maxPendingRequests: c.maxPendingRequests,
        snapshotEntries: c.snapshotEntries,
        snapshotCatchUpEntries: c.snapshotCatchUpEntries,
        snapshotBytes: () => files.latestSnapshot?.size,
        walDir: c.walDir,
      }),
    });
    return {
      module: AppModule,
      imports: [
        config,
        MetricsModule,
        consensus,
        KvModule.forRootAsync({
          consensus,
          inject: [nodeConfig.KEY],
          useFactory: (c: NodeConfigType): KvOptions => ({
            maxKeyBytes: c.maxKeyBytes,
            maxValueBytes: c.maxValueBytes,
            maxDataBytes: c.maxDataBytes,
            watch: { maxEntries: c.watchHistoryEntries, maxBytes: c.watchHistoryBytes, heartbeatMs: c.watchHeartbeatMs, bufferBytes: c.watchBufferBytes },
            // The leader looks for expired keys once a heartbeat.
            expiryIntervalMs: c.heartbeatIntervalMs,
            idempotencyWindowMs: c.idempotencyWindowMs,
            idempotencyMaxKeys: c.idempotencyMaxKeys,
          }),
        }),
        HealthModule.register(consensus),
        ClusterAdminModule.forRootAsync({
          consensus,
          imports: [clusterRpc], // CLUSTER_BOOTSTRAP: the cluster id and initial voters a joining node is told
          inject: [nodeConfig.KEY],
          useFactory: (c: NodeConfigType): ClusterAdminOptions => ({
            timeoutMs: c.electionTimeoutMs,
            token: c.clusterToken,
            apiTokenRole: c.apiTokens ? (t) => c.apiTokens!.get(tokenKey(t)) : undefined,
          }),
        }),
      ],
    };
  }
}

import { DynamicModule, Inject, Logger, Module, ModuleMetadata, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { PEER_TRANSPORT } from '@app/consensus';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { CLUSTER_RPC_OPTIONS, ClusterRpcOptions, HttpPeerTransport } from './http-peer-transport';
import { PeerAuthGuard } from './peer-auth.guard';
import { PeerController } from './peer.controller';

export interface ClusterRpcModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  useFactory: (...args: never[]) => ClusterRpcOptions | Promise<ClusterRpcOptions>;
}

/** Largest peer request body accepted (a batch of appends is capped well below this by the sender). */
const MAX_PEER_BODY = 128 * 1024 * 1024;

/**
 * The peer transport: provides PEER_TRANSPORT (HttpPeerTransport) and serves the peer endpoint.
 * Requires prom-client's Registry to be provided globally.
 */
@Module({})
export class ClusterRpcModule implements OnModuleInit {
  private readonly logger = new Logger('ClusterRpc');

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(CLUSTER_RPC_OPTIONS) private readonly options: ClusterRpcOptions,
  ) {}

  static forRootAsync(options: ClusterRpcModuleAsyncOptions): DynamicModule {
    return {
      module: ClusterRpcModule,
      imports: options.imports ?? [],
      controllers: [PeerController],
      providers: [
        { provide: CLUSTER_RPC_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        HttpPeerTransport,
        { provide: PEER_TRANSPORT, useExisting: HttpPeerTransport },
        ClusterRpcMetrics,
        PeerAuthGuard,
      ],
      exports: [PEER_TRANSPORT, HttpPeerTransport],
    };
  }

  onModuleInit(): void {
    // Peer batches are binary: hand them to the controller as a Buffer.
    const fastify = this.adapterHost.httpAdapter?.getInstance?.();
    if (fastify && !fastify.hasContentTypeParser('application/octet-stream')) {
      fastify.addContentTypeParser(
        'application/octet-stream',
        { parseAs: 'buffer', bodyLimit: MAX_PEER_BODY },
        (_request: unknown, body: Buffer, done: (error: Error | null, body?: Buffer) => void) => done(null, body),
      );
    }
    if (!this.options.token && this.options.peers.length > 0) {
      this.logger.warn(
        'CLUSTER_TOKEN is not set: peer traffic is unauthenticated; anyone who can reach this port can act as a member',
      );
    }
  }
}

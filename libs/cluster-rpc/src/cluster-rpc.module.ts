import { DynamicModule, Inject, Logger, Module, ModuleMetadata, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { PEER_TRANSPORT } from '@app/consensus/ports';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { CLUSTER_RPC_OPTIONS, ClusterRpcOptions, HttpPeerTransport } from './http-peer-transport';
import { PeerAuthGuard } from './peer-auth.guard';
import { PeerController } from './peer.controller';
import { PEER_STREAM_CONTENT_TYPE } from './peer-protocol';
import { Readable } from 'node:stream';

export interface ClusterRpcModuleAsyncOptions {
  imports?: ModuleMetadata['imports'];
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  useFactory: (...args: never[]) => ClusterRpcOptions | Promise<ClusterRpcOptions>;
}


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
    // A peer stream's body is read as it arrives, for as long as the stream lives: hand the controller the
    // raw request stream instead of letting Fastify buffer (and size-limit) a body that never ends.
    const fastify = this.adapterHost.httpAdapter?.getInstance?.();
    if (fastify && !fastify.hasContentTypeParser(PEER_STREAM_CONTENT_TYPE)) {
      fastify.addContentTypeParser(
        PEER_STREAM_CONTENT_TYPE,
        (_request: unknown, payload: Readable, done: (error: Error | null, body?: Readable) => void) => done(null, payload),
      );
    }
    if (!this.options.token && this.options.peers.length > 0) {
      this.logger.warn(
        'CLUSTER_TOKEN is not set: peer traffic is unauthenticated; anyone who can reach this port can act as a member',
      );
    }
  }
}

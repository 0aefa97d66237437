import { DynamicModule, Inject, Logger, Module, ModuleMetadata, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { PEER_TRANSPORT } from '@app/consensus/ports';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { CLUSTER_RPC_OPTIONS, ClusterRpcOptions, HttpPeerTransport } from './http-peer-transport';
import { PeerAdmission } from './peer-admission';
import { PeerAuthGuard } from './peer-auth.guard';
import { PeerController } from './peer.controller';
import { PEER_HEADERS, PEER_SNAPSHOT_CONTENT_TYPE, PEER_SNAPSHOT_PATH, PEER_STREAM_CONTENT_TYPE, PEER_STREAM_PATH } from './peer-protocol';
import { Readable } from 'node:stream';

export interface ClusterRpcModuleAsyncOptions {
  /**
   * Modules the factory's `inject` comes from; also where SNAPSHOT_FILES is looked up (optional: without it,
   * MsgSnap transfers are reported failed and incoming ones answered 503).
   */
  imports?: ModuleMetadata['imports'];
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  useFactory: (...args: never[]) => ClusterRpcOptions | Promise<ClusterRpcOptions>;
}

interface PeerRequest {
  routeOptions?: { url?: string };
  socket?: { remoteAddress?: string };
  headers: Record<string, string | string[] | undefined>;
}
interface PeerReply {
  code(status: number): PeerReply;
  header(name: string, value: string): PeerReply;
  send(body: unknown): PeerReply;
}

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** The routes only members may reach (PeerAdmission, before anything else). */
const PEER_PATHS: ReadonlySet<string> = new Set([PEER_STREAM_PATH, PEER_SNAPSHOT_PATH]);

/**
 * The peer transport: provides PEER_TRANSPORT (HttpPeerTransport) and serves the peer endpoints (the message
 * stream and snapshot transfers), admitting them only from the members' addresses (PeerAdmission). Requires
 * prom-client's Registry to be provided globally; uses SNAPSHOT_FILES when one of `imports` exports it.
 */
@Module({})
export class ClusterRpcModule implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('ClusterRpc');

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(CLUSTER_RPC_OPTIONS) private readonly options: ClusterRpcOptions,
    private readonly admission: PeerAdmission,
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
        {
          provide: PeerAdmission,
          inject: [CLUSTER_RPC_OPTIONS],
          useFactory: (o: ClusterRpcOptions) => {
            const logger = new Logger('ClusterRpc');
            return new PeerAdmission({
              members: [o.self, ...o.peers],
              allowAny: o.admission?.allowAny,
              allowedAddresses: o.admission?.allowedAddresses,
              warn: (message) => logger.warn(message),
            });
          },
        },
      ],
      exports: [PEER_TRANSPORT, HttpPeerTransport],
    };
  }

  async onModuleInit(): Promise<void> {
    // A peer stream's body is read as it arrives, for as long as the stream lives, and a snapshot's is written
    // to disk as it arrives: hand the controller the raw request stream instead of letting Fastify buffer (and
    // size-limit) a body that never ends or may be hundreds of megabytes.
    const fastify = this.adapterHost.httpAdapter?.getInstance?.();
    for (const type of [PEER_STREAM_CONTENT_TYPE, PEER_SNAPSHOT_CONTENT_TYPE]) {
      if (fastify && !fastify.hasContentTypeParser(type)) {
        fastify.addContentTypeParser(
          type,
          (_request: unknown, payload: Readable, done: (error: Error | null, body?: Readable) => void) => done(null, payload),
        );
      }
    }
    if (fastify) {
      // The address check runs first of all, on the request's line and headers: a stranger's stream is
      // answered 403 before a byte of its body is read, before the token is looked at, and long before any
      // of it could reach the Raft core. `connection: close`, because the refused body is never read.
      fastify.addHook('onRequest', async (request: PeerRequest, reply: PeerReply) => {
        if (!PEER_PATHS.has(request.routeOptions?.url ?? '')) return;
        const refusal = await this.admission.check(request.socket?.remoteAddress, {
          nodeId: header(request.headers[PEER_HEADERS.nodeId]),
          from: header(request.headers[PEER_HEADERS.from]),
        });
        if (!refusal) return;
        reply.code(refusal.status).header('connection', 'close').send({ error: refusal.error });
        return reply;
      });
    }
    await this.admission.start();
    if (this.admission.allowAny) {
      this.logger.warn('PEER_ALLOW_ANY is set: peer streams are admitted from any address');
    } else if (this.options.peers.length > 0) {
      this.logger.log(`peer streams admitted from the members' addresses: ${this.admission.addresses().join(', ') || 'none resolved yet'}`);
    }
    if (!this.options.token && this.options.peers.length > 0) {
      this.logger.warn(
        'CLUSTER_TOKEN is not set: peers are admitted by address only; any process on a member\'s host can act as a member',
      );
    }
  }

  onModuleDestroy(): void {
    this.admission.stop();
  }
}

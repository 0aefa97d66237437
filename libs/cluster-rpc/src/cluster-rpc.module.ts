import { HttpModule, HttpService } from '@nestjs/axios';
import { DynamicModule, Inject, Logger, Module, ModuleMetadata, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { PEER_TRANSPORT } from '@app/consensus/ports';
import { CLUSTER_BOOTSTRAP } from '@app/consensus/identity';
import { joinCluster } from './admin/join-client';
import { ClientUrls } from './client-urls';
import { ClusterBootstrapService, JOIN_CLUSTER, JoinCluster } from './cluster-bootstrap.service';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { CLUSTER_RPC_OPTIONS, ClusterRpcOptions } from './cluster-rpc.options';
import { HttpPeerTransport } from './http-peer-transport';
import { PeerAdmission } from './peer-admission';
import { PeerAuthGuard } from './peer-auth.guard';
import { PeerController } from './peer.controller';
import { OPTIONAL_PEER_TLS, PeerTls, peerHttpOptions } from './peer-tls';
import { PEER_HEADERS, PEER_HELLO_PATH, PEER_SNAPSHOT_CONTENT_TYPE, PEER_SNAPSHOT_PATH, PEER_STREAM_CONTENT_TYPE, PEER_STREAM_PATH } from './peer-protocol';
import { Readable } from 'node:stream';

export interface ClusterRpcModuleAsyncOptions {
  /**
   * Modules the factory's `inject` comes from; also where RAFT_STORAGE (required: the identity record) and
   * SNAPSHOT_FILES are looked up (optional: without it, MsgSnap transfers are reported failed and incoming ones
   * answered 503).
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
/** How long a node started with JOIN keeps asking the cluster to add it before it gives up (exit 1). */
const JOIN_TIMEOUT_MS = 120_000;

const PEER_PATHS: ReadonlySet<string> = new Set([PEER_STREAM_PATH, PEER_SNAPSHOT_PATH]);
/** The routes that need a client certificate under mutual TLS: the hello too (it is asked by members only). */
const CERTIFIED_PATHS: ReadonlySet<string> = new Set([...PEER_PATHS, PEER_HELLO_PATH]);

/**
 * The peer transport and the cluster's identity: provides PEER_TRANSPORT (HttpPeerTransport) and
 * CLUSTER_BOOTSTRAP (ClusterBootstrapService: discovery at first start, or a join, or the recorded identity),
 * and serves the peer endpoints (the message stream and snapshot transfers, admitted only from the members'
 * addresses by PeerAdmission; `GET /raft/hello`). Requires prom-client's Registry to be provided globally and
 * RAFT_STORAGE from one of `imports`; uses SNAPSHOT_FILES when one of `imports` exports it.
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
    const joinLogger = new Logger('Join');
    return {
      module: ClusterRpcModule,
      imports: [
        // Hello, join and promote calls go to peers: through the TLS agent when the node has one.
        HttpModule.registerAsync({ inject: [OPTIONAL_PEER_TLS], useFactory: peerHttpOptions }),
        ...(options.imports ?? []),
      ],
      controllers: [PeerController],
      providers: [
        {
          provide: CLUSTER_RPC_OPTIONS,
          inject: [OPTIONAL_PEER_TLS, ...(options.inject ?? [])],
          useFactory: async (tls: PeerTls | undefined, ...args: never[]): Promise<ClusterRpcOptions> => {
            const given = await options.useFactory(...args);
            return given.tls || !tls ? given : { ...given, tls };
          },
        },
        HttpPeerTransport,
        { provide: PEER_TRANSPORT, useExisting: HttpPeerTransport },
        ClusterBootstrapService,
        { provide: CLUSTER_BOOTSTRAP, useExisting: ClusterBootstrapService },
        {
          provide: JOIN_CLUSTER,
          inject: [HttpService, CLUSTER_RPC_OPTIONS],
          useFactory:
            (http: HttpService, o: ClusterRpcOptions): JoinCluster =>
            (url, request) =>
              // A cluster without a leader for a while (an election, a restart) is waited for, not given up on.
              joinCluster(http, url, request, { token: o.token, timeoutMs: JOIN_TIMEOUT_MS, log: (line) => joinLogger.log(line) }),
        },
        ClusterRpcMetrics,
        ClientUrls,
        PeerAuthGuard,
        {
          provide: PeerAdmission,
          inject: [CLUSTER_RPC_OPTIONS],
          useFactory: (o: ClusterRpcOptions) => {
            const logger = new Logger('ClusterRpc');
            // Until the node's peers are set (HttpPeerTransport.setPeers, once the cluster is known): the
            // addresses it was told of, the ones its cluster's members will stream from first.
            return new PeerAdmission({
              members: [o.advertiseUrl, ...o.peerUrls, ...(o.join ? [o.join] : [])],
              allowAny: o.admission?.allowAny,
              allowedAddresses: o.admission?.allowedAddresses,
              warn: (message) => logger.warn(message),
            });
          },
        },
      ],
      exports: [PEER_TRANSPORT, HttpPeerTransport, CLUSTER_BOOTSTRAP, ClusterBootstrapService, ClientUrls],
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
      // The client certificate (under mutual TLS) and the address are checked first of all, on the request's
      // line and headers: a stranger's stream is answered 403 before a byte of its body is read, before the
      // token is looked at, and long before any of it could reach the Raft core. `connection: close`,
      // because the refused body is never read.
      const tls = this.options.tls;
      fastify.addHook('onRequest', async (request: PeerRequest, reply: PeerReply) => {
        const route = request.routeOptions?.url ?? '';
        const claim = { nodeId: header(request.headers[PEER_HEADERS.from]) };
        // Mutual TLS first: a certificate the cluster CA did not sign is no member's, whatever its address.
        const unverified = tls && CERTIFIED_PATHS.has(route) ? tls.refusal(request.socket) : undefined;
        if (unverified) {
          const refusal = this.admission.refuseCertificate(request.socket?.remoteAddress, unverified, claim);
          reply.code(refusal.status).header('connection', 'close').send({ error: refusal.error });
          return reply;
        }
        if (!PEER_PATHS.has(route)) return;
        const refusal = await this.admission.check(request.socket?.remoteAddress, claim);
        if (!refusal) return;
        reply.code(refusal.status).header('connection', 'close').send({ error: refusal.error });
        return reply;
      });
    }
    await this.admission.start();
    if (this.options.tls?.mutual) this.logger.log('mutual TLS: peer routes need a client certificate signed by TLS_CA_FILE');
    if (this.admission.allowAny) {
      this.logger.warn('PEER_ALLOW_ANY is set: peer streams are admitted from any address');
    } else if (this.options.peerUrls.length > 0 || this.options.join) {
      this.logger.log(`peer streams admitted from the members' addresses: ${this.admission.addresses().join(', ') || 'none resolved yet'}`);
    }
    if (!this.options.token && (this.options.peerUrls.length > 0 || this.options.join)) {
      this.logger.warn(
        'CLUSTER_TOKEN is not set: peers are admitted by address only; any process on a member\'s host can act as a member',
      );
    }
  }

  onModuleDestroy(): void {
    this.admission.stop();
  }
}

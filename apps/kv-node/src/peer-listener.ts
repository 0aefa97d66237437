import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ClientUrls, PEER_HELLO_PATH, PEER_SNAPSHOT_PATH, PEER_STREAM_PATH } from '@app/cluster-rpc';
import { ConfigError } from '@app/config';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createServer, Server } from 'node:http';
import { createServer as createHttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { Socket } from 'node:net';
import { applyServerLimits, httpServerOptionsFor, SlowClientLimits } from './slow-clients';

/** What the peer listener needs of NodeConfig. */
export interface PeerListenerConfig extends SlowClientLimits {
  nodeId: string;
  httpPort: number;
  /** Where clients reach the node (HTTP_PORT). */
  clientUrl: string;
  /** Its member URL: the peer URL. */
  advertiseUrl: string;
  peerPort?: number;
  peerBindHost?: string;
  /** TLS_CERT_FILE: the peer listener serves HTTPS with the client listener's options (tls-server.ts). */
  https?: HttpsServerOptions;
}

/** The routes served on PEER_PORT, and only there (Fastify's route patterns). */
export const PEER_ROUTES: ReadonlySet<string> = new Set([PEER_STREAM_PATH, PEER_SNAPSHOT_PATH, PEER_HELLO_PATH]);

/** `/raft` and everything under it: the peer namespace, refused on HTTP_PORT when peers have a port of their own. */
const PEER_NAMESPACE = /^\/raft(\/|$)/;

/**
 * PEER_PORT (docs/cluster-rpc.md, "Peer port"): a second listener for peer traffic only, so that the peer
 * routes can be bound to a private address or firewalled apart from the client API.
 *
 * Both listeners feed one Fastify instance (its documented `routing(req, res)`), so that every route, hook,
 * guard and limit is the same code on either: PeerAdmission and CLUSTER_TOKEN still admit peers, and the
 * peer server gets the client server's slow-client settings (header timeout, keep-alive timeout, connection
 * limit; no request timeout, as the stream is an endless request; the body timeout skips the peer routes on
 * both). Which listener a request came in on is told by its socket: the peer server marks each connection it
 * accepts. On PEER_PORT only the peer routes answer (anything else: 404 naming HTTP_PORT); on HTTP_PORT,
 * `/raft/*` answers 404 naming PEER_PORT.
 */
export class PeerListener {
  private readonly peerSockets = new WeakSet<Socket>();
  private readonly server: Server;
  private readonly port: number;
  private readonly host: string;

  constructor(
    private readonly fastify: FastifyInstance,
    private readonly config: PeerListenerConfig & { peerPort: number },
  ) {
    this.port = config.peerPort;
    this.host = config.peerBindHost ?? '0.0.0.0';
    const route = (req: Parameters<FastifyInstance['routing']>[0], res: Parameters<FastifyInstance['routing']>[1]) => this.fastify.routing(req, res);
    this.server = config.https ? createHttpsServer(config.https, route) : createServer(httpServerOptionsFor(config), route);
    this.server.keepAliveTimeout = config.keepAliveTimeoutMs;
    applyServerLimits(this.server, config);
    // A request's socket is the TLS socket over HTTPS (not the TCP one 'connection' sees).
    this.server.on(config.https ? 'secureConnection' : 'connection', (socket: Socket) => this.peerSockets.add(socket));
  }

  /**
   * Installs the split of routes between the listeners. Call before any other hook is added: a request on
   * the wrong port is answered before API tokens, body limits or the removed-node answer look at it.
   */
  separateRoutes(): void {
    this.fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
      const onPeerPort = this.peerSockets.has(request.raw.socket);
      const refusal = onPeerPort ? this.refusalOnPeerPort(request) : this.refusalOnClientPort(request);
      if (refusal === undefined) return;
      // The body of a misdirected request is never read: the connection goes once the answer is out.
      await reply.code(404).header('connection', 'close').send({ error: refusal });
      return reply;
    });
    // Nest closes Fastify after the modules' destroy hooks have closed the peer streams: what is left is idle
    // keep-alive connections and requests in flight, cut like the client server's.
    this.fastify.addHook('onClose', async () => {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    });
  }

  /** Opens PEER_PORT; rejects with a ConfigError naming the variable when it cannot (port taken, no such address). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException) => {
        this.server.off('listening', listening);
        reject(this.describe(error));
      };
      const listening = () => {
        this.server.off('error', failed);
        resolve();
      };
      this.server.once('error', failed);
      this.server.once('listening', listening);
      this.server.listen(this.port, this.host);
    });
  }

  /** The peer server's address once listening (tests). */
  address(): ReturnType<Server['address']> {
    return this.server.address();
  }

  private refusalOnPeerPort(request: FastifyRequest): string | undefined {
    if (PEER_ROUTES.has(request.routeOptions?.url ?? '')) return undefined;
    return (
      `Not found: this is the peer port of ${this.config.nodeId} (PEER_PORT ${this.port}), which serves only ` +
      `${[...PEER_ROUTES].join(', ')}; clients use HTTP_PORT ${this.config.httpPort} (${this.config.clientUrl})`
    );
  }

  private refusalOnClientPort(request: FastifyRequest): string | undefined {
    if (!PEER_NAMESPACE.test(request.url.split('?')[0])) return undefined;
    return `Not found: peer traffic (/raft/*) is served on the peer port of ${this.config.nodeId} (PEER_PORT ${this.port}, ${this.config.advertiseUrl})`;
  }

  private describe(error: NodeJS.ErrnoException): Error {
    if (error.code === 'EADDRINUSE') return new ConfigError(`PEER_PORT ${this.port} is already in use on ${this.host}`);
    if (error.code === 'EADDRNOTAVAIL') return new ConfigError(`PEER_BIND_HOST ${this.host} is not an address of this machine`);
    if (error.code === 'EACCES') return new ConfigError(`PEER_PORT ${this.port} may not be opened by this user on ${this.host}`);
    return error;
  }
}

/**
 * With PEER_PORT: has HTTP_PORT and PEER_PORT split the routes (call right after the app is created, before
 * any other hook), and has this node announce its client URL to its peers (ClientUrls). Returns how to open
 * PEER_PORT (once the app listens: Fastify routes only once ready); undefined without PEER_PORT.
 */
export function installPeerPort(app: NestFastifyApplication, config: PeerListenerConfig): PeerListener | undefined {
  if (config.peerPort === undefined) return undefined;
  const listener = new PeerListener(app.getHttpAdapter().getInstance(), { ...config, peerPort: config.peerPort });
  listener.separateRoutes();
  app.get(ClientUrls).setOwn(config.clientUrl);
  return listener;
}

import { DynamicModule, Global, Inject, Module, OnModuleDestroy } from '@nestjs/common';
import { Agent as HttpsAgent } from 'node:https';
import type { TLSSocket } from 'node:tls';

/** Injection token of the node's PeerTls (provided globally by PeerTlsModule when TLS is on; absent otherwise). */
export const PEER_TLS = Symbol('PEER_TLS');

/** The node's TLS material, as TLS_CERT_FILE / TLS_KEY_FILE / TLS_CA_FILE hold it (PEM). */
export interface PeerTlsOptions {
  cert: Buffer;
  key: Buffer;
  /** The cluster CA: with it, members authenticate each other (mutual TLS). */
  ca?: Buffer;
}

/**
 * How this node calls its peers over TLS, and whether it requires them to present a certificate.
 *
 * One keep-alive https.Agent serves every outgoing peer call: the message streams (one long-lived connection
 * per peer), snapshot transfers and the per-request admin calls (hello, join, promote, status fan-out). It
 * keeps TLS sessions, so a stream re-opened after a cut resumes its session instead of a full handshake.
 * With a CA (mutual TLS) the agent presents the node's certificate and trusts that CA only; without one it
 * trusts the system's CAs (and NODE_EXTRA_CA_CERTS) and presents nothing.
 */
export class PeerTls {
  readonly agent: HttpsAgent;

  constructor(readonly options: PeerTlsOptions) {
    this.agent = new HttpsAgent({
      keepAlive: true,
      ...(options.ca ? { ca: options.ca, cert: options.cert, key: options.key } : {}),
    });
  }

  /** Peers must present a certificate signed by the cluster CA on the peer routes. */
  get mutual(): boolean {
    return this.options.ca !== undefined;
  }

  /**
   * Why a peer request on `socket` is refused under mutual TLS, or undefined when its client certificate was
   * verified against the cluster CA. The server asks every client for a certificate but accepts the handshake
   * without one (KV clients need none), so the check is made here, per route.
   */
  refusal(socket: unknown): string | undefined {
    if (!this.mutual) return undefined;
    const tls = socket as Partial<TLSSocket> | undefined;
    if (tls?.authorized === true) return undefined;
    const presented = typeof tls?.getPeerCertificate === 'function' && Object.keys(tls.getPeerCertificate() ?? {}).length > 0;
    const reason = presented ? `its certificate is not signed by the cluster CA (${String(tls?.authorizationError ?? 'unverified')})` : 'no client certificate';
    return `peer routes need a client certificate signed by the cluster CA (TLS_CA_FILE): ${reason}`;
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Provides PEER_TLS to every module (ClusterRpcModule's transport and HttpService, ClusterAdminModule's
 * HttpService). Imported next to the application module when the node serves TLS; without it, peers are
 * called over plain HTTP as before.
 */
@Global()
@Module({})
export class PeerTlsModule implements OnModuleDestroy {
  constructor(@Inject(PEER_TLS) private readonly tls: PeerTls) {}

  onModuleDestroy(): void {
    this.tls.close();
  }

  static forRoot(options: PeerTlsOptions): DynamicModule {
    return {
      module: PeerTlsModule,
      providers: [{ provide: PEER_TLS, useFactory: () => new PeerTls(options) }],
      exports: [PEER_TLS],
    };
  }
}

/** The HttpModule options for per-request peer calls: the TLS agent for https:// URLs when there is one. */
export function peerHttpOptions(tls?: PeerTls | null): { httpsAgent?: HttpsAgent } {
  return tls ? { httpsAgent: tls.agent } : {};
}

/** `inject` entry of an HttpModule.registerAsync() that uses PeerTls when it is provided. */
export const OPTIONAL_PEER_TLS = { token: PEER_TLS, optional: true } as const;

import { DynamicModule, Module } from '@nestjs/common';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { PeerTlsModule } from '@app/cluster-rpc';
import { NodeConfig } from '@app/config';
import { httpServerOptionsFor } from './slow-clients';

/**
 * Fastify's `https` option when the node serves TLS (TLS_CERT_FILE / TLS_KEY_FILE), else undefined. Fastify
 * then builds an https server from these options alone, ignoring `http`: the slow-client limits are merged in.
 *
 * With TLS_CA_FILE, every client is asked for a certificate, but the handshake does not require one (clients
 * of the KV API have none): the peer routes check `socket.authorized` (ClusterRpcModule), so a stranger gets
 * a 403 it can read instead of a failed handshake. A TLS handshake must end within HEADERS_TIMEOUT_MS, like
 * the request's headers.
 */
export function httpsServerOptionsFor(config: NodeConfig): HttpsServerOptions | undefined {
  const tls = config.tls;
  if (!tls) return undefined;
  return {
    ...httpServerOptionsFor(config),
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: false } : {}),
    handshakeTimeout: config.headersTimeoutMs,
  };
}

@Module({})
class TlsNodeModule {}

/**
 * The application module, with PeerTls provided globally when the node serves TLS: its peer streams,
 * snapshot transfers and per-request peer calls then go through the node's TLS agent.
 */
export function withPeerTls(app: DynamicModule, config: NodeConfig): DynamicModule {
  if (!config.tls) return app;
  const { cert, key, ca } = config.tls;
  return { module: TlsNodeModule, imports: [PeerTlsModule.forRoot({ cert, key, ca }), app] };
}

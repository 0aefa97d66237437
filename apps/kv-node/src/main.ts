import 'reflect-metadata';
import { HttpService } from '@nestjs/axios';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { ClusterBootstrapError } from '@app/cluster-rpc';
import { IdentityMismatchError, RaftNodeService } from '@app/consensus';
import { ConfigError, loadNodeConfig, NodeConfig } from '@app/config';
import { AppModule } from './app.module';
import { promoteAfterJoin } from './auto-promote';
import { installRemovedAnswer } from './removed-node';
import { installApiAuth } from './api-auth';
import { installCors } from './cors';
import { bodyLimitFor, installBodyLimit, parserLimitFor } from './body-limit';
import { HttpErrorsFilter } from './http-errors.filter';
import { createLogger } from './logger';
import { installPeerPort } from './peer-listener';
import { applyServerLimits, httpServerOptionsFor, installBodyTimeout } from './slow-clients';
import { setupSwagger } from './swagger';
import { httpsServerOptionsFor, withPeerTls } from './tls-server';

/** Errors whose message already says what is wrong and what to do: printed as one line, exit code 1. */
function isOperatorError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  return (
    error instanceof ConfigError ||
    error instanceof IdentityMismatchError ||
    error instanceof ClusterBootstrapError ||
    /^(WalLockedError|WalCorruptionError|WalError)$/.test(error.name) ||
    code === 'EADDRINUSE' ||
    code === 'EACCES' ||
    code === 'EADDRNOTAVAIL'
  );
}

function describe(error: Error, config?: NodeConfig): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return `HTTP_PORT ${config?.httpPort} is already in use on ${config?.bindHost}`;
  if (code === 'EADDRNOTAVAIL') return `BIND_HOST ${config?.bindHost} is not an address of this machine`;
  return error.message;
}

/** Set once a signal asked the node to stop: a start cut short by it is no failure. */
let stopping = false;

async function bootstrap(): Promise<void> {
  let config: NodeConfig | undefined;
  try {
    // Validated before Nest starts: a bad variable stops the node with one line (exit 1). The modules read
    // the same variables through @nestjs/config (AppModule loads the `node` namespace from process.env).
    config = loadNodeConfig(process.env);
    const logger = createLogger(config);
    const bodyLimit = bodyLimitFor(config.maxValueBytes);
    const https = httpsServerOptionsFor(config);
    const app = await NestFactory.create<NestFastifyApplication>(
      withPeerTls(AppModule.forRoot(), config),
      new FastifyAdapter({
        // installBodyLimit() enforces bodyLimit (and drains past it so that clients can read the 413);
        // fastify's own check only catches what that cuts off anyway.
        bodyLimit: parserLimitFor(bodyLimit),
        // The key is a path parameter, percent-encoded (up to 3 characters per byte). Fastify's default
        // limit (100 characters) would refuse valid keys with a 414 before the KV validation sees them.
        routerOptions: { maxParamLength: 3 * config.maxKeyBytes },
        // Slow and idle clients (slow-clients.ts): header timeout, idle keep-alive connections; no global
        // request timeout, since the peer stream is an endless request on this port.
        http: httpServerOptionsFor(config),
        // TLS_CERT_FILE: HTTPS instead (tls-server.ts), the same limits included.
        ...(https ? { https } : {}),
        keepAliveTimeout: config.keepAliveTimeoutMs,
      }),
      { logger, abortOnError: false },
    );
    // PEER_PORT: peer routes on a listener of their own; first of all hooks (a request on the wrong port is 404).
    const peerListener = installPeerPort(app, { ...config, https });
    const raft = app.get(RaftNodeService);
    // CORS (cors.ts): a browser's preflight is answered before the hooks below, a token check included.
    installCors(app.getHttpAdapter().getInstance(), { clientUrl: config.clientUrl, corsOrigins: config.corsOrigins, members: () => raft.members() });
    // Before anything reads a body: a client without a valid token is answered at once.
    installRemovedAnswer(app.getHttpAdapter().getInstance(), () => raft.isRemoved);
    if (config.apiTokens) installApiAuth(app.getHttpAdapter().getInstance(), config.apiTokens);
    installBodyLimit(app.getHttpAdapter().getInstance(), bodyLimit);
    // After the body limit: it fails the stream the body parser reads.
    installBodyTimeout(app.getHttpAdapter().getInstance(), config.bodyTimeoutMs);
    applyServerLimits(app.getHttpServer(), config);
    app.useGlobalFilters(new HttpErrorsFilter());
    setupSwagger(app);
    // Before listening: a SIGTERM once the API answers shuts down cleanly, even while the node starts.
    const promotion = new AbortController();
    installSignalHandlers(app, promotion);
    await app.listen(config.httpPort, config.bindHost);
    await peerListener?.listen();
    Logger.log(
      `${config.nodeId} serving on ${config.bindHost}:${config.httpPort} as ${config.clientUrl}; ` +
        (peerListener ? `peers on ${config.peerBindHost}:${config.peerPort} as ${config.advertiseUrl}; ` : '') +
        `Swagger UI at ${config.clientUrl}/docs` +
        (config.apiTokens ? `; the KV and cluster API need a token (${config.apiTokens.size} in API_TOKENS_FILE)` : ''),
      'Main',
    );
    // The Raft node starts once its cluster is known: at first start, only once every PEER_URLS entry has
    // answered this node's question (or the JOIN was granted), which needs this node to serve HTTP already.
    await app.get(RaftNodeService).started();
    promoteAfterJoin(app.get(RaftNodeService), app.get(HttpService, { strict: false }), config, promotion.signal);
  } catch (error) {
    if (stopping) return;
    if (isOperatorError(error)) {
      process.stderr.write(`${config?.nodeId ?? 'kv-node'}: cannot start: ${describe(error, config)}\n`);
    } else {
      process.stderr.write(`${config?.nodeId ?? 'kv-node'}: failed to start: ${(error as Error)?.stack ?? String(error)}\n`);
    }
    process.exit(1);
  }
}

/**
 * SIGTERM / SIGINT: hand leadership over if this node leads, stop the Raft node (so nothing more is written),
 * close the HTTP server and the WAL, exit 0. A second signal exits at once.
 */
function installSignalHandlers(app: NestFastifyApplication, promotion: AbortController): void {
  const shutdown = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    promotion.abort();
    Logger.log(`${signal}: shutting down`, 'Main');
    try {
      await app.get(RaftNodeService).stop({ transferLeadership: true });
      await app.close();
      process.exit(0);
    } catch (error) {
      Logger.error(`shutdown failed: ${(error as Error).message}`, 'Main');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

void bootstrap();

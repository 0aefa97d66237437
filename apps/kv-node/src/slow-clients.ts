import { STREAMED_BODY_ROUTE } from '@app/cluster-rpc';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Server, ServerOptions } from 'node:http';
import type { Readable } from 'node:stream';

/** The limits that keep slow or idle clients from holding the node (from NodeConfig). */
export interface SlowClientLimits {
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

/**
 * Options for Node's HTTP server, given to Fastify as `http`. `requestTimeout` stays 0: the peer stream
 * (`POST /raft/stream`) is an endless request on the same port; client bodies are timed per route by
 * installBodyTimeout() instead. Node checks header timeouts every `connectionsCheckingInterval`
 * (30 s by default, far coarser than the timeout itself), so the check runs at least twice per timeout.
 */
export function httpServerOptionsFor(limits: SlowClientLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: 0,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(limits.headersTimeoutMs / 2))),
  };
}

/** Settings that only exist on the server once created: the connection limit. */
export function applyServerLimits(server: Server, limits: SlowClientLimits): void {
  // Past the limit Node closes new connections at once: clients and peers alike. Established peer streams
  // keep their connection; see docs/api.md ("Slow clients") for the interplay.
  server.maxConnections = limits.maxConnections;
}

/** The 408: answered through Fastify's error path, which adds `Connection: close` (the filter shapes the JSON). */
export class BodyTimeoutError extends Error {
  readonly statusCode = 408;
  readonly code = 'RAFTKV_BODY_TIMEOUT';

  constructor(timeoutMs: number) {
    super(`Request body was not complete within ${timeoutMs} ms`);
    this.name = 'BodyTimeoutError';
  }
}

interface Timed {
  timer: NodeJS.Timeout;
  payload?: Readable;
}

/**
 * Answers 408 (JSON, `Connection: close`) to a client whose request body is not complete within `timeoutMs`
 * after its headers, then closes its connection. The timer starts when the headers are in (onRequest) and
 * stops once the body is parsed (preValidation) or the request ends otherwise. Routes marked with
 * STREAMED_BODY_ROUTE (the peer stream, an endless body) are left alone.
 *
 * Install after installBodyLimit(): the body stream seen here is then the one Fastify's parser reads, and
 * failing it makes the parser answer with this error (through the usual error path).
 */
export function installBodyTimeout(fastify: FastifyInstance, timeoutMs: number): void {
  const timed = new WeakMap<FastifyRequest, Timed>();
  const stop = (request: FastifyRequest) => {
    const entry = timed.get(request);
    if (entry) clearTimeout(entry.timer);
    timed.delete(request);
  };

  fastify.addHook('onRequest', (request, reply, done) => {
    const route = request.routeOptions.config as { streamedBody?: boolean } | undefined;
    if (route?.streamedBody === STREAMED_BODY_ROUTE.streamedBody) return done();
    const timer = setTimeout(() => expire(request, reply), timeoutMs);
    timed.set(request, { timer });
    request.raw.once('close', () => stop(request));
    done();
  });

  fastify.addHook('preParsing', async (request, _reply, payload) => {
    const entry = timed.get(request);
    if (entry) entry.payload = payload;
    return payload;
  });

  fastify.addHook('preValidation', (request, _reply, done) => {
    stop(request);
    done();
  });

  const expire = (request: FastifyRequest, reply: FastifyReply) => {
    const entry = timed.get(request);
    timed.delete(request);
    if (reply.sent || reply.raw.headersSent) return;
    const error = new BodyTimeoutError(timeoutMs);
    // Make sure the connection goes once the answer is out, even if something kept it alive.
    reply.raw.once('finish', () => request.raw.socket?.destroy());
    const payload = entry?.payload;
    if (payload && payload.listenerCount('error') > 0) {
      // The body parser listens: failing its stream answers with the error and `Connection: close`.
      payload.emit('error', error);
      return;
    }
    void reply.header('connection', 'close');
    reply.send(error);
  };
}

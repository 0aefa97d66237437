import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger, NotFoundException } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';

const KV_ROUTE = /^\/kv\/[^/?]+(\?.*)?$/;
const KV_METHODS = 'GET, PUT, DELETE';

/** An error raised outside Nest's handlers (a Fastify hook) that still carries an HTTP status. */
interface FastifyError extends Error {
  statusCode?: number;
  code?: string;
}

/**
 * Shapes every error answer as JSON with an `error` field naming the problem, whatever raised it: a DTO
 * validation, an unknown route, Fastify's body parsing, or a bug (500, logged with its stack).
 */
@Catch()
export class HttpErrorsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Http');

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const { status, body, headers } = this.describe(error, request);
    if (headers) void reply.headers(headers);
    void reply.status(status).send(body);
  }

  private describe(
    error: unknown,
    request: FastifyRequest,
  ): { status: number; body: Record<string, unknown>; headers?: Record<string, string> } {
    if (error instanceof NotFoundException && this.isUnmatchedRoute(error)) {
      const path = request.url.split('?')[0];
      if (KV_ROUTE.test(request.url)) {
        return {
          status: HttpStatus.METHOD_NOT_ALLOWED,
          body: { error: `Method ${request.method} is not allowed on /kv/:key (allowed: ${KV_METHODS})` },
          headers: { allow: KV_METHODS },
        };
      }
      if (path === '/kv' || path === '/kv/') return { status: 400, body: { error: 'key must not be empty: use /kv/:key' } };
      return { status: 404, body: { error: `Not found: ${request.method} ${path}` } };
    }
    if (error instanceof HttpException && error.getStatus() === HttpStatus.UNSUPPORTED_MEDIA_TYPE) {
      const type = request.headers['content-type'] ?? 'none';
      return { status: 415, body: { error: `Unsupported Content-Type '${type}': send application/json` } };
    }
    if (error instanceof HttpException) {
      const response = error.getResponse();
      if (typeof response === 'string') return { status: error.getStatus(), body: { error: response } };
      const obj = response as Record<string, unknown>;
      // Terminus answers with its own health document; DTO validation already has an `error` line.
      if (typeof obj.error === 'string' && obj.message === undefined) return { status: error.getStatus(), body: obj };
      if ('status' in obj && 'details' in obj) return { status: error.getStatus(), body: obj };
      const message = Array.isArray(obj.message) ? obj.message.join('; ') : String(obj.message ?? error.message);
      return { status: error.getStatus(), body: { error: message } };
    }
    const fastifyError = error as FastifyError;
    if (typeof fastifyError?.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
      return { status: fastifyError.statusCode, body: { error: fastifyError.message } };
    }
    this.logger.error(`${request.method} ${request.url} failed`, (error as Error)?.stack ?? String(error));
    return { status: 500, body: { error: 'Internal error; nothing was changed by this request unless stated otherwise in the logs' } };
  }

  private isUnmatchedRoute(error: NotFoundException): boolean {
    return /^Cannot (GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS|SEARCH|PROPFIND|TRACE|CONNECT)/.test(error.message);
  }
}

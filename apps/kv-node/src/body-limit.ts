import { STREAMED_BODY_ROUTE } from '@app/cluster-rpc';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Transform, TransformCallback } from 'node:stream';

/**
 * How many bytes past the limit are read and thrown away so that the client can finish sending and then
 * read the 413. A client that sends more than that is cut off.
 */
export const OVERSIZE_DRAIN_BYTES = 16 * 1024 * 1024;

/** The HTTP body limit for a given MAX_VALUE_BYTES: a value may be escaped to twice its size in JSON. */
export function bodyLimitFor(maxValueBytes: number): number {
  return 2 * maxValueBytes + 64 * 1024;
}

/**
 * The body limit as fastify's own `bodyLimit` needs it: the limit plus what is drained, so that its check
 * (which answers and closes at once) only catches what installBodyLimit() cuts off anyway.
 */
export function parserLimitFor(limit: number, drainBytes = OVERSIZE_DRAIN_BYTES): number {
  return limit + drainBytes;
}

/** The 413 error: fastify's error path answers it with `Connection: close` (the filter shapes the JSON). */
export class BodyTooLargeError extends Error {
  readonly statusCode = 413;
  readonly code = 'FST_ERR_CTP_BODY_TOO_LARGE';

  constructor(limit: number) {
    super(`Request body is too large: the limit is ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Enforces the request body limit so that every client can read the 413.
 *
 * Fastify's own limit answers 413 and closes the connection the moment the body passes the limit, while
 * the client is still sending: the kernel then resets the connection (unread data), and a client that
 * writes the whole body before reading (Node's fetch, the `http` module) sees EPIPE or ECONNRESET instead of
 * the answer. Here, a body past the limit is read on and discarded up to `drainBytes` more; once the client
 * has sent it all, the 413 is answered (JSON, `Connection: close`) and the connection closed. Memory stays
 * bounded: at most `limit` bytes are kept, the rest is dropped as it arrives. A client that sends more than
 * `limit + drainBytes` (or declares it in Content-Length) is answered at once and cut off: it may see a
 * reset rather than the answer, which is the price of not reading gigabytes.
 *
 * Routes marked with STREAMED_BODY_ROUTE (the peer stream: an endless body the handler consumes itself)
 * are left alone: a limit there would cut the stream after `limit` bytes.
 */
export function installBodyLimit(fastify: FastifyInstance, limit: number, drainBytes = OVERSIZE_DRAIN_BYTES): void {
  fastify.addHook('preParsing', async (request, reply, payload) => {
    const route = request.routeOptions.config as { streamedBody?: boolean } | undefined;
    if (route?.streamedBody === STREAMED_BODY_ROUTE.streamedBody) return payload;
    const declared = Number(request.headers['content-length']);
    if (declared > limit + drainBytes) {
      closeAfter(reply);
      throw new BodyTooLargeError(limit);
    }
    // The HTTP parser delivers no more than a declared length, and nothing for a request that declares
    // neither a length nor chunked encoding (a GET): only chunked bodies and larger declared ones need
    // counting. The common cases stay off the hot path.
    if (declared <= limit || (Number.isNaN(declared) && request.headers['transfer-encoding'] === undefined)) return payload;
    const limited = new LimitedBody(limit, drainBytes);
    payload.on('error', (err) => limited.destroy(err));
    return payload.pipe(limited);
  });
}

/** Without it, Node would read the whole unread body (however large) to keep the connection alive. */
function closeAfter(reply: FastifyReply): void {
  void reply.header('connection', 'close');
}

/** Passes the body through up to `limit` bytes; past it, discards up to `drainBytes`, then fails with 413. */
class LimitedBody extends Transform {
  private received = 0;

  constructor(
    private readonly limit: number,
    private readonly drainBytes: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.received <= this.limit) return callback(null, chunk);
    // Failing unpipes the request: nothing more is read, and the connection is closed after the answer.
    if (this.received > this.limit + this.drainBytes) return callback(new BodyTooLargeError(this.limit));
    callback(); // over the limit: dropped, so that the client can finish sending and read the answer
  }

  override _flush(callback: TransformCallback): void {
    callback(this.received > this.limit ? new BodyTooLargeError(this.limit) : null);
  }
}

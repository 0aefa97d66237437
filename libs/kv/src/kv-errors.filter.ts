import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import {
  NoLeaderError,
  NotLeaderError,
  OverloadedError,
  ProposalLostError,
  ProposalRejectedError,
  ProposalTimeoutError,
  ReadTimeoutError,
  RemovedFromClusterError,
  ShuttingDownError,
} from '@app/consensus';
import { FastifyReply, FastifyRequest } from 'fastify';
import { InvalidConditionError, InvalidKeyError, KeyNotFoundError, PreconditionFailedError, ValueTooLargeError } from './kv.errors';

interface Mapped {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * The one place where the errors of a KV request become HTTP answers. A write's answer always tells the
 * client whether it may have taken effect: `outcome: "failed"` (safe to retry) or `outcome: "unknown"`.
 */
export function mapKvError(error: Error, request: { url: string }): Mapped | undefined {
  if (error instanceof NotLeaderError) {
    return {
      status: 307,
      body: { error: 'Not leader', leader: error.leaderName, leaderUrl: error.leaderUrl },
      headers: { location: `${error.leaderUrl}${request.url}` },
    };
  }
  if (error instanceof NoLeaderError) {
    return { status: 503, body: { error: 'No leader', outcome: 'failed' }, headers: { 'retry-after': '1' } };
  }
  if (error instanceof ProposalTimeoutError) {
    return {
      status: 503,
      body: {
        error:
          `Write outcome unknown: not committed within ${error.timeoutMs} ms (no quorum reachable?). ` +
          'It may still commit later if a quorum returns; read the key to find out',
        outcome: 'unknown',
      },
      headers: { 'retry-after': '1' },
    };
  }
  if (error instanceof ProposalLostError) {
    return {
      status: 503,
      body: { error: 'Write failed: leadership changed before it committed; it did not take effect and is safe to retry', outcome: 'failed' },
      headers: { 'retry-after': '1' },
    };
  }
  if (error instanceof ProposalRejectedError) {
    return {
      status: 503,
      body: { error: `Write refused by the leader (${error.message}); safe to retry`, outcome: 'failed' },
      headers: { 'retry-after': '1' },
    };
  }
  if (error instanceof ReadTimeoutError) {
    return {
      status: 503,
      body: { error: `Read failed: ${error.message}` },
      headers: { 'retry-after': '1' },
    };
  }
  if (error instanceof OverloadedError) {
    return {
      status: 503,
      body: { error: `Overloaded: ${error.message}; nothing was ${error.kind === 'write' ? 'written' : 'read'}, retry shortly`, outcome: 'failed' },
      headers: { 'retry-after': '1' },
    };
  }
  if (error instanceof ShuttingDownError) {
    return { status: 503, body: { error: 'Node is shutting down', outcome: 'failed' }, headers: { 'retry-after': '1' } };
  }
  if (error instanceof RemovedFromClusterError) return { status: 410, body: { error: 'Removed from the cluster', outcome: 'failed' } };
  if (error instanceof KeyNotFoundError) return { status: 404, body: { error: 'Key not found', key: error.key } };
  if (error instanceof InvalidKeyError) return { status: 400, body: { error: error.message } };
  if (error instanceof ValueTooLargeError) return { status: 413, body: { error: error.message } };
  if (error instanceof InvalidConditionError) return { status: 400, body: { error: error.message } };
  if (error instanceof PreconditionFailedError) {
    return {
      status: 412,
      body: { error: error.message, key: error.key, modIndex: error.modIndex, outcome: 'failed' },
      ...(error.modIndex === null ? {} : { headers: { etag: `"${error.modIndex}"` } }),
    };
  }
  return undefined;
}

@Catch(
  NotLeaderError,
  NoLeaderError,
  ProposalTimeoutError,
  ProposalLostError,
  ProposalRejectedError,
  ReadTimeoutError,
  ShuttingDownError,
  RemovedFromClusterError,
  OverloadedError,
  InvalidKeyError,
  KeyNotFoundError,
  ValueTooLargeError,
  InvalidConditionError,
  PreconditionFailedError,
)
export class KvErrorsFilter implements ExceptionFilter {
  catch(error: Error, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const mapped = mapKvError(error, request)!;
    if (mapped.headers) reply.headers(mapped.headers);
    void reply.status(mapped.status).send(mapped.body);
  }
}

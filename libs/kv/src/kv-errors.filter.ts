import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import {
  isStorageFull,
  NoLeaderError,
  NotLeaderError,
  OverloadedError,
  ProposalLostError,
  ProposalRejectedError,
  ProposalTimeoutError,
  ReadTimeoutError,
  RemovedFromClusterError,
  ShuttingDownError,
  StorageFullError,
} from '@app/consensus';
import { FastifyReply, FastifyRequest } from 'fastify';
import {
  DataQuotaExceededError,
  IdempotencyKeyReusedError,
  InvalidConditionError,
  InvalidKeyError,
  InvalidWriteOptionError,
  KeyNotFoundError,
  PreconditionFailedError,
  ValueTooLargeError,
} from './kv.errors';
import { WatchIndexCompactedError } from './watch/watch-hub';

/** Sent with the answer to a retry that was not applied again: the first write's outcome. */
export const REPLAYED_HEADER = 'idempotent-replayed';

interface Mapped {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * The one place where the errors of a KV request become HTTP answers. A write's answer always tells the
 * client whether it may have taken effect: `outcome: "failed"` (safe to retry) or `outcome: "unknown"`.
 * `request.method` tells a refused read (GET, HEAD) from a refused write where the error is the same.
 */
export function mapKvError(error: Error, request: { url: string; method?: string }): Mapped | undefined {
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
  if (isStorageFull(error)) {
    // A frozen node serves no linearizable read (it cannot confirm one), but its own copy is there to read.
    if (request.method === 'GET' || request.method === 'HEAD') {
      return {
        status: 503,
        body: {
          error:
            `Read refused: this node's disk is full (${error.message}) and it serves no linearizable read until space returns; ` +
            "retry on another node, or read this node's copy (possibly behind) with ?consistency=stale",
        },
        headers: { 'retry-after': '1' },
      };
    }
    return {
      status: 507,
      body: {
        error: `This node's disk is full: ${error.message}; writes are refused until space returns (reads are served)`,
        outcome: 'failed',
      },
    };
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
  if (error instanceof WatchIndexCompactedError) return { status: 410, body: { error: error.message, oldestIndex: error.oldestIndex } };
  if (error instanceof KeyNotFoundError) return { status: 404, body: { error: 'Key not found', key: error.key } };
  if (error instanceof InvalidKeyError) return { status: 400, body: { error: error.message } };
  if (error instanceof ValueTooLargeError) return { status: 413, body: { error: error.message } };
  if (error instanceof DataQuotaExceededError) {
    // 507, as etcd's NOSPACE alarm; no Retry-After: retrying does not help until keys are deleted.
    return {
      status: 507,
      body: { error: error.message, outcome: 'failed', dataBytes: error.dataBytes, quotaBytes: error.quotaBytes },
    };
  }
  if (error instanceof InvalidConditionError || error instanceof InvalidWriteOptionError) return { status: 400, body: { error: error.message } };
  if (error instanceof IdempotencyKeyReusedError) return { status: 422, body: { error: error.message, outcome: 'failed' } };
  if (error instanceof PreconditionFailedError) {
    return {
      status: 412,
      body: { error: error.message, key: error.key, modIndex: error.modIndex, outcome: 'failed' },
      ...(error.modIndex === null && !error.replayed
        ? {}
        : {
            headers: {
              ...(error.modIndex === null ? {} : { etag: `"${error.modIndex}"` }),
              ...(error.replayed ? { [REPLAYED_HEADER]: 'true' } : {}),
            },
          }),
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
  StorageFullError,
  InvalidKeyError,
  KeyNotFoundError,
  ValueTooLargeError,
  DataQuotaExceededError,
  InvalidConditionError,
  PreconditionFailedError,
  WatchIndexCompactedError,
  InvalidWriteOptionError,
  IdempotencyKeyReusedError,
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

import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import { mapKvError } from '@app/kv';
import { FastifyReply, FastifyRequest } from 'fastify';
import { LEADER_ERRORS, MembershipChangeRefusedError, ProposalTimeoutError, RemovedFromClusterError } from './membership-node';

type Mapped = NonNullable<ReturnType<typeof mapKvError>>;

/**
 * The errors of a membership request as HTTP answers. The leadership and availability errors (307 to the
 * leader, 503 No leader, shutting down, overloaded...) are answered exactly as for `PUT /kv`, by the KV
 * library's mapping; only what differs for a membership change is mapped here.
 */
export function mapMembershipError(error: Error, request: { url: string }): Mapped | undefined {
  if (error instanceof MembershipChangeRefusedError) return { status: error.status, body: { error: error.reason } };
  if (error instanceof RemovedFromClusterError) return { status: 410, body: { error: 'Removed from the cluster' } };
  if (error instanceof ProposalTimeoutError) {
    return {
      status: 503,
      body: {
        error:
          `Membership change outcome unknown: not committed within ${error.timeoutMs} ms (no quorum reachable?). ` +
          'It may still take effect if a quorum returns; GET /cluster/members to find out',
        outcome: 'unknown',
      },
      headers: { 'retry-after': '1' },
    };
  }
  return mapKvError(error, request);
}

@Catch(MembershipChangeRefusedError, RemovedFromClusterError, ProposalTimeoutError, ...LEADER_ERRORS)
export class MembersErrorsFilter implements ExceptionFilter {
  catch(error: Error, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const { status, body, headers = {} } = mapMembershipError(error, http.getRequest<FastifyRequest>())!;
    void http.getResponse<FastifyReply>().headers(headers).status(status).send(body);
  }
}

import { HttpService } from '@nestjs/axios';
import { Inject, Injectable } from '@nestjs/common';
import { firstValueFrom, timeout, TimeoutError } from 'rxjs';
import { CLUSTER_ADMIN_OPTIONS, ClusterAdminOptions } from './cluster-admin.options';
import { ClusterStatusDto, MemberStatusDto } from './cluster-status.dto';
import { MemberInfo, MembershipNode, RaftNode } from './membership-node';

/**
 * The cluster-wide status view: asks every member of the configuration this node has applied
 * (RaftNode.members(), at the client URL it knows for each) for its `GET /status`, all at once, each request bounded
 * by the configured timeout, and reports each member's answer or why there is none. Never fails as a
 * whole: a member that is down is one entry saying so.
 *
 * `GET /status` is a public endpoint (PeerAuthGuard protects only the peer stream), so no CLUSTER_TOKEN is
 * sent: the secret is not handed to endpoints that do not ask for it.
 */
@Injectable()
export class ClusterStatusService {
  constructor(
    private readonly http: HttpService,
    @Inject(CLUSTER_ADMIN_OPTIONS) private readonly options: ClusterAdminOptions,
    @Inject(RaftNode) private readonly raft: Pick<MembershipNode, 'members'>,
  ) {}

  async status(): Promise<ClusterStatusDto> {
    return { nodes: await Promise.all(this.raft.members().members.map((m) => this.member(m))) };
  }

  private async member(m: MemberInfo): Promise<MemberStatusDto> {
    const { nodeId, role } = m;
    if (m.url === undefined) return { nodeId, role, reachable: false, error: 'no address known for this member' };
    // `GET /status` is a client route: on a member serving peers on a PEER_PORT, its client URL answers it
    // (while this node has not heard it, the member URL answers 404 naming the client port).
    const url = m.url;
    const clientUrl = m.clientUrl ?? url;
    try {
      const answer = await firstValueFrom(
        this.http
          .get<unknown>(`${clientUrl}/status`, {
            timeout: this.options.timeoutMs,
            maxRedirects: 0,
            responseType: 'json',
            validateStatus: () => true,
          })
          // Unsubscribing on timeout cancels the request (HttpService aborts it).
          .pipe(timeout({ first: this.options.timeoutMs })),
      );
      if (answer.status !== 200 || typeof answer.data !== 'object' || answer.data === null) {
        const what = answer.status !== 200 ? `HTTP ${answer.status}` : 'a body that is not a status object';
        return { nodeId, url, role, reachable: true, error: `GET /status answered ${what}` };
      }
      return { nodeId, url, role, reachable: true, status: answer.data as Record<string, unknown> };
    } catch (error) {
      return { nodeId, url, role, reachable: false, error: this.describe(error) };
    }
  }

  private describe(error: unknown): string {
    if (error instanceof TimeoutError) return `no answer within ${this.options.timeoutMs} ms`;
    const { code, message, errors, cause } = (error ?? {}) as { code?: unknown; message?: unknown; errors?: unknown; cause?: unknown };
    if (typeof message === 'string' && message !== '') return message;
    // Node reports a refused connection to a name with several addresses (localhost: ::1 and 127.0.0.1) as an
    // AggregateError with an empty message; axios keeps it as the cause. Its parts say what happened.
    const parts = (errors ?? (cause as { errors?: unknown } | undefined)?.errors) as Array<{ message?: unknown }> | undefined;
    const messages = Array.isArray(parts) ? parts.map((p) => p?.message).filter((m): m is string => typeof m === 'string' && m !== '') : [];
    if (messages.length > 0) return messages.join('; ');
    return typeof code === 'string' ? code : 'request failed';
  }
}

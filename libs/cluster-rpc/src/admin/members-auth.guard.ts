import { CanActivate, ExecutionContext, ForbiddenException, Inject, Injectable, Optional, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { PEER_TLS, PeerTls } from '../peer-tls';
import { CLUSTER_ADMIN_OPTIONS, ClusterAdminOptions } from './cluster-admin.options';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Who may read and change the membership (`/cluster/members...`). Open when neither CLUSTER_TOKEN nor
 * API_TOKENS_FILE is set (the seed's walkthroughs). Otherwise the request needs `Authorization: Bearer
 * <token>` with either CLUSTER_TOKEN (what a joining node holds: it is given the cluster's secret, not a
 * client token) or an API token of role `admin` (what an operator's kvctl holds, as for /cluster/snapshot).
 * 401 (with `WWW-Authenticate: Bearer`) without a known token, 403 for an API token of a lesser role.
 *
 * Under mutual TLS (TLS_CA_FILE), a change (any method but GET) also needs a client certificate signed by the
 * cluster CA, checked first (403): a node that could not stream with the members is not let in as one, and an
 * operator's kvctl presents one with --cert/--key. Reading the membership needs none.
 */
@Injectable()
export class MembersAuthGuard implements CanActivate {
  private readonly clusterToken?: Buffer;

  constructor(
    @Inject(CLUSTER_ADMIN_OPTIONS) private readonly options: ClusterAdminOptions,
    @Optional() @Inject(PEER_TLS) private readonly tls?: PeerTls,
  ) {
    if (options.token) this.clusterToken = digest(options.token);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<{ method?: string; socket?: unknown }>();
    const unverified = this.tls && request.method !== 'GET' ? this.tls.refusal(request.socket) : undefined;
    if (unverified) throw new ForbiddenException(`membership changes: ${unverified}`);
    const { apiTokenRole } = this.options;
    if (!this.clusterToken && !apiTokenRole) return true;
    const header = http.getRequest<{ headers: Record<string, unknown> }>().headers.authorization;
    const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    // Comparing digests keeps the comparison constant-time whatever the presented length.
    if (token && this.clusterToken && timingSafeEqual(digest(token), this.clusterToken)) return true;
    const role = token && apiTokenRole ? apiTokenRole(token) : undefined;
    if (role === 'admin') return true;
    if (role) throw new ForbiddenException(`This token's role '${role}' is not allowed here: it needs 'admin' (or CLUSTER_TOKEN)`);
    http.getResponse<{ header(name: string, value: string): unknown }>().header('www-authenticate', 'Bearer realm="raft-kv"');
    throw new UnauthorizedException(
      `Missing or unknown token: membership routes need Authorization: Bearer <${this.clusterToken ? 'CLUSTER_TOKEN' : ''}` +
        `${this.clusterToken && apiTokenRole ? ' or ' : ''}${apiTokenRole ? 'an admin API token' : ''}>`,
    );
  }
}

import { CanActivate, ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { CLUSTER_RPC_OPTIONS, ClusterRpcOptions } from './cluster-rpc.options';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** With CLUSTER_TOKEN set, peer endpoints require `Authorization: Bearer <token>` (401 otherwise). */
@Injectable()
export class PeerAuthGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(@Inject(CLUSTER_RPC_OPTIONS) options: ClusterRpcOptions) {
    if (options.token) this.expected = digest(`Bearer ${options.token}`);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) return true;
    const header = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>().headers.authorization;
    // Comparing digests keeps the comparison constant-time whatever the presented length.
    if (typeof header === 'string' && timingSafeEqual(digest(header), this.expected)) return true;
    throw new UnauthorizedException('missing or wrong cluster token (CLUSTER_TOKEN) for a peer endpoint');
  }
}

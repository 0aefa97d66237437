import { ApiRole, roleAllows, tokenKey } from '@app/config';
import type { FastifyInstance } from 'fastify';

/**
 * The role a request needs with API_TOKENS_FILE set: reads of /kv (and /watch) need `read`, writes `readwrite`, the
 * cluster's admin endpoints (/cluster/...) `admin`. Undefined: open (status, health, metrics, the OpenAPI
 * document; the peer stream has its own admission and CLUSTER_TOKEN).
 */
export function requiredRole(method: string, url: string): ApiRole | undefined {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (path === '/kv' || path.startsWith('/kv/')) return method === 'GET' || method === 'HEAD' ? 'read' : 'readwrite';
  if (path === '/watch') return 'read';
  // The membership routes check their own tokens (CLUSTER_TOKEN, which a joining node holds, or an admin token).
  if (path === '/cluster/members' || path.startsWith('/cluster/members/')) return undefined;
  if (path === '/cluster' || path.startsWith('/cluster/')) return 'admin';
  return undefined;
}

/**
 * Client authorization by bearer token (API_TOKENS_FILE): a request to a protected route without a known
 * token is answered 401 (with `WWW-Authenticate: Bearer`), one whose token's role is not enough 403, both
 * before the body is read. Tokens are compared by their SHA-256 (tokenKey), never as plain strings.
 */
export function installApiAuth(fastify: FastifyInstance, tokens: ReadonlyMap<string, ApiRole>): void {
  fastify.addHook('onRequest', async (request, reply) => {
    const needs = requiredRole(request.method, request.url);
    if (!needs) return;
    const header = request.headers.authorization;
    const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const role = token ? tokens.get(tokenKey(token)) : undefined;
    if (!role) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="raft-kv"')
        .send({ error: 'Missing or unknown API token: send Authorization: Bearer <token> (API_TOKENS_FILE)' });
    }
    if (!roleAllows(role, needs)) {
      return reply.code(403).send({ error: `This token's role '${role}' is not allowed here: it needs '${needs}'` });
    }
  });
}

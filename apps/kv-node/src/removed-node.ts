import { FastifyInstance } from 'fastify';

/**
 * Once the node was removed from the cluster it takes no part: every request is answered
 * `410 {"error":"Removed from the cluster"}` (stale reads and the members view included, which would
 * otherwise show a frozen, misleading view) until the process exits. Health and metrics keep answering, so
 * that a supervisor and Prometheus see why, and so do the peer routes (`/raft/*`: the transport's own).
 */
export function installRemovedAnswer(fastify: FastifyInstance, removed: () => boolean): void {
  fastify.addHook('onRequest', async (request, reply) => {
    if (!removed()) return;
    const path = request.url.split('?')[0];
    // Peer routes keep their own answers: a removed node's 410 on them would tell its peers they were removed.
    if (path === '/metrics' || path.startsWith('/health/') || path.startsWith('/raft/')) return;
    return reply.code(410).send({ error: 'Removed from the cluster', outcome: 'failed' });
  });
}

import { FastifyInstance } from 'fastify';

/**
 * Once the node was removed from the cluster it takes no part: every request is answered
 * `410 {"error":"Removed from the cluster"}` (stale reads and the members view included, which would
 * otherwise show a frozen, misleading view) until the process exits. Health and metrics keep answering, so
 * that a supervisor and Prometheus see why.
 */
export function installRemovedAnswer(fastify: FastifyInstance, removed: () => boolean): void {
  fastify.addHook('onRequest', async (request, reply) => {
    if (!removed()) return;
    const path = request.url.split('?')[0];
    if (path === '/metrics' || path.startsWith('/health/')) return;
    return reply.code(410).send({ error: 'Removed from the cluster', outcome: 'failed' });
  });
}

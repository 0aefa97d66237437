import Fastify from 'fastify';
import { installRemovedAnswer } from './removed-node';

describe('installRemovedAnswer', () => {
  it('answers every request 410 once the node is removed, except health and metrics', async () => {
    let removed = false;
    const app = Fastify();
    installRemovedAnswer(app, () => removed);
    for (const path of ['/kv/a', '/cluster/members', '/status', '/health/ready', '/metrics', '/raft/hello']) app.get(path, async () => ({ ok: path }));
    await app.ready();
    try {
      expect((await app.inject({ url: '/kv/a?consistency=stale' })).statusCode).toBe(200);
      removed = true;
      for (const url of ['/kv/a?consistency=stale', '/cluster/members', '/status']) {
        const res = await app.inject({ url });
        expect({ url, status: res.statusCode, body: res.json() }).toEqual({
          url,
          status: 410,
          body: { error: 'Removed from the cluster', outcome: 'failed' },
        });
      }
      expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
      // Its peers' streams are not told 410 by it: that would say THEY were removed (chaos seed 1072538586).
      expect((await app.inject({ url: '/raft/hello' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

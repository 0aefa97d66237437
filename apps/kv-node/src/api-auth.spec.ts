import { parseApiTokens } from '@app/config';
import Fastify, { FastifyInstance } from 'fastify';
import { installApiAuth, requiredRole } from './api-auth';

const READ = 'read-token-0123456789';
const WRITE = 'write-token-0123456789';
const ADMIN = 'admin-token-0123456789';

describe('requiredRole', () => {
  it.each([
    ['GET', '/kv/a', 'read'],
    ['HEAD', '/kv/a', 'read'],
    ['GET', '/kv?prefix=a', 'read'],
    ['GET', '/watch?key=a', 'read'],
    ['GET', '/watch', 'read'],
    ['GET', '/watchers', undefined],
    ['PUT', '/kv/a', 'readwrite'],
    ['DELETE', '/kv/a?x=1', 'readwrite'],
    ['GET', '/cluster/status', 'admin'],
    ['GET', '/cluster/snapshot', 'admin'],
    // The membership routes check their own tokens: CLUSTER_TOKEN (a joining node's) or an admin API token.
    ['POST', '/cluster/members', undefined],
    ['DELETE', '/cluster/members/node3', undefined],
    ['GET', '/status', undefined],
    ['GET', '/health/ready', undefined],
    ['GET', '/metrics', undefined],
    ['GET', '/docs-json', undefined],
    ['POST', '/raft/stream', undefined],
    ['GET', '/kvx', undefined],
  ])('%s %s needs %s', (method, url, role) => {
    expect(requiredRole(method, url)).toBe(role);
  });
});

describe('installApiAuth', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = Fastify();
    installApiAuth(app, parseApiTokens(`# tokens\n${READ} read\n${WRITE} readwrite\n\n${ADMIN} admin\n`, 'tokens'));
    app.get('/kv/:key', async () => ({ ok: 'get' }));
    app.put('/kv/:key', async () => ({ ok: 'put' }));
    app.get('/cluster/status', async () => ({ ok: 'cluster' }));
    app.get('/status', async () => ({ ok: 'status' }));
    await app.ready();
  });
  afterAll(() => app.close());

  const call = (method: 'GET' | 'PUT', url: string, token?: string) =>
    app.inject({ method, url, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(method === 'PUT' ? { payload: {} } : {}) });

  it('answers 401 with WWW-Authenticate without a token, or with an unknown one', async () => {
    for (const token of [undefined, 'not-a-known-token-at-all']) {
      const res = await call('GET', '/kv/a', token);
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="raft-kv"');
      expect(res.json().error).toMatch(/API token/);
    }
  });

  it.each([
    [READ, 'GET', '/kv/a', 200],
    [READ, 'PUT', '/kv/a', 403],
    [READ, 'GET', '/cluster/status', 403],
    [WRITE, 'GET', '/kv/a', 200],
    [WRITE, 'PUT', '/kv/a', 200],
    [WRITE, 'GET', '/cluster/status', 403],
    [ADMIN, 'PUT', '/kv/a', 200],
    [ADMIN, 'GET', '/cluster/status', 200],
  ] as const)('%s %s %s -> %d', async (token, method, url, status) => {
    const res = await call(method, url, token);
    expect(res.statusCode).toBe(status);
    if (status === 403) expect(res.json().error).toMatch(/role '.*' is not allowed here: it needs/);
  });

  it('leaves open routes open', async () => {
    expect((await call('GET', '/status')).statusCode).toBe(200);
  });
});

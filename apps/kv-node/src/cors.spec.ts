import { parseApiTokens } from '@app/config';
import type { MemberInfo, MembersView } from '@app/consensus';
import Fastify, { FastifyInstance } from 'fastify';
import { installApiAuth } from './api-auth';
import { corsOriginAllowed, installCors, memberClientUrls } from './cors';

const MEMBERS = ['http://localhost:3001', 'http://localhost:3002', 'http://node3.example:3003'];

describe('corsOriginAllowed', () => {
  it.each([
    // A member's own pages (its Swagger UI), the one the redirect leaves from included.
    ['http://localhost:3002', [], true],
    ['http://node3.example:3003', [], true],
    // A loopback page on a loopback member's port is that member, whatever the spelling.
    ['http://127.0.0.1:3002', [], true],
    ['http://127.0.0.5:3001', [], true],
    ['http://[::1]:3001', [], true],
    // ... but not on another port, another scheme, or for a member not named by a loopback host.
    ['http://127.0.0.1:3004', [], false],
    ['https://127.0.0.1:3002', [], false],
    ['http://127.0.0.1:3003', [], false],
    // Another page the user visits: never (unless CORS_ORIGINS lists it).
    ['https://evil.example', [], false],
    ['http://localhost:8080', [], false],
    ['http://localhost:8080', ['http://localhost:8080'], true],
    ['https://admin.example.com', ['https://admin.example.com'], true],
    // Only the canonical form, which is echoed back as Access-Control-Allow-Origin.
    ['http://LOCALHOST:3002', [], false],
    ['http://localhost:3002/', [], false],
    ['http://localhost:3002 ', [], false],
    ['http://localhost:3002, https://evil.example', [], false],
    // Sandboxed and file:// pages, nothing, garbage.
    ['null', [], false],
    [undefined, [], false],
    ['', [], false],
    ['localhost:3002', [], false],
    ['file:///tmp/x.html', [], false],
  ] as Array<[string | undefined, string[], boolean]>)('%j with CORS_ORIGINS %j: %s', (origin, extra, allowed) => {
    expect(corsOriginAllowed(origin, MEMBERS, extra)).toBe(allowed);
  });

  it('a non-loopback member admits no alias: 127.0.0.1 is not node3.example', () => {
    expect(corsOriginAllowed('http://127.0.0.1:3003', ['http://node3.example:3003'], [])).toBe(false);
    expect(corsOriginAllowed('http://localhost:3003', ['http://127.0.0.1:3003'], [])).toBe(true);
  });

  it('a default port is the same origin whether the URL names it or not', () => {
    expect(corsOriginAllowed('https://kv.example', ['https://kv.example:443'], [])).toBe(true);
    expect(corsOriginAllowed('http://localhost', ['http://127.0.0.1:80'], [])).toBe(true);
  });
});

describe('memberClientUrls', () => {
  const member = (info: Partial<MemberInfo>): MemberInfo => ({ nodeId: 'n', role: 'voter', self: false, ...info });

  it("takes each member's URL, or with PEER_PORT its client URL (never the peer URL), and this node's own", () => {
    const view: MembersView = {
      leader: 'a',
      members: [
        member({ nodeId: 'a', url: 'http://a:3001' }),
        member({ nodeId: 'b', url: 'http://b:4002', peerUrl: 'http://b:4002', clientUrl: 'http://b:3002' }),
        member({ nodeId: 'c', url: 'http://c:4003', peerUrl: 'http://c:4003' }),
        member({ nodeId: 'd' }),
      ],
    };
    expect(memberClientUrls('http://self:3000', view)).toEqual(['http://self:3000', 'http://a:3001', 'http://b:3002']);
    expect(memberClientUrls('http://self:3000', undefined)).toEqual(['http://self:3000']);
  });
});

describe('installCors', () => {
  let app: FastifyInstance;
  let members: () => MembersView;
  const TOKEN = 'write-token-0123456789';

  beforeAll(async () => {
    app = Fastify();
    installCors(app, {
      clientUrl: 'http://localhost:3001',
      corsOrigins: ['https://admin.example.com'],
      members: () => members(),
    });
    // Added after CORS, as in main.ts: a preflight carries no token.
    installApiAuth(app, parseApiTokens(`${TOKEN} readwrite\n`, 'tokens'));
    app.put('/kv/:key', async (_request, reply) => reply.header('etag', '"7"').send({ success: true }));
    app.get('/kv/:key', async () => ({ value: 'v' }));
    app.post('/raft/stream', async () => ({ ok: true }));
    app.post('/cluster/members/:id/promote', async () => ({ promoted: true }));
    await app.ready();
  });
  beforeEach(() => {
    members = () => ({ leader: 'node2', members: [{ nodeId: 'node2', url: 'http://localhost:3002', role: 'voter', self: false }] });
  });
  afterAll(() => app.close());

  const preflight = (origin: string, url = '/kv/a') =>
    app.inject({
      method: 'OPTIONS',
      url,
      headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type,if-match,authorization' },
    });

  it("answers an allowed origin's preflight before the API tokens are checked, with the methods and headers the API uses", async () => {
    const res = await preflight('http://localhost:3002');
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('http://localhost:3002');
    expect(String(res.headers['access-control-allow-methods']).split(', ')).toEqual(expect.arrayContaining(['GET', 'PUT', 'DELETE', 'POST']));
    expect(String(res.headers['access-control-allow-headers']).split(', ')).toEqual(
      expect.arrayContaining(['content-type', 'if-match', 'if-none-match', 'idempotency-key', 'authorization', 'last-event-id']),
    );
    expect(res.headers['access-control-max-age']).toBe('600');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toMatch(/origin/i);
  });

  it('an actual request gets the origin and the exposed headers, its 401 included', async () => {
    const ok = await app.inject({
      method: 'PUT',
      url: '/kv/a',
      headers: { origin: 'http://127.0.0.1:3002', authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      payload: '{"value":"v"}',
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('http://127.0.0.1:3002');
    expect(String(ok.headers['access-control-expose-headers']).split(', ')).toEqual(
      expect.arrayContaining(['etag', 'location', 'retry-after', 'idempotent-replayed']),
    );
    const refused = await app.inject({ method: 'PUT', url: '/kv/a', headers: { origin: 'https://admin.example.com' }, payload: '{}' });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe('https://admin.example.com');
  });

  it('gives another origin no CORS header (the browser keeps the answer from the page), and refuses its preflight', async () => {
    // Not answered by CORS: it goes on to the API tokens (401 here; 404 on an open node, which has no OPTIONS route).
    const res = await preflight('https://evil.example');
    expect(res.statusCode).toBe(401);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['access-control-allow-methods']).toBeUndefined();
    const get = await app.inject({ method: 'GET', url: '/kv/a', headers: { origin: 'https://evil.example', authorization: `Bearer ${TOKEN}` } });
    expect(get.statusCode).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('follows the membership: a member removed is an origin no more', async () => {
    expect((await preflight('http://localhost:3002')).statusCode).toBe(204);
    members = () => ({ leader: null, members: [] });
    expect((await preflight('http://localhost:3002')).headers['access-control-allow-origin']).toBeUndefined();
    // This node's own pages stay allowed, before the Raft node has started too.
    members = () => {
      throw new Error('not started');
    };
    expect((await preflight('http://localhost:3001')).headers['access-control-allow-origin']).toBe('http://localhost:3001');
  });

  it('leaves the peer routes and requests without an Origin as they were', async () => {
    const peer = await app.inject({ method: 'POST', url: '/raft/stream', headers: { origin: 'http://localhost:3002' } });
    expect(peer.statusCode).toBe(200);
    expect(peer.headers['access-control-allow-origin']).toBeUndefined();
    expect((await preflight('http://localhost:3002', '/raft/stream')).statusCode).toBe(404);
    const plain = await app.inject({ method: 'GET', url: '/kv/a', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(plain.statusCode).toBe(200);
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("refuses a change sent by another origin's page (a simple POST needs no preflight), not by the page's own origin or a member's", async () => {
    const promote = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/cluster/members/node4/promote', headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
    const foreign = await promote({ origin: 'https://evil.example', host: 'localhost:3001' });
    expect(foreign.statusCode).toBe(403);
    expect(foreign.json()).toEqual({ error: expect.stringContaining('origin https://evil.example may not change this cluster') as string });
    expect((await app.inject({ method: 'PUT', url: '/kv/a', headers: { origin: 'https://evil.example', authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(403);
    // The page's own origin, whatever name it was reached by; a member's page; CORS_ORIGINS; no Origin at all.
    expect((await promote({ origin: 'http://kv.internal:3001', host: 'kv.internal:3001' })).statusCode).toBe(200);
    expect((await promote({ origin: 'http://localhost:3002', host: 'localhost:3001' })).statusCode).toBe(200);
    expect((await promote({ origin: 'https://admin.example.com', host: 'localhost:3001' })).statusCode).toBe(200);
    expect((await promote({ host: 'localhost:3001' })).statusCode).toBe(200);
    // Reads stay open to any page (CORS decides whether it may read the answer).
    const read = await app.inject({ method: 'GET', url: '/kv/a', headers: { origin: 'https://evil.example', authorization: `Bearer ${TOKEN}` } });
    expect(read.statusCode).toBe(200);
  });
});

import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Test } from '@nestjs/testing';
import { HttpErrorsFilter } from '../../../../apps/kv-node/src/http-errors.filter';
import { ClusterAdminModule } from './cluster-admin.module';
import { ClusterAdminOptions } from './cluster-admin.options';
import { baseUrl } from './members.dto';
import { urlFromAddress } from './members.service';
import {
  MembershipChangeRefusedError,
  NoLeaderError,
  NotLeaderError,
  ProposalTimeoutError,
  RemovedFromClusterError,
} from './membership-node';
import { StorageFullError } from '@app/consensus';
import { fakeBootstrap, fakeConsensus, FakeMembershipNode, IDENTITY, threeVoters } from './testing/fake-membership-node';

/**
 * The membership routes as a node serves them: ClusterAdminModule on Fastify (requests injected, no socket),
 * with the app's error filter, over a fake Raft node.
 */

const apps: NestFastifyApplication[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function serve(raft: FakeMembershipNode, options: Partial<ClusterAdminOptions> = {}) {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ClusterAdminModule.forRootAsync({
        consensus: fakeConsensus(raft),
        imports: [fakeBootstrap()],
        useFactory: () => ({ timeoutMs: 50, ...options }),
      }),
    ],
  }).compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter());
  app.useGlobalFilters(new HttpErrorsFilter());
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  apps.push(app);
  return app;
}

interface Sent {
  status: number;
  body: Record<string, any>;
  headers: Record<string, unknown>;
}

async function send(
  app: NestFastifyApplication,
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  payload?: unknown,
  extra: { headers?: Record<string, string>; remoteAddress?: string } = {},
): Promise<Sent> {
  const res = await app.inject({ method, url, payload: payload as object, headers: extra.headers, remoteAddress: extra.remoteAddress });
  return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as Record<string, any>) : {}, headers: res.headers };
}

const leader = () => new FakeMembershipNode(threeVoters('node1'));
const reject = (raft: FakeMembershipNode, error: Error) => (raft.onChange = () => Promise.reject(error));

describe('GET /cluster/members', () => {
  it('lists the applied configuration with the cluster id and the leader', async () => {
    const raft = new FakeMembershipNode(threeVoters('node2'), 'node1');
    const { status, body } = await send(await serve(raft), 'GET', '/cluster/members');
    expect(status).toBe(200);
    expect(body).toEqual({ clusterId: IDENTITY.clusterId, leader: 'node1', members: threeVoters('node2') });
  });
});

describe('POST /cluster/members', () => {
  it('adds a learner by default and answers 201 with what a joining node needs', async () => {
    const raft = leader();
    const { status, body } = await send(await serve(raft), 'POST', '/cluster/members', { nodeId: 'node4', url: 'http://Host4:3004/' });
    expect(raft.changes).toEqual([{ op: 'add', nodeId: 'node4', url: 'http://host4:3004', learner: true }]);
    expect(status).toBe(201);
    const node4 = { nodeId: 'node4', url: 'http://host4:3004', role: 'learner', self: false };
    expect(body).toEqual({
      clusterId: IDENTITY.clusterId,
      index: 101,
      initialVoters: IDENTITY.initialVoters,
      member: node4,
      members: [...threeVoters('node1'), node4],
    });
  });

  it('adds a voter at once when learner is false', async () => {
    const raft = leader();
    const { status, body } = await send(await serve(raft), 'POST', '/cluster/members', { nodeId: 'node4', url: 'http://h:1', learner: false });
    expect(status).toBe(201);
    expect(body.member.role).toBe('voter');
    expect(raft.changes[0]).toMatchObject({ learner: false });
  });

  it.each([
    ['::ffff:10.0.0.9', 'http://10.0.0.9:3004'],
    ['10.0.0.9', 'http://10.0.0.9:3004'],
    ['fd00::9', 'http://[fd00::9]:3004'],
  ])('without a url, takes the address the request came from (%s) and the port', async (remoteAddress, url) => {
    const raft = leader();
    const { status } = await send(await serve(raft), 'POST', '/cluster/members', { nodeId: 'node4', port: 3004 }, { remoteAddress });
    expect(status).toBe(201);
    expect(raft.changes).toEqual([{ op: 'add', nodeId: 'node4', url, learner: true }]);
  });

  it('answers a repeated join 200 with the same shape, without proposing anything', async () => {
    const raft = leader();
    const app = await serve(raft);
    const first = await send(app, 'POST', '/cluster/members', { nodeId: 'node4', url: 'http://h:3004' });
    raft.applied = 130;
    const again = await send(app, 'POST', '/cluster/members', { nodeId: 'node4', url: 'http://h:3004' });
    expect([first.status, again.status]).toEqual([201, 200]);
    expect(again.body).toEqual({ ...first.body, index: 130 });
    // Promoted in the meantime: still the member a learner join asked for.
    raft.apply({ op: 'promote', nodeId: 'node4' });
    expect((await send(app, 'POST', '/cluster/members', { nodeId: 'node4', url: 'http://h:3004' })).status).toBe(200);
    expect(raft.changes).toHaveLength(1);
  });

  it('proposes (and so lets the leader refuse) an add that differs from the existing member', async () => {
    const raft = leader();
    const app = await serve(raft);
    raft.apply({ op: 'add', nodeId: 'node4', url: 'http://h:3004', learner: true });
    reject(raft, new MembershipChangeRefusedError('node4 is already a member'));
    const asVoter = await send(app, 'POST', '/cluster/members', { nodeId: 'node4', url: 'http://h:3004', learner: false });
    const elsewhere = await send(app, 'POST', '/cluster/members', { nodeId: 'node4', url: 'http://h:3005' });
    expect([asVoter.status, elsewhere.status]).toEqual([409, 409]);
    expect(asVoter.body).toEqual({ error: 'node4 is already a member' });
    expect(raft.changes).toHaveLength(2);
  });

  it("on a follower, leaves the retry check to the leader: 307 to the same route there", async () => {
    const raft = new FakeMembershipNode([...threeVoters('node2'), { nodeId: 'node4', url: 'http://h:3004', role: 'learner', self: false }], 'node1');
    reject(raft, new NotLeaderError('node1', 'http://localhost:3001'));
    const { status, body, headers } = await send(await serve(raft), 'POST', '/cluster/members', { nodeId: 'node4', url: 'http://h:3004' });
    expect(status).toBe(307);
    expect(headers.location).toBe('http://localhost:3001/cluster/members');
    expect(body).toEqual({ error: 'Not leader', leader: 'node1', leaderUrl: 'http://localhost:3001' });
  });

  it.each([
    [{ url: 'http://h:1' }, /nodeId is required/],
    [{ nodeId: '-bad', url: 'http://h:1' }, /^nodeId must be 1 to 63 letters/],
    [{ nodeId: 'n'.repeat(64), url: 'http://h:1' }, /^nodeId must be/],
    [{ nodeId: 'node4' }, /^url or port is required$/],
    [{ nodeId: 'node4', url: 'http://h:1/path' }, /^url must be an http\(s\) base URL/],
    [{ nodeId: 'node4', url: 'ftp://h:1' }, /^url must be an http\(s\) base URL/],
    [{ nodeId: 'node4', url: 'http://h:1?x=1' }, /^url must be an http\(s\) base URL/],
    [{ nodeId: 'node4', port: 70000 }, /^port must be from 1 to 65535$/],
    [{ nodeId: 'node4', port: 3.5 }, /^port must be an integer/],
    [{ nodeId: 'node4', url: 'http://h:1', learner: 'yes' }, /^learner must be a boolean$/],
    [{ nodeId: 'node4', url: 'http://h:1', role: 'voter' }, /^unknown field "role"$/],
  ])('refuses %j with 400 naming the field', async (payload, message) => {
    const raft = leader();
    const { status, body } = await send(await serve(raft), 'POST', '/cluster/members', payload);
    expect(status).toBe(400);
    expect(body.error).toMatch(message);
    expect(raft.changes).toEqual([]);
  });
});

describe('POST /cluster/members/:nodeId/promote and DELETE /cluster/members/:nodeId', () => {
  it('promotes a learner: 200 with the index, the member and the members', async () => {
    const raft = leader();
    raft.apply({ op: 'add', nodeId: 'node4', url: 'http://h:3004', learner: true });
    const { status, body } = await send(await serve(raft), 'POST', '/cluster/members/node4/promote');
    expect(status).toBe(200);
    expect(raft.changes).toEqual([{ op: 'promote', nodeId: 'node4' }]);
    expect(body.index).toBe(102);
    expect(body.member).toEqual({ nodeId: 'node4', url: 'http://h:3004', role: 'voter', self: false });
    expect(body.members).toHaveLength(4);
  });

  it('answers a promotion of a voter 200 without proposing it (a repeated request)', async () => {
    const raft = leader();
    const { status, body } = await send(await serve(raft), 'POST', '/cluster/members/node3/promote');
    expect(status).toBe(200);
    expect(body).toMatchObject({ index: 100, member: { nodeId: 'node3', role: 'voter' } });
    expect(raft.changes).toEqual([]);
  });

  it('removes a member: 200 with the index and the members left', async () => {
    const raft = leader();
    const { status, body } = await send(await serve(raft), 'DELETE', '/cluster/members/node3');
    expect(status).toBe(200);
    expect(raft.changes).toEqual([{ op: 'remove', nodeId: 'node3' }]);
    expect(body).toEqual({ index: 101, members: threeVoters('node1').slice(0, 2) });
  });
});

describe('membership errors', () => {
  // Every row has its three values: jest would take a missing one for a `done` callback.
  const routes: Array<['POST' | 'DELETE', string, unknown]> = [
    ['POST', '/cluster/members', { nodeId: 'node4', url: 'http://h:3004' }],
    ['POST', '/cluster/members/node4/promote', undefined],
    ['DELETE', '/cluster/members/node4', undefined],
  ];

  it.each(routes)('%s %s: a follower redirects to the leader (307, Location on the same route)', async (method, url, payload) => {
    const raft = new FakeMembershipNode(threeVoters('node2'), 'node1');
    reject(raft, new NotLeaderError('node1', 'http://localhost:3001'));
    const { status, headers } = await send(await serve(raft), method, url, payload);
    expect(status).toBe(307);
    expect(headers.location).toBe(`http://localhost:3001${url}`);
  });

  it.each([
    ['NoLeaderError', new NoLeaderError(), 503, { error: 'No leader', outcome: 'failed' }, '1'],
    ['a refusal', new MembershipChangeRefusedError('another membership change is pending'), 409, { error: 'another membership change is pending' }, undefined],
    ['not caught up', new MembershipChangeRefusedError('node4 has not caught up (match 10, leader 900)'), 409, { error: 'node4 has not caught up (match 10, leader 900)' }, undefined],
    ['an unknown member', new MembershipChangeRefusedError('no member node4', 404), 404, { error: 'no member node4' }, undefined],
    ['RemovedFromClusterError', new RemovedFromClusterError(), 410, { error: 'Removed from the cluster' }, undefined],
    [
      'StorageFullError (a full disk)',
      new StorageFullError('ENOSPC: no space left on device', 'ENOSPC'),
      507,
      { error: "This node's disk is full: ENOSPC: no space left on device; writes are refused until space returns (reads are served)", outcome: 'failed' },
      undefined,
    ],
  ])('maps %s to its status on every change route', async (_name, error, expected, body, retryAfter) => {
    const raft = leader();
    reject(raft, error);
    const app = await serve(raft);
    for (const [method, url, payload] of routes) {
      const sent = await send(app, method, url, payload);
      expect([sent.status, sent.body, sent.headers['retry-after']]).toEqual([expected, body, retryAfter]);
    }
  });

  it('says that a change not committed in time may still take effect (503, outcome unknown)', async () => {
    const raft = leader();
    reject(raft, new ProposalTimeoutError(120, 5000));
    const { status, body, headers } = await send(await serve(raft), 'DELETE', '/cluster/members/node3');
    expect(status).toBe(503);
    expect(body.outcome).toBe('unknown');
    expect(body.error).toMatch(/^Membership change outcome unknown: not committed within 5000 ms/);
    expect(headers['retry-after']).toBe('1');
  });

  it('answers 410 on a removed node for reads too', async () => {
    const raft = leader();
    raft.members = () => {
      throw new RemovedFromClusterError();
    };
    expect(await send(await serve(raft), 'GET', '/cluster/members')).toMatchObject({ status: 410, body: { error: 'Removed from the cluster' } });
  });
});

describe('who may use the membership routes', () => {
  const TOKEN = 'cluster-token-0123456789';
  const roles: Record<string, string> = { 'admin-token-0123456789': 'admin', 'read-token-01234567890': 'read' };
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  it('are open with neither CLUSTER_TOKEN nor API_TOKENS_FILE', async () => {
    expect((await send(await serve(leader()), 'DELETE', '/cluster/members/node3')).status).toBe(200);
  });

  it('need CLUSTER_TOKEN when it is set, for reads and changes alike', async () => {
    const raft = leader();
    const app = await serve(raft, { token: TOKEN });
    const none = await send(app, 'GET', '/cluster/members');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="raft-kv"');
    expect(none.body.error).toMatch(/Authorization: Bearer <CLUSTER_TOKEN>/);
    expect((await send(app, 'DELETE', '/cluster/members/node3', undefined, bearer('wrong-token-0123456789'))).status).toBe(401);
    expect(raft.changes).toEqual([]);
    expect((await send(app, 'GET', '/cluster/members', undefined, bearer(TOKEN))).status).toBe(200);
    expect((await send(app, 'DELETE', '/cluster/members/node3', undefined, bearer(TOKEN))).status).toBe(200);
  });

  it('accept an admin API token as well, and refuse a lesser role with 403', async () => {
    const raft = leader();
    const app = await serve(raft, { token: TOKEN, apiTokenRole: (t) => roles[t] });
    expect((await send(app, 'POST', '/cluster/members/node3/promote', undefined, bearer('admin-token-0123456789'))).status).toBe(200);
    const read = await send(app, 'DELETE', '/cluster/members/node3', undefined, bearer('read-token-01234567890'));
    expect(read).toMatchObject({ status: 403, body: { error: "This token's role 'read' is not allowed here: it needs 'admin' (or CLUSTER_TOKEN)" } });
    expect((await send(app, 'DELETE', '/cluster/members/node3', undefined, bearer(TOKEN))).status).toBe(200);
  });

  it('need an admin API token with API_TOKENS_FILE alone', async () => {
    const app = await serve(leader(), { apiTokenRole: (t) => roles[t] });
    expect((await send(app, 'GET', '/cluster/members')).body.error).toMatch(/Authorization: Bearer <an admin API token>/);
    expect((await send(app, 'GET', '/cluster/members', undefined, bearer(TOKEN))).status).toBe(401);
    expect((await send(app, 'GET', '/cluster/members', undefined, bearer('admin-token-0123456789'))).status).toBe(200);
  });
});

describe('the OpenAPI document', () => {
  it("documents every membership route under the 'cluster membership' tag, with its bodies", async () => {
    const app = await serve(leader());
    const doc = SwaggerModule.createDocument(app, new DocumentBuilder().build());
    const routes = [
      doc.paths['/cluster/members'].get,
      doc.paths['/cluster/members'].post,
      doc.paths['/cluster/members/{nodeId}/promote'].post,
      doc.paths['/cluster/members/{nodeId}'].delete,
    ];
    for (const route of routes) expect(route?.tags).toEqual(['cluster membership']);
    const post = doc.paths['/cluster/members'].post!;
    expect(Object.keys(post.responses).sort()).toEqual(['200', '201', '307', '400', '401', '403', '409', '410', '503']);
    expect(doc.components?.schemas?.AddMemberDto).toMatchObject({ required: ['nodeId'] });
    expect(doc.paths['/cluster/status'].get?.tags).toEqual(['cluster']);
  });
});

describe('baseUrl and urlFromAddress', () => {
  it('normalize a member URL and build one from an address', () => {
    expect(baseUrl('https://Example.com:8443/')).toBe('https://example.com:8443');
    expect(baseUrl('http://[::1]:3001')).toBe('http://[::1]:3001');
    expect([baseUrl('http://u:p@h:1'), baseUrl('http://h:1#x'), baseUrl('h:1'), baseUrl('not a url')]).toEqual([undefined, undefined, undefined, undefined]);
    expect(urlFromAddress('::FFFF:192.168.1.2', 80)).toBe('http://192.168.1.2:80');
    expect(urlFromAddress('::1', 3001)).toBe('http://[::1]:3001');
  });
});

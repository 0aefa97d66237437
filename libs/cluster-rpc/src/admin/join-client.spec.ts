import { HttpService } from '@nestjs/axios';
import axios from 'axios';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { JoinError, joinCluster, promoteWhenCaughtUp } from './join-client';
import type { AddMemberAnswer } from './membership-node';

/**
 * The join client against real HTTP servers (node:http on loopback, port 0), each answering from a script:
 * one entry per request, the last one repeated.
 */

type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang';

interface Scripted {
  url: string;
  requests: Array<{ method: string; path: string; body: string; authorization?: string }>;
}

const servers: Server[] = [];
afterEach(async () => {
  // closeAllConnections first: a hanging request would otherwise keep its server from closing.
  await Promise.all(servers.splice(0).map((s) => new Promise((ok) => (s.close(ok), s.closeAllConnections()))));
});

async function scripted(...script: Array<Reply | ((self: string) => Reply)>): Promise<Scripted> {
  const node: Scripted = { url: '', requests: [] };
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      node.requests.push({ method: req.method!, path: req.url!, body, authorization: req.headers.authorization });
      const step = script[Math.min(node.requests.length - 1, script.length - 1)];
      const reply = typeof step === 'function' ? step(node.url) : step;
      if (reply === 'hang') return;
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  servers.push(server);
  node.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return node;
}

const http = new HttpService(axios.create());
const answer: AddMemberAnswer = {
  clusterId: 'c0ffee',
  index: 57,
  initialVoters: ['node1', 'node2', 'node3'],
  member: { nodeId: 'node4', url: 'http://127.0.0.1:3004', role: 'learner', self: false },
  members: [],
};
const request = { nodeId: 'node4', port: 3004 };
const notLeader = (leader: string) => ({ status: 307, body: { error: 'Not leader' }, headers: { location: `${leader}/cluster/members` } });
const noLeader = { status: 503, body: { error: 'No leader', outcome: 'failed' }, headers: { 'retry-after': '1' } };

async function joinError(promise: Promise<unknown>): Promise<JoinError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof JoinError) return error;
    throw error;
  }
  throw new Error('expected a JoinError');
}

describe('joinCluster', () => {
  it('POSTs the request with the token and returns the answer', async () => {
    const leader = await scripted({ status: 201, body: answer });
    expect(await joinCluster(http, `${leader.url}/`, request, { token: 'secret-token-0123456', timeoutMs: 2000 })).toEqual(answer);
    expect(leader.requests).toEqual([
      { method: 'POST', path: '/cluster/members', body: JSON.stringify(request), authorization: 'Bearer secret-token-0123456' },
    ]);
  });

  it('follows a 307 to the leader itself, POSTing the body again there', async () => {
    const leader = await scripted({ status: 200, body: answer });
    const follower = await scripted(notLeader(leader.url));
    expect(await joinCluster(http, follower.url, request, { timeoutMs: 2000 })).toEqual(answer);
    expect(follower.requests).toHaveLength(1);
    expect(leader.requests.map((r) => [r.method, r.path, r.body])).toEqual([['POST', '/cluster/members', JSON.stringify(request)]]);
  });

  it('retries every retryMs while there is no leader (503), then joins', async () => {
    const lines: string[] = [];
    const node = await scripted(noLeader, noLeader, { status: 201, body: answer });
    const started = Date.now();
    expect(await joinCluster(http, node.url, request, { timeoutMs: 5000, retryMs: 50, log: (l) => lines.push(l) })).toEqual(answer);
    expect(node.requests).toHaveLength(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(lines).toEqual([`join: ${node.url} answered 503: No leader; retrying in 50 ms`, `join: ${node.url} answered 503: No leader; retrying in 50 ms`]);
  });

  it('waits out another membership change in progress (409), as two nodes joining at once do', async () => {
    const busy = { status: 409, body: { error: 'another membership change is in progress (a configuration change is pending); add learner node5 was not proposed' } };
    const node = await scripted(busy, { status: 201, body: answer });
    expect(await joinCluster(http, node.url, request, { timeoutMs: 5000, retryMs: 20 })).toEqual(answer);
    expect(node.requests).toHaveLength(2);
  });

  it('asks the join URL again after a failure at the leader; names the last problem when it gives up', async () => {
    const leader = await scripted(noLeader, { status: 201, body: answer });
    const follower = await scripted(notLeader(leader.url));
    expect(await joinCluster(http, follower.url, request, { timeoutMs: 5000, retryMs: 20 })).toEqual(answer);
    expect([follower.requests.length, leader.requests.length]).toEqual([2, 2]);

    const closed = await scripted({ status: 201, body: answer });
    await new Promise((ok) => servers.pop()!.close(ok));
    const error = await joinError(joinCluster(http, closed.url, request, { timeoutMs: 300, retryMs: 1000 }));
    expect(error.message).toMatch(new RegExp(`^could not join the cluster through ${closed.url} within 300 ms: ${closed.url}: .*ECONNREFUSED`));
  });

  it.each([
    [409, 'node4 is already a member', /^join refused by http:\/\/127\.0\.0\.1:\d+: HTTP 409: node4 is already a member$/],
    [400, 'port must be from 1 to 65535', /HTTP 400: port must be from 1 to 65535$/],
    [401, 'Missing or unknown token', /HTTP 401: Missing or unknown token \(the cluster has a CLUSTER_TOKEN: start this node with the same one\)$/],
    [403, 'not admin', /HTTP 403: not admin \(the token is not allowed/],
    [410, 'Removed from the cluster', /HTTP 410: Removed from the cluster \(the node asked was removed from the cluster: JOIN another member\)$/],
  ])('fails at once on %i, with the reason', async (status, reason, message) => {
    const node = await scripted({ status, body: { error: reason } });
    const error = await joinError(joinCluster(http, node.url, request, { timeoutMs: 5000, retryMs: 10 }));
    expect(error.status).toBe(status);
    expect(error.message).toMatch(message);
    expect(node.requests).toHaveLength(1);
  });

  it('gives up after timeoutMs with the last problem, a request that hangs included', async () => {
    const node = await scripted('hang');
    const started = Date.now();
    const error = await joinError(joinCluster(http, node.url, request, { timeoutMs: 300, retryMs: 50 }));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.message).toMatch(/^could not join the cluster through .* within 300 ms: .*no answer within \d+ ms$/);
    expect(error.status).toBeUndefined();
  });

  it('does not loop on redirects: a leader that keeps moving is retried after a pause', async () => {
    const node = await scripted((self) => notLeader(self));
    // The pause outlasts the budget: one round of redirects, then the verdict when the budget ends. The budget
    // leaves the six requests room on a loaded machine (400 ms did not, once, with the unit suites and a build
    // sharing two cores: the sixth request had 1 ms left).
    const error = await joinError(joinCluster(http, node.url, request, { timeoutMs: 1500, retryMs: 60_000 }));
    expect(error.message).toMatch(/within 1500 ms: more than 5 redirects from .* \(last to .*\): the leader is changing$/);
    expect(node.requests).toHaveLength(6);
  });
});

describe('promoteWhenCaughtUp', () => {
  const promoted = { status: 200, body: { index: 60, member: { nodeId: 'node4', role: 'voter' }, members: [] } };
  const notCaughtUp = { status: 409, body: { error: 'node4 has not caught up' } };

  it('asks again while the learner has not caught up (409), following the redirect, until the leader promotes it', async () => {
    const lines: string[] = [];
    const leader = await scripted(notCaughtUp, notCaughtUp, promoted);
    const follower = await scripted(() => ({ status: 307, body: {}, headers: { location: `${leader.url}/cluster/members/node4/promote` } }));
    await promoteWhenCaughtUp(http, () => [follower.url], 'node4', { retryMs: 20, isVoter: () => false, token: 't0ken-0123456789', log: (l) => lines.push(l) });
    expect(leader.requests.map((r) => [r.method, r.path, r.authorization])).toEqual(
      Array(3).fill(['POST', '/cluster/members/node4/promote', 'Bearer t0ken-0123456789']),
    );
    expect(lines).toEqual([
      'promote: not yet: node4 has not caught up; asking again every 20 ms',
      `promote: node4 is a voter now (through ${leader.url})`,
    ]);
  });

  it('tries the next URL when one does not answer or has no leader', async () => {
    const down = await scripted(noLeader);
    const leader = await scripted(promoted);
    await promoteWhenCaughtUp(http, () => [down.url, leader.url], 'node4', { retryMs: 20, isVoter: () => false });
    expect([down.requests.length, leader.requests.length]).toEqual([1, 1]);
  });

  it('stops asking once the node knows itself a voter, or when aborted', async () => {
    const leader = await scripted(notCaughtUp);
    let voter = false;
    const done = promoteWhenCaughtUp(http, () => [leader.url], 'node4', { retryMs: 10, isVoter: () => voter });
    await new Promise((ok) => setTimeout(ok, 60));
    voter = true;
    await done;
    const asked = leader.requests.length;
    expect(asked).toBeGreaterThan(1);

    const controller = new AbortController();
    const aborted = promoteWhenCaughtUp(http, () => [leader.url], 'node4', { retryMs: 10_000, isVoter: () => false, signal: controller.signal });
    await new Promise((ok) => setTimeout(ok, 50));
    controller.abort();
    await aborted;
    expect(leader.requests.length).toBe(asked + 1);
  });

  it('fails on a refusal other than 409 (404: no longer a member)', async () => {
    const leader = await scripted({ status: 404, body: { error: 'no member node4' } });
    const error = await joinError(promoteWhenCaughtUp(http, () => [leader.url], 'node4', { retryMs: 10, isVoter: () => false }));
    expect(error.status).toBe(404);
    expect(error.message).toMatch(/^promotion of node4 refused by http:\/\/127\.0\.0\.1:\d+: HTTP 404: no member node4$/);
  });
});

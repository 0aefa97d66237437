import { HttpService } from '@nestjs/axios';
import { Test } from '@nestjs/testing';
import { AxiosResponse } from 'axios';
import { NEVER, Observable, of, Subject, throwError } from 'rxjs';
import { ClusterAdminModule } from './cluster-admin.module';
import { ClusterAdminOptions } from './cluster-admin.options';
import { ClusterStatusController } from './cluster-status.controller';
import { fakeBootstrap, fakeConsensus, FakeMembershipNode, threeVoters } from './testing/fake-membership-node';

const members = ['http://localhost:3001', 'http://localhost:3002', 'http://localhost:3003'];
const options: ClusterAdminOptions = { timeoutMs: 50 };

const answer = (status: number, data: unknown) => of({ status, data } as AxiosResponse);
/** node1 for http://localhost:3001/status, and so on. */
const nameOf = (url: string) => `node${url.replace(/\/status$/, '').slice(-1)}`;
const statusOf = (nodeId: string, state: string) => ({ nodeId, state, term: 3, leader: 'node1', isLeader: state === 'LEADER' });

let raft: FakeMembershipNode;
beforeEach(() => (raft = new FakeMembershipNode(threeVoters('node1'))));

/** The module as the app wires it, HttpService replaced by `get` (url → the request's observable). */
async function controller(get: (url: string, config: Record<string, unknown>) => Observable<AxiosResponse>) {
  const http = { get: jest.fn(get) };
  const moduleRef = await Test.createTestingModule({
    imports: [ClusterAdminModule.forRootAsync({ consensus: fakeConsensus(raft), imports: [fakeBootstrap()], useFactory: () => options })],
  })
    .overrideProvider(HttpService)
    .useValue(http)
    .compile();
  return { status: () => moduleRef.get(ClusterStatusController).status(), http };
}

describe('GET /cluster/status (ClusterStatusService)', () => {
  it("asks every member of the applied configuration its GET /status, this node's included, in configuration order", async () => {
    const { status, http } = await controller((url) =>
      answer(200, statusOf(nameOf(url), url.startsWith(members[0]) ? 'LEADER' : 'FOLLOWER')),
    );
    expect(await status()).toEqual({
      nodes: [
        { nodeId: 'node1', url: members[0], role: 'voter', reachable: true, status: statusOf('node1', 'LEADER') },
        { nodeId: 'node2', url: members[1], role: 'voter', reachable: true, status: statusOf('node2', 'FOLLOWER') },
        { nodeId: 'node3', url: members[2], role: 'voter', reachable: true, status: statusOf('node3', 'FOLLOWER') },
      ],
    });
    expect(http.get.mock.calls.map(([url]) => url)).toEqual(members.map((m) => `${m}/status`));
    for (const [, config] of http.get.mock.calls) {
      expect(config).toMatchObject({ timeout: options.timeoutMs, maxRedirects: 0 });
      expect(config.headers).toBeUndefined(); // no CLUSTER_TOKEN: GET /status does not ask for one
    }
  });

  it('asks a member that serves peers on a PEER_PORT at its client URL (GET /status is a client route)', async () => {
    raft.view.members[1] = { ...raft.view.members[1], url: 'http://localhost:4002', peerUrl: 'http://localhost:4002', clientUrl: members[1] };
    const { status, http } = await controller((url) => answer(200, statusOf(nameOf(url), 'FOLLOWER')));
    const { nodes } = await status();
    expect(http.get.mock.calls.map(([url]) => url)).toEqual(members.map((m) => `${m}/status`));
    expect(nodes[1]).toEqual({ nodeId: 'node2', url: 'http://localhost:4002', role: 'voter', reachable: true, status: statusOf('node2', 'FOLLOWER') });
  });

  it('asks every member before any has answered (in parallel, not one after the other)', async () => {
    const pending = new Map<string, Subject<AxiosResponse>>();
    const { status, http } = await controller((url) => {
      const subject = new Subject<AxiosResponse>();
      pending.set(url, subject);
      return subject;
    });
    const result = status();
    await Promise.resolve();
    expect(http.get).toHaveBeenCalledTimes(3);
    for (const [url, subject] of pending) {
      subject.next({ status: 200, data: statusOf(nameOf(url), 'FOLLOWER') } as AxiosResponse);
      subject.complete();
    }
    expect((await result).nodes.map((n) => n.reachable)).toEqual([true, true, true]);
  });

  it('reports a member that refuses the connection as unreachable, with the error, under its NODE_ID', async () => {
    const { status } = await controller((url) =>
      url.startsWith(members[1])
        ? throwError(() => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3002'), { code: 'ECONNREFUSED' }))
        : answer(200, statusOf(nameOf(url), 'FOLLOWER')),
    );
    const { nodes } = await status();
    expect(nodes[1]).toEqual({ nodeId: 'node2', url: members[1], role: 'voter', reachable: false, error: 'connect ECONNREFUSED 127.0.0.1:3002' });
    expect(nodes.filter((n) => n.reachable)).toHaveLength(2);
  });

  it('follows the configuration: a member added since is asked at its URL, a removed one no more', async () => {
    const { status, http } = await controller((url) => answer(200, statusOf(nameOf(url), 'FOLLOWER')));
    raft.apply({ op: 'add', nodeId: 'node4', url: 'http://10.0.0.4:3004', learner: true });
    raft.apply({ op: 'remove', nodeId: 'node2' });
    const { nodes } = await status();
    expect(nodes.map((n) => [n.nodeId, n.role])).toEqual([
      ['node1', 'voter'],
      ['node3', 'voter'],
      ['node4', 'learner'],
    ]);
    expect(http.get.mock.calls.map(([url]) => url)).toEqual([`${members[0]}/status`, `${members[2]}/status`, 'http://10.0.0.4:3004/status']);
  });

  it('lists a member this node has no address for without asking anyone', async () => {
    raft.view.members[2] = { nodeId: 'node3', role: 'voter', self: false };
    const { status, http } = await controller((url) => answer(200, statusOf(nameOf(url), 'FOLLOWER')));
    expect((await status()).nodes[2]).toEqual({ nodeId: 'node3', role: 'voter', reachable: false, error: 'no address known for this member' });
    expect(http.get).toHaveBeenCalledTimes(2);
  });

  it('explains a refused connection to a name with several addresses (an AggregateError with an empty message)', async () => {
    const refused = (address: string) => Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED' });
    const aggregate = Object.assign(new AggregateError([refused('::1:3003'), refused('127.0.0.1:3003')], ''), { code: 'ECONNREFUSED' });
    const { status } = await controller((url) =>
      url.startsWith(members[2]) ? throwError(() => Object.assign(new Error(''), { code: 'ECONNREFUSED', cause: aggregate })) : answer(200, {}),
    );
    expect((await status()).nodes[2]).toMatchObject({
      nodeId: 'node3',
      reachable: false,
      error: 'connect ECONNREFUSED ::1:3003; connect ECONNREFUSED 127.0.0.1:3003',
    });
  });

  it("falls back on the error's code when nothing else describes it", async () => {
    const { status } = await controller((url) =>
      url.startsWith(members[2]) ? throwError(() => Object.assign(new Error(''), { code: 'ECONNRESET' })) : answer(200, {}),
    );
    expect((await status()).nodes[2]).toMatchObject({ nodeId: 'node3', reachable: false, error: 'ECONNRESET' });
  });

  it('gives up on a member that does not answer within the timeout, cancels its request, and still answers for the others', async () => {
    let cancelled = false;
    const { status } = await controller((url) =>
      url.startsWith(members[2])
        ? new Observable<AxiosResponse>(() => () => (cancelled = true))
        : answer(200, statusOf(nameOf(url), 'FOLLOWER')),
    );
    const { nodes } = await status();
    expect(nodes[2]).toEqual({ nodeId: 'node3', url: members[2], role: 'voter', reachable: false, error: 'no answer within 50 ms' });
    expect(cancelled).toBe(true);
    expect(nodes.slice(0, 2).map((n) => n.status?.nodeId)).toEqual(['node1', 'node2']);
  });

  it('reports a member that answers with an error status as reachable, without a status', async () => {
    const { status } = await controller((url) => (url.startsWith(members[1]) ? answer(503, { error: 'busy' }) : NEVER));
    const { nodes } = await status();
    expect(nodes[1]).toEqual({ nodeId: 'node2', url: members[1], role: 'voter', reachable: true, error: 'GET /status answered HTTP 503' });
    expect(nodes[0]).toMatchObject({ nodeId: 'node1', reachable: false, error: 'no answer within 50 ms' });
  });
});

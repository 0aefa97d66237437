/**
 * ClusterBootstrapService: how a node finds its cluster identity (recorded, joined, discovered, alone), with
 * the peers' `GET /raft/hello` answers and the join call faked. No Nest, no network.
 */
import { Logger } from '@nestjs/common';
import { HttpService } from '@nestjs/axios';
import { AxiosRequestConfig } from 'axios';
import { of, throwError } from 'rxjs';
import { clusterIdFor, IdentityMismatchError } from '../../consensus/src/identity';
import { AddMemberAnswer, AddMemberRequest } from '../../consensus/src/membership';
import { ClientUrls } from './client-urls';
import { ClusterBootstrapError, ClusterBootstrapService, JoinCluster } from './cluster-bootstrap.service';
import { ClusterRpcOptions } from './cluster-rpc.options';
import { HelloAnswer } from './peer-protocol';

class FakeMetaStore {
  readonly written: Record<string, unknown>[] = [];
  /** Called inside setMeta, before it resolves (to see what the service shows meanwhile). */
  onWrite?: () => void;
  constructor(public meta: Record<string, unknown> | undefined = undefined) {}
  async setMeta(meta: Record<string, unknown>): Promise<void> {
    this.onWrite?.();
    this.written.push(meta);
    this.meta = meta;
  }
}

/** What a URL answers to `GET /raft/hello`: a hello, another status, or a network error code. */
type Reply = HelloAnswer | { status: number; data?: unknown } | { error: string };

/** The peers' answers, by URL; a function is asked at each request (its answers may change over time). */
class FakePeers {
  readonly requests: Array<{ url: string; headers: unknown }> = [];
  constructor(readonly replies: Record<string, Reply | ((n: number) => Reply)>) {}
  readonly http: Pick<HttpService, 'get'> = {
    get: ((url: string, config?: AxiosRequestConfig) => {
      this.requests.push({ url, headers: config?.headers });
      const base = url.replace(/\/raft\/hello$/, '');
      const entry = this.replies[base];
      const count = this.requests.filter((r) => r.url === url).length;
      const reply: Reply = typeof entry === 'function' ? entry(count) : (entry ?? { error: 'ECONNREFUSED' });
      if ('error' in reply) return throwError(() => Object.assign(new Error(`connect ${reply.error}`), { code: reply.error }));
      if ('nodeId' in reply) return of({ status: 200, data: reply });
      return of({ status: reply.status, data: reply.data });
    }) as unknown as HttpService['get'],
  };
  asked(base: string): number {
    return this.requests.filter((r) => r.url === `${base}/raft/hello`).length;
  }
}

const hello = (nodeId: string, instance = `instance-of-${nodeId}`, cluster?: { clusterId: string; initialVoters: string[] }): HelloAnswer => ({
  nodeId,
  instance,
  clusterId: cluster?.clusterId ?? null,
  initialVoters: cluster?.initialVoters ?? null,
});

function options(o: Partial<ClusterRpcOptions> = {}): ClusterRpcOptions {
  return {
    nodeId: 'node1',
    advertiseUrl: 'http://localhost:3001',
    httpPort: 3001,
    peerUrls: [],
    stallTimeoutMs: 1000,
    discovery: { retryMs: 5, logEveryMs: 0, requestTimeoutMs: 100 },
    ...o,
  };
}

let logs: string[];
beforeEach(() => {
  logs = [];
  jest.spyOn(Logger.prototype, 'log').mockImplementation((m: unknown) => void logs.push(String(m)));
});
afterEach(() => jest.restoreAllMocks());

const noJoin: JoinCluster = () => Promise.reject(new Error('no join expected'));

function service(o: Partial<ClusterRpcOptions>, peers = new FakePeers({}), store = new FakeMetaStore(), join: JoinCluster = noJoin) {
  return { svc: new ClusterBootstrapService(options(o), store, peers.http, join), peers, store };
}

/** The hello of this very process at `url` (the node listed among its own PEER_URLS). */
const itself = (svc: () => ClusterBootstrapService) => () => svc().hello();

const recorded = {
  format: 2,
  nodeId: 'node1',
  clusterId: 'c0ffee0123456789',
  initialVoters: ['node1', 'node2', 'node3'],
  addresses: { node1: 'http://old-name:3001', node2: 'http://127.0.0.1:3002', node3: 'http://127.0.0.1:3003' },
};

describe('ClusterBootstrapService: a data directory with an identity record', () => {
  it('takes the recorded identity (its own address as advertised now), asks nobody and writes nothing', async () => {
    const { svc, peers, store } = service({ peerUrls: ['http://127.0.0.1:3002'], join: undefined }, undefined, new FakeMetaStore(recorded));
    const identity = await svc.resolve();
    expect(identity).toEqual({
      clusterId: 'c0ffee0123456789',
      nodeId: 'node1',
      initialVoters: ['node1', 'node2', 'node3'],
      addresses: { ...recorded.addresses, node1: 'http://localhost:3001' },
    });
    expect(svc.identity).toEqual(identity);
    expect(peers.requests).toEqual([]);
    expect(store.written).toEqual([]);
  });

  it('ignores JOIN on a later start (the node joined already)', async () => {
    const join = jest.fn(noJoin);
    const { svc } = service({ join: 'http://node9:3001' }, undefined, new FakeMetaStore(recorded), join);
    await expect(svc.resolve()).resolves.toMatchObject({ clusterId: 'c0ffee0123456789' });
    expect(join).not.toHaveBeenCalled();
  });

  it.each([
    ["another node's directory", { ...recorded, nodeId: 'node2' }, /belongs to node 'node2'.*this process is 'node1'/],
    ['a removed node', { ...recorded, removed: true }, /was removed from the cluster; start it with an empty WAL_DIR and JOIN/],
    ['the URL-identity version', { nodeId: 'node1', url: 'http://localhost:3001', clusterId: 'x', members: [] }, /kvctl snapshot save/],
  ])('refuses %s, and says nothing in its hello', async (_what, meta, message) => {
    const { svc } = service({}, undefined, new FakeMetaStore(meta));
    await expect(svc.resolve()).rejects.toThrow(IdentityMismatchError);
    await expect(svc.resolve()).rejects.toThrow(message);
    expect(svc.identity).toBeUndefined();
    expect(svc.hello()).toMatchObject({ clusterId: null, initialVoters: null });
  });
});

describe('ClusterBootstrapService: first start without PEER_URLS or JOIN', () => {
  it('forms a single-node cluster, asks nobody, and records it', async () => {
    const { svc, peers, store } = service({ token: 'a-cluster-token-0123' });
    const identity = await svc.resolve();
    expect(identity).toEqual({
      clusterId: clusterIdFor(['node1'], 'a-cluster-token-0123'),
      nodeId: 'node1',
      initialVoters: ['node1'],
      addresses: { node1: 'http://localhost:3001' },
    });
    expect(peers.requests).toEqual([]);
    expect(store.written).toEqual([{ format: 2, ...identity }]);
  });
});

describe('ClusterBootstrapService: discovery (PEER_URLS)', () => {
  it('asks every entry its NODE_ID, forms the cluster of the sorted ids, and records it before resolving', async () => {
    const peers = new FakePeers({ 'http://127.0.0.1:3003': hello('node3'), 'http://node2.local:3002': hello('node2') });
    const store = new FakeMetaStore();
    const { svc } = service({ peerUrls: ['http://127.0.0.1:3003', 'http://node2.local:3002'] }, peers, store);
    const shownWhileWriting: unknown[] = [];
    store.onWrite = () => shownWhileWriting.push(svc.identity, svc.hello().clusterId);
    const identity = await svc.resolve();
    const clusterId = clusterIdFor(['node1', 'node2', 'node3']);
    expect(identity).toEqual({
      clusterId,
      nodeId: 'node1',
      initialVoters: ['node1', 'node2', 'node3'],
      addresses: { node1: 'http://localhost:3001', node2: 'http://node2.local:3002', node3: 'http://127.0.0.1:3003' },
    });
    // Nothing is announced before it is durable.
    expect(shownWhileWriting).toEqual([undefined, null]);
    expect(store.written).toEqual([{ format: 2, ...identity }]);
    expect(svc.hello()).toEqual({ nodeId: 'node1', instance: svc.instance, clusterId, initialVoters: ['node1', 'node2', 'node3'] });
  });

  it('every node of a new cluster computes the same identity', async () => {
    const urls = ['http://h1:3001', 'http://h2:3002', 'http://h3:3003'];
    const nodes = urls.map((url, i) => ({ url, id: `node${i + 1}` }));
    const results = await Promise.all(
      nodes.map(({ url, id }) => {
        const replies = Object.fromEntries(nodes.filter((n) => n.url !== url).map((n) => [n.url, hello(n.id)]));
        return service({ nodeId: id, advertiseUrl: url, peerUrls: urls.filter((u) => u !== url), token: 'a-cluster-token-0123' }, new FakePeers(replies)).svc.resolve();
      }),
    );
    expect(new Set(results.map((r) => r.clusterId)).size).toBe(1);
    expect(results[0].clusterId).toBe(clusterIdFor(['node1', 'node2', 'node3'], 'a-cluster-token-0123'));
    expect(results.map((r) => r.initialVoters)).toEqual([['node1', 'node2', 'node3'], ['node1', 'node2', 'node3'], ['node1', 'node2', 'node3']]);
  });

  it('drops the entry that answers with its own instance: this node listed under another spelling', async () => {
    let svc!: ClusterBootstrapService;
    const peers = new FakePeers({ 'http://127.0.0.1:3001': itself(() => svc), 'http://127.0.0.1:3002': hello('node2') });
    svc = service({ peerUrls: ['http://127.0.0.1:3001', 'http://127.0.0.1:3002'] }, peers).svc;
    const identity = await svc.resolve();
    expect(identity.initialVoters).toEqual(['node1', 'node2']);
    expect(identity.addresses).toEqual({ node1: 'http://localhost:3001', node2: 'http://127.0.0.1:3002' });
    expect(logs).toContain('http://127.0.0.1:3001 is this node itself: not a peer');
  });

  it('asks again every retry interval until every entry has answered, saying which are missing and why', async () => {
    const peers = new FakePeers({
      'http://127.0.0.1:3002': hello('node2'),
      'http://127.0.0.1:3003': (n) => (n < 3 ? { error: 'ECONNREFUSED' } : hello('node3')),
    });
    const { svc } = service({ peerUrls: ['http://127.0.0.1:3002', 'http://127.0.0.1:3003'] }, peers);
    await expect(svc.resolve()).resolves.toMatchObject({ initialVoters: ['node1', 'node2', 'node3'] });
    expect(peers.asked('http://127.0.0.1:3003')).toBe(3);
    // An entry that answered is not asked again.
    expect(peers.asked('http://127.0.0.1:3002')).toBe(1);
    expect(logs).toContain('still waiting for http://127.0.0.1:3003 (ECONNREFUSED)');
  });

  it.each<[string, Reply, string]>([
    ['a wrong token', { status: 401 }, 'it refused our CLUSTER_TOKEN (401): set the same CLUSTER_TOKEN on every node'],
    ['another status', { status: 404 }, 'it answered HTTP 404'],
    ['a body that is not a hello', { status: 200, data: { nodeId: 'node2' } }, 'its answer is not a hello'],
  ])('keeps waiting for a peer answering with %s, and says why', async (_what, bad, reason) => {
    const peers = new FakePeers({ 'http://127.0.0.1:3002': (n) => (n < 2 ? bad : hello('node2')) });
    const { svc } = service({ peerUrls: ['http://127.0.0.1:3002'] }, peers);
    await expect(svc.resolve()).resolves.toMatchObject({ initialVoters: ['node1', 'node2'] });
    expect(logs.some((l) => l.startsWith('still waiting for http://127.0.0.1:3002 (') && l.includes(reason))).toBe(true);
  });

  it('presents CLUSTER_TOKEN, its NODE_ID and its instance', async () => {
    const peers = new FakePeers({ 'http://127.0.0.1:3002': hello('node2') });
    const { svc } = service({ peerUrls: ['http://127.0.0.1:3002'], token: 'a-cluster-token-0123' }, peers);
    await svc.resolve();
    expect(peers.requests[0].headers).toEqual({
      authorization: 'Bearer a-cluster-token-0123',
      'x-raft-from': 'node1',
      'x-raft-instance': svc.instance,
    });
  });

  it('refuses a peer that answers with this NODE_ID from another process, naming its URL, after answering a while longer', async () => {
    const peers = new FakePeers({ 'http://127.0.0.1:3002': hello('node1', 'someone-else') });
    const { svc, store } = service({ peerUrls: ['http://127.0.0.1:3002'], discovery: { retryMs: 20, requestTimeoutMs: 100 } }, peers);
    const began = Date.now();
    await expect(svc.resolve()).rejects.toThrow(ClusterBootstrapError);
    // Two retry intervals and a request timeout: the other node, asking this one meanwhile, sees it too.
    expect(Date.now() - began).toBeGreaterThanOrEqual(135);
    await expect(svc.resolve()).rejects.toThrow(
      "duplicate NODE_ID: http://127.0.0.1:3002 answers as 'node1', the NODE_ID of this node (http://localhost:3001); give every node its own NODE_ID",
    );
    expect(store.written).toEqual([]);
  });

  it('refuses two entries answering one NODE_ID from two processes, naming both URLs', async () => {
    const peers = new FakePeers({ 'http://127.0.0.1:3002': hello('node2', 'a'), 'http://127.0.0.1:3003': hello('node2', 'b') });
    const { svc } = service({ peerUrls: ['http://127.0.0.1:3002', 'http://127.0.0.1:3003'] }, peers);
    await expect(svc.resolve()).rejects.toThrow(
      "duplicate NODE_ID: http://127.0.0.1:3002 and http://127.0.0.1:3003 both answer as 'node2' from two processes",
    );
  });

  it('takes two entries answering from one process for one node, under its first spelling', async () => {
    const peers = new FakePeers({ 'http://127.0.0.1:3002': hello('node2'), 'http://localhost:3002': hello('node2') });
    const { svc } = service({ peerUrls: ['http://127.0.0.1:3002', 'http://localhost:3002'] }, peers);
    const identity = await svc.resolve();
    expect(identity.initialVoters).toEqual(['node1', 'node2']);
    expect(identity.addresses.node2).toBe('http://127.0.0.1:3002');
  });

  it('does not take a peer restarted between two answers for two nodes: both are asked again', async () => {
    const peers = new FakePeers({
      'http://127.0.0.1:3002': (n) => hello('node2', n === 1 ? 'before-restart' : 'after-restart'),
      'http://localhost:3002': () => hello('node2', 'after-restart'),
    });
    const { svc } = service({ peerUrls: ['http://127.0.0.1:3002', 'http://localhost:3002'] }, peers);
    await expect(svc.resolve()).resolves.toMatchObject({ initialVoters: ['node1', 'node2'] });
  });

  it('adopts the cluster a peer formed already when it lists this node among its initial voters (a slower initial member)', async () => {
    const formed = { clusterId: 'feedfacecafebeef', initialVoters: ['node1', 'node2', 'node3'] };
    const peers = new FakePeers({ 'http://127.0.0.1:3002': hello('node2', 'i2', formed), 'http://127.0.0.1:3003': hello('node3') });
    const { svc, store } = service({ peerUrls: ['http://127.0.0.1:3002', 'http://127.0.0.1:3003'] }, peers);
    const identity = await svc.resolve();
    expect(identity).toMatchObject({ clusterId: 'feedfacecafebeef', initialVoters: ['node1', 'node2', 'node3'] });
    expect(store.written).toHaveLength(1);
  });

  it('refuses to start a new cluster next to an existing one that does not list it, and says to use JOIN', async () => {
    const formed = { clusterId: 'feedfacecafebeef', initialVoters: ['node2', 'node3'] };
    const peers = new FakePeers({ 'http://127.0.0.1:3002': hello('node2', 'i2', formed) });
    const { svc, store } = service({ nodeId: 'node4', peerUrls: ['http://127.0.0.1:3002'] }, peers);
    await expect(svc.resolve()).rejects.toThrow(
      'this node has no data and http://127.0.0.1:3002 (node2) belongs to an existing cluster feedfacecafebeef ' +
        '(initial voters node2, node3); add it with JOIN=http://127.0.0.1:3002 and no PEER_URLS',
    );
    expect(store.written).toEqual([]);
  });

  it('refuses peers of different clusters', async () => {
    const peers = new FakePeers({
      'http://127.0.0.1:3002': hello('node2', 'i2', { clusterId: 'aaaaaaaaaaaaaaaa', initialVoters: ['node1', 'node2'] }),
      'http://127.0.0.1:3003': hello('node3', 'i3', { clusterId: 'bbbbbbbbbbbbbbbb', initialVoters: ['node1', 'node3'] }),
    });
    const { svc } = service({ peerUrls: ['http://127.0.0.1:3002', 'http://127.0.0.1:3003'] }, peers);
    await expect(svc.resolve()).rejects.toThrow(/^PEER_URLS names members of different clusters: /);
  });

  it('stops discovering when the module is destroyed', async () => {
    const { svc } = service({ peerUrls: ['http://127.0.0.1:3002'], discovery: { retryMs: 60_000, logEveryMs: 60_000 } });
    const resolving = svc.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    svc.onModuleDestroy();
    await expect(resolving).rejects.toThrow('stopped while discovering the cluster');
  });
});

describe('ClusterBootstrapService: first start with JOIN', () => {
  const answer: AddMemberAnswer = {
    clusterId: 'feedfacecafebeef',
    index: 42,
    initialVoters: ['node1', 'node2', 'node3'],
    member: { nodeId: 'node4', url: 'http://10.0.0.4:3004', role: 'learner', self: false },
    members: [
      { nodeId: 'node1', url: 'http://10.0.0.1:3001', role: 'voter', self: true },
      { nodeId: 'node2', url: 'http://10.0.0.2:3002', role: 'voter', self: false },
      { nodeId: 'node3', role: 'voter', self: false },
      { nodeId: 'node4', url: 'http://10.0.0.4:3004', role: 'learner', self: false },
    ],
  };

  it('asks to be added as a learner (its address left to the member without ADVERTISE_URL), and records the answer', async () => {
    const requests: Array<[string, AddMemberRequest]> = [];
    const join: JoinCluster = async (url, request) => {
      requests.push([url, request]);
      return answer;
    };
    const { svc, store, peers } = service({ nodeId: 'node4', httpPort: 3004, advertiseUrl: 'http://localhost:3004', join: 'http://10.0.0.1:3001' }, undefined, undefined, join);
    const identity = await svc.resolve();
    expect(requests).toEqual([['http://10.0.0.1:3001', { nodeId: 'node4', url: undefined, port: 3004, learner: true }]]);
    expect(identity).toEqual({
      clusterId: 'feedfacecafebeef',
      nodeId: 'node4',
      initialVoters: ['node1', 'node2', 'node3'],
      addresses: { node1: 'http://10.0.0.1:3001', node2: 'http://10.0.0.2:3002', node4: 'http://10.0.0.4:3004' },
      // The index of its addition: an earlier removal of a node named node4 is not about this one.
      joinedAt: 42,
    });
    expect(store.written).toEqual([{ format: 2, ...identity }]);
    expect(peers.requests).toEqual([]);
  });

  it('announces ADVERTISE_URL when it was given', async () => {
    const join = jest.fn<Promise<AddMemberAnswer>, [string, AddMemberRequest]>(async () => answer);
    const { svc } = service({ nodeId: 'node4', advertiseUrl: 'http://node4:3004', advertiseUrlGiven: true, httpPort: 3004, join: 'http://node1:3001' }, undefined, undefined, join);
    await svc.resolve();
    expect(join.mock.calls[0][1]).toEqual({ nodeId: 'node4', url: 'http://node4:3004', port: 3004, learner: true });
  });

  it('fails with one line when the join is refused, and records nothing', async () => {
    const join: JoinCluster = () => Promise.reject(new Error('409: node4 is already a member'));
    const { svc, store } = service({ nodeId: 'node4', join: 'http://node1:3001' }, undefined, undefined, join);
    await expect(svc.resolve()).rejects.toThrow(new ClusterBootstrapError('cannot join the cluster of http://node1:3001 (JOIN): 409: node4 is already a member'));
    expect(store.written).toEqual([]);
  });

  it('fails on an answer that is not an add-member answer', async () => {
    const join = (async () => ({ error: 'nope' })) as unknown as JoinCluster;
    const { svc } = service({ nodeId: 'node4', join: 'http://node1:3001' }, undefined, undefined, join);
    await expect(svc.resolve()).rejects.toThrow(/its answer is not an add-member answer/);
  });
});

describe('ClusterBootstrapService: hello and resolve', () => {
  it('logs a duplicate when another process asks with its NODE_ID (once per 30 s), not when it asks itself', () => {
    const errors: string[] = [];
    jest.spyOn(Logger.prototype, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
    const { svc } = service({});
    svc.hello({ nodeId: 'node1', instance: svc.instance, address: '127.0.0.1' });
    svc.hello({ nodeId: 'node2', instance: 'x', address: '127.0.0.1' });
    svc.hello({});
    expect(errors).toEqual([]);
    svc.hello({ nodeId: 'node1', instance: 'another-process', address: '10.0.0.7' });
    svc.hello({ nodeId: 'node1', instance: 'another-process', address: '10.0.0.7' });
    expect(errors).toEqual(["duplicate NODE_ID: a node at 10.0.0.7 also calls itself 'node1', this node's NODE_ID; give every node its own NODE_ID"]);
  });

  it('answers its NODE_ID and a per-process instance, and null for the cluster before it has one', () => {
    const a = service({}).svc;
    const b = service({}).svc;
    expect(a.hello()).toEqual({ nodeId: 'node1', instance: a.instance, clusterId: null, initialVoters: null });
    expect(a.instance).toMatch(/^[0-9a-f]{32}$/);
    expect(b.instance).not.toBe(a.instance);
  });

  it('resolves once: a second call gets the first outcome', async () => {
    const peers = new FakePeers({ 'http://127.0.0.1:3002': hello('node2') });
    const { svc, store } = service({ peerUrls: ['http://127.0.0.1:3002'] }, peers);
    const [x, y] = await Promise.all([svc.resolve(), svc.resolve()]);
    expect(y).toBe(x);
    expect(store.written).toHaveLength(1);
    expect(peers.requests).toHaveLength(1);
  });
});

describe('ClusterBootstrapService with PEER_PORT (member URLs are peer URLs; client URLs travel apart)', () => {
  /** A node4 whose member URL is its peer URL (advertiseUrl), with its client URL set as main.ts sets it. */
  function peerPortService(o: Partial<ClusterRpcOptions>, peers = new FakePeers({}), join: JoinCluster = noJoin) {
    const opts = options({ nodeId: 'node4', httpPort: 3004, advertiseUrl: 'http://localhost:4004', ...o });
    const clientUrls = new ClientUrls(opts);
    clientUrls.setOwn('http://localhost:3004');
    const learned: Array<[string, string]> = [];
    clientUrls.onClientUrl((id, url) => learned.push([id, url]));
    return { svc: new ClusterBootstrapService(opts, new FakeMetaStore(), peers.http, join, clientUrls), learned };
  }

  it("joins with its peer URL's port when no URL was given, and records the members' peer URLs, learning their client URLs", async () => {
    const requests: AddMemberRequest[] = [];
    const join: JoinCluster = async (_url, request) => {
      requests.push(request);
      return {
        clusterId: 'feedfacecafebeef',
        index: 42,
        initialVoters: ['node1'],
        member: { nodeId: 'node4', url: 'http://10.0.0.4:4004', peerUrl: 'http://10.0.0.4:4004', clientUrl: 'http://10.0.0.4:4004', role: 'learner', self: false },
        members: [
          { nodeId: 'node1', url: 'http://10.0.0.1:4001', peerUrl: 'http://10.0.0.1:4001', clientUrl: 'http://10.0.0.1:3001', role: 'voter', self: true },
          { nodeId: 'node4', url: 'http://10.0.0.4:4004', peerUrl: 'http://10.0.0.4:4004', clientUrl: 'http://10.0.0.4:4004', role: 'learner', self: false },
        ],
      };
    };
    const { svc, learned } = peerPortService({ join: 'http://10.0.0.1:3001' }, undefined, join);
    const identity = await svc.resolve();
    expect(requests).toEqual([{ nodeId: 'node4', url: undefined, port: 4004, learner: true }]);
    expect(identity.addresses).toEqual({ node1: 'http://10.0.0.1:4001', node4: 'http://10.0.0.4:4004' });
    // Its own client URL is its own business: the leader only knows the member URL it was added with.
    expect(learned).toEqual([
      ['node4', 'http://localhost:3004'],
      ['node1', 'http://10.0.0.1:3001'],
    ]);
  });

  it('announces its peer URL when PEER_ADVERTISE_URL (or ADVERTISE_URL) was given', async () => {
    const join = jest.fn<Promise<AddMemberAnswer>, [string, AddMemberRequest]>(async () => ({
      clusterId: 'c',
      index: 1,
      initialVoters: ['node1'],
      member: { nodeId: 'node4', url: 'http://node4:4004', role: 'learner', self: false },
      members: [],
    }));
    const { svc } = peerPortService({ advertiseUrl: 'http://node4:4004', advertiseUrlGiven: true, join: 'http://node1:3001' }, undefined, join);
    await svc.resolve();
    expect(join.mock.calls[0][1]).toEqual({ nodeId: 'node4', url: 'http://node4:4004', port: 4004, learner: true });
  });

  it('answers hello with its client URL, and learns the peers\' from theirs', async () => {
    const peers = new FakePeers({ 'http://127.0.0.1:4002': { ...hello('node2'), clientUrl: 'http://127.0.0.1:3002' } });
    const { svc, learned } = peerPortService({ peerUrls: ['http://127.0.0.1:4002'] }, peers);
    expect(svc.hello()).toMatchObject({ nodeId: 'node4', clientUrl: 'http://localhost:3004' });
    const identity = await svc.resolve();
    expect(identity.addresses).toEqual({ node4: 'http://localhost:4004', node2: 'http://127.0.0.1:4002' });
    expect(learned).toContainEqual(['node2', 'http://127.0.0.1:3002']);
  });

  it('answers hello without a client URL when it has one URL for clients and peers', () => {
    const { svc } = service({});
    expect(svc.hello()).not.toHaveProperty('clientUrl');
  });
});


/**
 * HttpPeerTransport with members known by NODE_ID: setPeers() opens, closes and moves the streams (a peer's
 * URL is only where it is reached), and admit() refuses whoever is not a member of this node's cluster.
 */
import { Logger } from '@nestjs/common';
import { Message, MessageType, newMessage } from '@app/consensus/core';
import { createServer, IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { HttpPeerTransport } from './http-peer-transport';
import { PeerAdmission } from './peer-admission';
import { PEER_HEADERS } from './peer-protocol';
import { testTransport } from './testing/test-transport';

const eventually = async (what: string, probe: () => boolean, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

const heartbeat = (from: string, to: string, term = 2): Message => newMessage(MessageType.MsgHeartbeat, to, from, term);

/** A node's HTTP side: PeerController's admit-then-serve, recording each stream request's headers. */
class PeerServer {
  readonly requests: IncomingHttpHeaders[] = [];
  readonly open = new Set<IncomingMessage>();
  private server!: Server;
  url = '';

  constructor(readonly transport: HttpPeerTransport) {}

  async start(): Promise<this> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      this.requests.push(req.headers);
      const admitted = this.transport.admit(req.headers, req.socket.remoteAddress);
      if ('status' in admitted) {
        res.writeHead(admitted.status).end(JSON.stringify({ error: admitted.error }));
        return;
      }
      this.open.add(req);
      req.on('close', () => this.open.delete(req));
      this.transport.serve(admitted.from, req, res);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('HttpPeerTransport: members by NODE_ID', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  let errors: string[];
  beforeEach(() => {
    errors = [];
    jest.spyOn(Logger.prototype, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    jest.restoreAllMocks();
  });

  /** node2 and node3 serving on real ports, each with node1 as its peer; node1 with both as its peers. */
  async function trio() {
    const received = { node2: [] as Message[], node3: [] as Message[] };
    const servers: Record<'node2' | 'node3', PeerServer> = {} as never;
    for (const id of ['node2', 'node3'] as const) {
      const t = testTransport({ nodeId: id, peers: { node1: 'http://127.0.0.1:1' } });
      t.listen((messages) => received[id].push(...messages));
      servers[id] = await new PeerServer(t).start();
      cleanups.push(() => t.onModuleDestroy(), () => servers[id].stop());
    }
    const registry = new Registry();
    const node1 = testTransport({
      nodeId: 'node1',
      peers: { node2: servers.node2.url, node3: servers.node3.url },
      token: 'a-cluster-token-0123',
      metrics: new ClusterRpcMetrics(registry),
      stallTimeoutMs: 1000,
      limits: { minBackoffMs: 10, maxBackoffMs: 50 },
    });
    cleanups.push(() => node1.onModuleDestroy());
    return { node1, servers, received, registry };
  }

  it('streams to each peer at its URL, announcing its NODE_ID and cluster id, and delivers by NODE_ID', async () => {
    const { node1, servers, received } = await trio();
    node1.send([heartbeat('node1', 'node2'), heartbeat('node1', 'node3', 3)]);
    await eventually('both deliveries', () => received.node2.length === 1 && received.node3.length === 1);
    expect(received.node2[0]).toEqual(heartbeat('node1', 'node2'));
    expect(received.node3[0]).toEqual(heartbeat('node1', 'node3', 3));
    expect(servers.node2.requests[0]).toMatchObject({
      [PEER_HEADERS.from]: 'node1',
      [PEER_HEADERS.clusterId]: 'c1',
      authorization: 'Bearer a-cluster-token-0123',
    });
    expect(servers.node2.requests[0]).not.toHaveProperty('x-raft-node-id');
    expect(node1.peers()).toEqual(new Map([['node2', servers.node2.url], ['node3', servers.node3.url]]));
  });

  it('creates the snapshot series of each new peer at zero, labelled by NODE_ID', async () => {
    const { registry } = await trio();
    const values = (await registry.getSingleMetric('raftkv_peer_snapshots_sent_total')!.get()).values;
    expect(values.map((v) => v.labels.peer).sort()).toEqual(['node2', 'node2', 'node3', 'node3']);
  });

  it('closes the stream of a peer no longer listed, and sends it nothing more', async () => {
    const { node1, servers, received } = await trio();
    node1.send([heartbeat('node1', 'node2'), heartbeat('node1', 'node3')]);
    // Both heartbeats delivered (an open stream alone does not mean its first frame has arrived).
    await eventually('both heartbeats', () => received.node2.length === 1 && received.node3.length === 1);
    node1.setPeers(new Map([['node2', servers.node2.url]]));
    await eventually('the stream to node3 to close', () => servers.node3.open.size === 0);
    node1.send([heartbeat('node1', 'node2', 4), heartbeat('node1', 'node3', 4)]);
    await eventually('node2 to get the second heartbeat', () => received.node2.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(received.node3).toHaveLength(1);
    expect(servers.node3.requests).toHaveLength(1);
    expect(node1.peers()).toEqual(new Map([['node2', servers.node2.url]]));
  });

  it('learns that it was removed from a peer that answers its stream 410 naming it, and from no other refusal', async () => {
    const { node1, servers } = await trio();
    let told = 0;
    node1.onRemoved(() => told++);
    // node3 refuses node1 as no member (403): that says nothing about a removal.
    servers.node3.transport.setPeers(new Map());
    node1.send([heartbeat('node1', 'node3')]);
    await eventually('the refusal', () => servers.node3.requests.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(told).toBe(0);
    // node2 applied node1's removal: its answer names node1.
    servers.node2.transport.setPeers(new Map(), new Map([['node1', 'http://127.0.0.1:1']]));
    node1.send([heartbeat('node1', 'node2')]);
    await eventually('node1 to learn it was removed', () => told > 0);
  });

  it('moves the stream of a peer whose URL changed', async () => {
    const { node1, servers, received } = await trio();
    node1.send([heartbeat('node1', 'node2')]);
    await eventually('the stream to node2', () => received.node2.length === 1);
    // node3's server stands for node2 at its new address: it knows node1 as well.
    node1.setPeers(new Map([['node2', servers.node3.url], ['node3', servers.node3.url]]));
    await eventually('the old stream to close', () => servers.node2.open.size === 0);
    node1.send([heartbeat('node1', 'node2', 3)]);
    await eventually('a request at the new address', () => servers.node3.requests.length === 1);
    expect(servers.node3.requests[0][PEER_HEADERS.from]).toBe('node1');
    expect(node1.peers().get('node2')).toBe(servers.node3.url);
  });

  it("closes the inbound stream of a peer no longer listed, and refuses its next one (403)", async () => {
    const { node1, servers } = await trio();
    const node2 = servers.node2.transport;
    // node2 streams to node1: serve node1 on a port of its own.
    const node1Server = await new PeerServer(node1).start();
    cleanups.push(() => node1Server.stop());
    node2.setPeers(new Map([['node1', node1Server.url]]));
    node2.send([heartbeat('node2', 'node1')]);
    await eventually('the inbound stream', () => node1Server.open.size === 1);
    node1.setPeers(new Map([['node3', servers.node3.url]]));
    await eventually('the inbound stream to close', () => node1Server.open.size === 0);
    expect(node1.admit({ [PEER_HEADERS.from]: 'node2', [PEER_HEADERS.clusterId]: 'c1' })).toEqual({
      status: 403,
      error: 'node2 is not a member of this cluster',
    });
  });

  it('ignores its own NODE_ID among the peers', () => {
    const t = testTransport({ nodeId: 'node1', peers: { node1: 'http://127.0.0.1:1', node2: 'http://127.0.0.1:2' } });
    cleanups.push(() => t.onModuleDestroy());
    expect([...t.peers().keys()]).toEqual(['node2']);
  });

  it('hands the members\' URLs, its own advertised one included, to the address check', async () => {
    const admission = new PeerAdmission({ members: ['http://10.9.9.9:3001'] });
    const t = testTransport({
      nodeId: 'node1',
      advertiseUrl: 'http://127.0.0.1:3001',
      peers: { node2: 'http://10.0.0.2:3002', node3: 'http://[fd00::3]:3003' },
      peerAdmission: admission,
    });
    cleanups.push(() => t.onModuleDestroy());
    expect(admission.addresses()).toEqual(['10.0.0.2', '127.0.0.1', 'fd00::3']);
    t.setPeers(new Map([['node2', 'http://10.0.0.2:3002']]));
    expect(admission.addresses()).toEqual(['10.0.0.2', '127.0.0.1']);
    // A removed member's address stays admitted: its streams must get through to be told 410, not 403.
    t.setPeers(new Map([['node2', 'http://10.0.0.2:3002']]), new Map([['node3', 'http://[fd00::3]:3003']]));
    expect(admission.addresses()).toEqual(['10.0.0.2', '127.0.0.1', 'fd00::3']);
    expect(t.admit({ [PEER_HEADERS.from]: 'node3', [PEER_HEADERS.clusterId]: 'c1' })).toEqual({ status: 410, error: 'node3 was removed from the cluster' });
  });

  it('cannot set its peers before its cluster is known', () => {
    const t = testTransport({ nodeId: 'node1', clusterId: null });
    expect(() => t.setPeers(new Map([['node2', 'http://127.0.0.1:2']]))).toThrow(/before the cluster identity is known/);
  });

  describe('admit()', () => {
    const headers = (from: string, clusterId = 'c1') => ({ [PEER_HEADERS.from]: from, [PEER_HEADERS.clusterId]: clusterId });
    let t: HttpPeerTransport;
    beforeEach(() => {
      t = testTransport({ nodeId: 'node1', peers: { node2: 'http://127.0.0.1:2' } });
      cleanups.push(() => t.onModuleDestroy());
    });

    it('admits a peer of its cluster, by NODE_ID', () => {
      expect(t.admit(headers('node2'))).toEqual({ from: 'node2' });
    });

    it('refuses a sender of another cluster with 409, and logs it', () => {
      const answer = t.admit(headers('node2', 'c2'), '127.0.0.1');
      expect(answer).toMatchObject({ status: 409 });
      expect('error' in answer && answer.error).toMatch(/^cluster mismatch: node2 at 127\.0\.0\.1 belongs to cluster c2, this node \(node1\) to cluster c1/);
      expect(errors).toHaveLength(1);
    });

    it('refuses a sender with its own NODE_ID with 409: duplicate NODE_ID', () => {
      const answer = t.admit(headers('node1'), '10.0.0.7');
      expect(answer).toEqual({
        status: 409,
        error: "duplicate NODE_ID: a peer at 10.0.0.7 also calls itself 'node1', this node's NODE_ID; give every node its own NODE_ID",
      });
      expect(errors).toEqual([(answer as { error: string }).error]);
    });

    it('refuses a sender that is not among its peers with 403', () => {
      expect(t.admit(headers('node9'))).toEqual({ status: 403, error: 'node9 is not a member of this cluster' });
      expect(t.admit({ [PEER_HEADERS.clusterId]: 'c1' })).toEqual({ status: 403, error: 'the sender is not a member of this cluster' });
    });

    it('answers 503 to everyone while its cluster is not known yet (discovery or join under way)', () => {
      const starting = testTransport({ nodeId: 'node1', clusterId: null });
      expect(starting.admit(headers('node2'))).toEqual({ status: 503, error: 'node1 is starting: it has not found its cluster yet' });
    });
  });

  it('closes a stream whose messages are addressed to another member', async () => {
    const { node1, servers, received } = await trio();
    node1.send([heartbeat('node1', 'node2')]);
    await eventually('the stream', () => received.node2.length === 1);
    // send() routes by `to`: put a message for node3 on node2's stream directly, as a confused sender would.
    const streams = (node1 as unknown as { streams: Map<string, { send(m: Message[]): void }> }).streams;
    streams.get('node2')!.send([heartbeat('node1', 'node3', 7)]);
    await eventually('the stream to be closed', () => servers.node2.open.size === 0);
    expect(received.node2).toHaveLength(1);
    expect(errors.some((e) => e.includes('closing the stream from node1') && e.includes('does not match'))).toBe(true);
  });
});

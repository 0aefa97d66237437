import { PEER_HELLO_PATH, PEER_STREAM_PATH, STREAMED_BODY_ROUTE } from '@app/cluster-rpc';
import { ConfigError } from '@app/config';
import Fastify, { FastifyInstance } from 'fastify';
import { createServer, Server } from 'node:http';
import { AddressInfo, connect } from 'node:net';
import { PeerListener, PeerListenerConfig } from './peer-listener';

/**
 * One Fastify instance behind two listeners: the client one (Fastify's own server) and the peer one
 * (PeerListener's node:http server into fastify.routing). Ports are the OS's choice (0).
 */
const config: PeerListenerConfig & { peerPort: number } = {
  nodeId: 'node1',
  httpPort: 3001,
  clientUrl: 'http://127.0.0.1:3001',
  advertiseUrl: 'http://127.0.0.1:4001',
  peerPort: 0,
  peerBindHost: '127.0.0.1',
  headersTimeoutMs: 300,
  bodyTimeoutMs: 300,
  keepAliveTimeoutMs: 1000,
  maxConnections: 64,
};

let app: FastifyInstance;
let peers: PeerListener;
let clientBase: string;
let peerBase: string;
let hooksSeen: string[];

beforeEach(async () => {
  app = Fastify();
  peers = new PeerListener(app, config);
  peers.separateRoutes();
  hooksSeen = [];
  // A later hook (API tokens, the removed-node answer...) never sees a request on the wrong port.
  app.addHook('onRequest', async (request) => void hooksSeen.push(request.url));
  app.get(PEER_HELLO_PATH, async () => ({ nodeId: 'node1' }));
  app.post(PEER_STREAM_PATH, { config: STREAMED_BODY_ROUTE }, async () => ({ stream: true }));
  app.get('/kv/:key', async (request) => ({ key: (request.params as { key: string }).key }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  await peers.listen();
  clientBase = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  peerBase = `http://127.0.0.1:${(peers.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await app.close();
});

async function get(url: string, init?: RequestInit): Promise<{ status: number; body: any; connection: string | null }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.json(), connection: response.headers.get('connection') };
}

describe('PeerListener (PEER_PORT)', () => {
  it('serves the peer routes on the peer port and the rest on the client port, from one set of routes', async () => {
    expect(await get(`${peerBase}${PEER_HELLO_PATH}`)).toMatchObject({ status: 200, body: { nodeId: 'node1' } });
    expect(await get(`${peerBase}${PEER_STREAM_PATH}`, { method: 'POST' })).toMatchObject({ status: 200, body: { stream: true } });
    expect(await get(`${clientBase}/kv/a`)).toMatchObject({ status: 200, body: { key: 'a' } });
    expect(hooksSeen).toEqual([PEER_HELLO_PATH, PEER_STREAM_PATH, '/kv/a']);
  });

  it('answers /raft/* on the client port with a 404 naming the peer port, before any other hook', async () => {
    for (const path of [PEER_HELLO_PATH, `${PEER_HELLO_PATH}?x=1`, '/raft/nothing', '/raft']) {
      const answer = await get(`${clientBase}${path}`);
      expect(answer).toMatchObject({ status: 404, connection: 'close' });
      expect(answer.body.error).toBe('Not found: peer traffic (/raft/*) is served on the peer port of node1 (PEER_PORT 0, http://127.0.0.1:4001)');
    }
    expect((await get(`${clientBase}${PEER_STREAM_PATH}`, { method: 'POST' })).status).toBe(404);
    expect(hooksSeen).toEqual([]);
  });

  it('answers anything but the peer routes on the peer port with a 404 naming HTTP_PORT', async () => {
    for (const [path, method] of [['/kv/a', 'GET'], ['/status', 'GET'], [PEER_STREAM_PATH, 'GET'], ['/raftish', 'GET']]) {
      const answer = await get(`${peerBase}${path}`, { method });
      expect(answer).toMatchObject({ status: 404, connection: 'close' });
      expect(answer.body.error).toBe(
        'Not found: this is the peer port of node1 (PEER_PORT 0), which serves only /raft/stream, /raft/snapshot, /raft/hello; ' +
          'clients use HTTP_PORT 3001 (http://127.0.0.1:3001)',
      );
    }
    expect(hooksSeen).toEqual([]);
  });

  it("closes a peer-port connection whose headers do not come within HEADERS_TIMEOUT_MS, as the client port does", async () => {
    const { port } = peers.address() as AddressInfo;
    const closedAfter = await new Promise<number>((resolve) => {
      const started = Date.now();
      const socket = connect(port, '127.0.0.1', () => socket.write('GET /raft/hello HTTP/1.1\r\nHost: x\r\n'));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Date.now() - started));
      socket.resume();
    });
    expect(closedAfter).toBeGreaterThanOrEqual(config.headersTimeoutMs - 50);
    expect(closedAfter).toBeLessThan(5000);
  });

  it('closes the peer port with the app, open connections included', async () => {
    const { port } = peers.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await app.close();
    await closed;
    await expect(fetch(`${peerBase}${PEER_HELLO_PATH}`)).rejects.toThrow();
  });
});

describe('PeerListener.listen', () => {
  let taken: Server;
  afterEach(async () => {
    taken?.close();
  });

  it('fails with a ConfigError naming PEER_PORT when the port is taken', async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    const fastify = Fastify();
    const listener = new PeerListener(fastify, { ...config, peerPort: port });
    await expect(listener.listen()).rejects.toThrow(new ConfigError(`PEER_PORT ${port} is already in use on 127.0.0.1`));
    await fastify.close();
  });
});

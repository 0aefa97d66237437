import { DynamicModule, Global, Logger, Module } from '@nestjs/common';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Test } from '@nestjs/testing';
import { Message, MessageType } from '@app/consensus/core';
import { RAFT_STORAGE, SNAPSHOT_FILES } from '@app/consensus/ports';
import { createServer, request } from 'node:http';
import { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ClusterBootstrapService } from './cluster-bootstrap.service';
import { ClusterRpcModule } from './cluster-rpc.module';
import { HttpPeerTransport } from './http-peer-transport';
import { PEER_HELLO_PATH, PEER_SNAPSHOT_CONTENT_TYPE, PEER_SNAPSHOT_PATH } from './peer-protocol';
import { fakeSnapshotFile, FakeSnapshotFiles, msgSnap, postSnapshotRoute } from './testing/fake-snapshot-files';
import { testTransport } from './testing/test-transport';

/**
 * The peer routes as the node serves them: ClusterRpcModule on Fastify, listening on loopback, with its
 * token guard, its address admission and its streamed body, fed by a real sending transport. What the
 * transport does with the body is covered by snapshot-transfer.spec.ts; here, that the route reaches it, and
 * that whoever may not send a snapshot is refused before a byte of it is written. And `GET /raft/hello`.
 */

/** The sending member: its NODE_ID, and the URL the receiver knows it by (whose host the address check admits). */
const SENDER = 'sender';
const SENDER_URL = 'http://127.0.0.1:1';
/** The identity recorded in the receiver's data directory: member `receiver` of cluster c1, with the sender. */
const RECORDED = { format: 2, nodeId: 'receiver', clusterId: 'c1', initialVoters: ['receiver', SENDER], addresses: { [SENDER]: SENDER_URL } };
const TOKEN = 'cluster-token-0123456789';
const MB = 1024 * 1024;

@Global()
@Module({ providers: [{ provide: Registry, useFactory: () => new Registry() }], exports: [Registry] })
class RegistryModule {}

@Module({})
class SnapshotFilesModule {
  static with(files?: FakeSnapshotFiles): DynamicModule {
    const storage = { meta: RECORDED, setMeta: async () => undefined };
    return {
      module: SnapshotFilesModule,
      providers: [{ provide: RAFT_STORAGE, useValue: storage }, ...(files ? [{ provide: SNAPSHOT_FILES, useValue: files }] : [])],
      exports: [RAFT_STORAGE, ...(files ? [SNAPSHOT_FILES] : [])],
    };
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const eventually = async (what: string, probe: () => boolean, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe('PeerController', () => {
  const cleanups: Array<() => Promise<unknown> | void> = [];
  let warnings: string[];
  beforeEach(() => {
    warnings = [];
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((m: unknown) => void warnings.push(String(m)));
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    jest.restoreAllMocks();
  });

  /**
   * A node `receiver` serving the peer routes (with SNAPSHOT_FILES bound to `files`, if given), its identity
   * resolved from its recorded one and its peers set, as the node layer does before it starts.
   */
  async function node(files?: FakeSnapshotFiles, options: { resolve?: boolean } = {}) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const moduleRef = await Test.createTestingModule({
      imports: [
        RegistryModule,
        ClusterRpcModule.forRootAsync({
          imports: [SnapshotFilesModule.with(files)],
          useFactory: () => ({ nodeId: 'receiver', advertiseUrl: url, httpPort: port, peerUrls: [], token: TOKEN, stallTimeoutMs: 1000 }),
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    await app.listen(port, '127.0.0.1');
    cleanups.push(() => app.close());
    const received: Message[] = [];
    const transport = app.get(HttpPeerTransport);
    transport.listen((messages) => received.push(...messages));
    if (options.resolve !== false) {
      await app.get(ClusterBootstrapService).resolve();
      transport.setPeers(new Map([[SENDER, SENDER_URL]]));
    }
    return { app, url, received };
  }

  /** A sending transport, as member `self`, with a snapshot 10 of `bytes` bytes to send to `receiver` at `to`. */
  function sender(to: string, options: { self?: string; token?: string; bytes?: number } = {}) {
    const files = new FakeSnapshotFiles();
    const file = fakeSnapshotFile(10, 2, options.bytes ?? 100_000);
    files.add(10, 2, file);
    const self = options.self ?? SENDER;
    const tx = testTransport({ nodeId: self, peers: { receiver: to }, token: options.token ?? TOKEN, files });
    const statuses: boolean[] = [];
    tx.onSnapshotStatus((_peer, failed) => statuses.push(failed));
    cleanups.push(() => tx.onModuleDestroy());
    return { file, statuses, send: () => tx.send([msgSnap(self, 'receiver', 10)]) };
  }

  describe('GET /raft/hello', () => {
    const get = (url: string, headers: Record<string, string> = {}) =>
      fetch(`${url}${PEER_HELLO_PATH}`, { headers }).then(async (r) => ({ status: r.status, body: await r.json() }));

    it('answers who this node is and its cluster, to a caller with the cluster token', async () => {
      const { app, url } = await node();
      const answer = await get(url, { authorization: `Bearer ${TOKEN}` });
      expect(answer).toEqual({
        status: 200,
        body: { nodeId: 'receiver', instance: app.get(ClusterBootstrapService).instance, clusterId: 'c1', initialVoters: ['receiver', SENDER] },
      });
    });

    it('answers null for the cluster before the node has found it', async () => {
      const { url } = await node(undefined, { resolve: false });
      const answer = await get(url, { authorization: `Bearer ${TOKEN}` });
      expect(answer.body).toMatchObject({ nodeId: 'receiver', clusterId: null, initialVoters: null });
    });

    it('refuses a caller without the cluster token (401)', async () => {
      const { url } = await node();
      expect((await get(url)).status).toBe(401);
      expect((await get(url, { authorization: 'Bearer not-the-cluster-token' })).status).toBe(401);
    });

    it('is not restricted to the members\' addresses: a node that is not a member yet asks it', async () => {
      const { url } = await node();
      const answer = await new Promise<number>((resolve, reject) => {
        const req = request(`${url}${PEER_HELLO_PATH}`, { localAddress: '127.0.0.2', headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      });
      expect(answer).toBe(200);
    });
  });

  it('refuses a stream before the node has found its cluster (503: the sender retries)', async () => {
    const target = new FakeSnapshotFiles();
    const { url, received } = await node(target, { resolve: false });
    const { statuses, send } = sender(url);
    send();
    await eventually('the outcome', () => statuses.length > 0);
    expect(statuses).toEqual([true]);
    expect(warnings.some((w) => w.includes('(503)') && w.includes('has not found its cluster yet'))).toBe(true);
    expect(target.incoming).toHaveLength(0);
    expect(received).toHaveLength(0);
  });

  it('takes a snapshot past any body limit through the route, verifies it, and hands the MsgSnap to the node', async () => {
    const target = new FakeSnapshotFiles();
    const { url, received } = await node(target);
    const { file, statuses, send } = sender(url, { bytes: 3 * MB });
    send();
    await eventually('the outcome', () => statuses.length > 0);
    expect(statuses).toEqual([false]);
    expect(target.incoming[0].content.equals(file)).toBe(true);
    expect(received.map((m) => [m.type, m.snapshot?.metadata.index])).toEqual([[MessageType.MsgSnap, 10]]);
  });

  it.each([
    ['a wrong cluster token', { token: 'not-the-cluster-token' }, '(401)'],
    ['a sender whose NODE_ID is not a member', { self: 'stranger' }, '(403)'],
  ])('refuses %s before a byte is written', async (_name, options, status) => {
    const target = new FakeSnapshotFiles();
    const { url, received } = await node(target);
    const { statuses, send } = sender(url, options);
    send();
    await eventually('the outcome', () => statuses.length > 0);
    expect(statuses).toEqual([true]);
    expect(warnings.some((w) => w.includes(status))).toBe(true);
    expect(target.incoming).toHaveLength(0);
    expect(received).toHaveLength(0);
  });

  it("refuses a connection from an address that is no member's with 403, before the body is read", async () => {
    const target = new FakeSnapshotFiles();
    const { url, received } = await node(target);
    // Linux routes all of 127.0.0.0/8 to the loopback interface.
    const answer = await postSnapshotRoute(url, SENDER, fakeSnapshotFile(10, 2, 1000), {
      localAddress: '127.0.0.2',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body).error).toMatch(/127\.0\.0\.2 is not one/);
    expect(target.incoming).toHaveLength(0);
    expect(received).toHaveLength(0);
  });

  it('starts without SNAPSHOT_FILES and answers snapshots 503', async () => {
    const { url, received } = await node();
    const { statuses, send } = sender(url);
    send();
    await eventually('the outcome', () => statuses.length > 0);
    expect(statuses).toEqual([true]);
    expect(warnings.some((w) => w.includes('(503)') && w.includes('no snapshot storage'))).toBe(true);
    expect(received).toHaveLength(0);
  });

  it('is documented in the OpenAPI under raft (peer)', async () => {
    const { app } = await node(new FakeSnapshotFiles());
    const doc = SwaggerModule.createDocument(app, new DocumentBuilder().build());
    expect(doc.paths[PEER_HELLO_PATH].get!.tags).toEqual(['raft (peer)']);
    expect(Object.keys(doc.paths[PEER_HELLO_PATH].get!.responses).sort()).toEqual(['200', '401', '403']);
    const operation = doc.paths[PEER_SNAPSHOT_PATH].post!;
    expect(operation.tags).toEqual(['raft (peer)']);
    expect(Object.keys(operation.requestBody && 'content' in operation.requestBody ? operation.requestBody.content : {})).toEqual([
      PEER_SNAPSHOT_CONTENT_TYPE,
    ]);
    expect(Object.keys(operation.responses).sort()).toEqual(['200', '400', '401', '403', '409', '415', '503']);
  });
});

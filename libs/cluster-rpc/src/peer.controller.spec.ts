import { DynamicModule, Global, Logger, Module } from '@nestjs/common';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Test } from '@nestjs/testing';
import { Message, MessageType } from '@app/consensus/core';
import { SNAPSHOT_FILES } from '@app/consensus/ports';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { ClusterRpcModule } from './cluster-rpc.module';
import { HttpPeerTransport } from './http-peer-transport';
import { PEER_SNAPSHOT_CONTENT_TYPE, PEER_SNAPSHOT_PATH } from './peer-protocol';
import { fakeSnapshotFile, FakeSnapshotFiles, msgSnap, postSnapshotRoute } from './testing/fake-snapshot-files';

/**
 * The snapshot route as the node serves it: ClusterRpcModule on Fastify, listening on loopback, with its
 * token guard, its address admission and its streamed body, fed by a real sending transport. What the
 * transport does with the body is covered by snapshot-transfer.spec.ts; here, that the route reaches it, and
 * that whoever may not send a snapshot is refused before a byte of it is written.
 */

const SENDER = 'http://127.0.0.1:1';
const TOKEN = 'cluster-token-0123456789';
const MB = 1024 * 1024;

@Global()
@Module({ providers: [{ provide: Registry, useFactory: () => new Registry() }], exports: [Registry] })
class RegistryModule {}

@Module({})
class SnapshotFilesModule {
  static with(files: FakeSnapshotFiles): DynamicModule {
    return { module: SnapshotFilesModule, providers: [{ provide: SNAPSHOT_FILES, useValue: files }], exports: [SNAPSHOT_FILES] };
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

describe('PeerController: POST /raft/snapshot', () => {
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

  /** A node serving the peer routes (with SNAPSHOT_FILES bound to `files`, if given). */
  async function node(files?: FakeSnapshotFiles) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const moduleRef = await Test.createTestingModule({
      imports: [
        RegistryModule,
        ClusterRpcModule.forRootAsync({
          imports: files ? [SnapshotFilesModule.with(files)] : [],
          useFactory: () => ({ self: url, name: 'receiver', peers: [SENDER], clusterId: 'c1', token: TOKEN, stallTimeoutMs: 1000 }),
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    await app.listen(port, '127.0.0.1');
    cleanups.push(() => app.close());
    const received: Message[] = [];
    app.get(HttpPeerTransport).listen((messages) => received.push(...messages));
    return { app, url, received };
  }

  /** A sending transport, as member `self`, with a snapshot 10 of `bytes` bytes to send. */
  function sender(to: string, options: { self?: string; token?: string; bytes?: number } = {}) {
    const files = new FakeSnapshotFiles();
    const file = fakeSnapshotFile(10, 2, options.bytes ?? 100_000);
    files.add(10, 2, file);
    const self = options.self ?? SENDER;
    const tx = new HttpPeerTransport(
      { self, name: 'sender', peers: [to], clusterId: 'c1', token: options.token ?? TOKEN, stallTimeoutMs: 1000 },
      new ClusterRpcMetrics(new Registry()),
      files,
    );
    const statuses: boolean[] = [];
    tx.onSnapshotStatus((_peer, failed) => statuses.push(failed));
    cleanups.push(() => tx.onModuleDestroy());
    return { file, statuses, send: () => tx.send([msgSnap(self, to, 10)]) };
  }

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
    ['a sender whose URL is not a member', { self: 'http://127.0.0.1:2' }, '(403)'],
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
    const operation = doc.paths[PEER_SNAPSHOT_PATH].post!;
    expect(operation.tags).toEqual(['raft (peer)']);
    expect(Object.keys(operation.requestBody && 'content' in operation.requestBody ? operation.requestBody.content : {})).toEqual([
      PEER_SNAPSHOT_CONTENT_TYPE,
    ]);
    expect(Object.keys(operation.responses).sort()).toEqual(['200', '400', '401', '403', '409', '415', '503']);
  });
});

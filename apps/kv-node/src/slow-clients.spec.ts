import { STREAMED_BODY_ROUTE } from '@app/cluster-rpc';
import Fastify, { FastifyInstance } from 'fastify';
import { connect, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { installBodyLimit } from './body-limit';
import { httpServerOptionsFor, installBodyTimeout } from './slow-clients';

const TIMEOUT_MS = 300;

async function server(): Promise<FastifyInstance> {
  const app = Fastify();
  installBodyLimit(app, 1024, 4096);
  installBodyTimeout(app, TIMEOUT_MS);
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  app.put('/json', async (request) => ({ got: request.body }));
  app.get('/slow', async () => {
    await new Promise((resolve) => setTimeout(resolve, 2 * TIMEOUT_MS));
    return { ok: true };
  });
  app.post('/stream', { config: STREAMED_BODY_ROUTE }, async (request) => {
    let bytes = 0;
    for await (const chunk of request.body as Readable) bytes += (chunk as Buffer).length;
    return { bytes };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app;
}

/** Sends the head, then the body pieces `everyMs` apart; resolves with all that was read once the server closes. */
function trickle(app: FastifyInstance, head: string, pieces: string[], everyMs: number): Promise<string> {
  const { port } = app.server.address() as { port: number };
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding('utf8').on('data', (d: string) => (text += d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve(text);
    });
    socket.write(head);
    const queue = [...pieces];
    timer = setInterval(() => {
      const piece = queue.shift();
      if (piece === undefined) return clearInterval(timer);
      if (!socket.destroyed) socket.write(piece);
    }, everyMs);
  });
}

describe('installBodyTimeout', () => {
  let app: FastifyInstance;
  beforeAll(async () => (app = await server()));
  afterAll(() => app.close());

  it('answers 408 with Connection: close to a body that trickles past the timeout, and closes the connection', async () => {
    const body = '{"v":"' + 'x'.repeat(30) + '"}';
    const head = `PUT /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const answer = await trickle(app, head, body.split(''), 50);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    // Plain Fastify's error shape here; the node's filter turns it into {"error": ...} (the e2e test checks that).
    expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toMatchObject({
      statusCode: 408,
      message: `Request body was not complete within ${TIMEOUT_MS} ms`,
    });
  });

  it('passes a body sent in time, and does not time a slow handler', async () => {
    expect((await app.inject({ method: 'PUT', url: '/json', payload: { v: 1 } })).json()).toEqual({ got: { v: 1 } });
    const slow = await app.inject({ method: 'GET', url: '/slow' });
    expect(slow.statusCode).toBe(200);
  });

  it('leaves a streamed route (the peer stream) alone, however long its body takes', async () => {
    const head = 'POST /stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n';
    const pieces = [...Array.from({ length: 10 }, () => '1\r\nx\r\n'), '0\r\n\r\n'];
    const answer = await trickle(app, head, pieces, 100); // 1.1 s: past 3 x TIMEOUT_MS
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toMatch(/\{"bytes":10\}/);
  });
});

describe('httpServerOptionsFor', () => {
  it('sets the header timeout, no request timeout, and checks at least twice per header timeout', () => {
    expect(httpServerOptionsFor({ headersTimeoutMs: 10000, bodyTimeoutMs: 1, keepAliveTimeoutMs: 1, maxConnections: 64 })).toEqual({
      headersTimeout: 10000,
      requestTimeout: 0,
      connectionsCheckingInterval: 1000,
    });
    expect(httpServerOptionsFor({ headersTimeoutMs: 400, bodyTimeoutMs: 1, keepAliveTimeoutMs: 1, maxConnections: 64 }).connectionsCheckingInterval).toBe(200);
  });
});

import { STREAMED_BODY_ROUTE } from '@app/cluster-rpc';
import Fastify, { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { installBodyLimit } from './body-limit';

const LIMIT = 1024;
const DRAIN = 4096;

/** A server with the limit installed, a JSON route, and a streamed route that counts the bytes it consumes. */
async function server(): Promise<FastifyInstance> {
  const app = Fastify();
  installBodyLimit(app, LIMIT, DRAIN);
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  app.post('/json', async (request) => ({ got: JSON.stringify(request.body).length }));
  const count = async (request: { body: unknown }) => {
    let bytes = 0;
    for await (const chunk of request.body as Readable) bytes += (chunk as Buffer).length;
    return { bytes };
  };
  app.post('/stream', { config: STREAMED_BODY_ROUTE }, count);
  app.post('/unmarked-stream', count);
  await app.ready();
  return app;
}

describe('installBodyLimit', () => {
  let app: FastifyInstance;
  beforeAll(async () => (app = await server()));
  afterAll(() => app.close());

  it('passes a body within the limit', async () => {
    const res = await app.inject({ method: 'POST', url: '/json', payload: { v: 'x'.repeat(100) } });
    expect(res.statusCode).toBe(200);
  });

  it('answers 413 past the limit', async () => {
    const res = await app.inject({ method: 'POST', url: '/json', payload: { v: 'x'.repeat(2 * LIMIT) } });
    expect(res.statusCode).toBe(413);
  });

  it('leaves a streamed route (the peer stream) whole, however far past the limit it goes', async () => {
    const body = Buffer.alloc(LIMIT + DRAIN + 10 * LIMIT, 7);
    const res = await app.inject({
      method: 'POST',
      url: '/stream',
      headers: { 'content-type': 'application/octet-stream' },
      payload: body,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ bytes: body.length });
  });

  it('limits a stream on a route that is not marked (the contrast)', async () => {
    const body = Buffer.alloc(2 * LIMIT, 7);
    const res = await app.inject({
      method: 'POST',
      url: '/unmarked-stream',
      headers: { 'content-type': 'application/octet-stream' },
      payload: body,
    });
    expect(res.statusCode).toBe(413);
  });
});

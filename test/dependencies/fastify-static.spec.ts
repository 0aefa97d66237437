/**
 * package.json overrides @fastify/static's content-disposition (3.x: ESM-only, declares Node >= 22) with
 * 2.0.1 (CommonJS, Node >= 18, the same `create` function). This checks that @fastify/static loads with it
 * as CommonJS (jest runs CommonJS and has no require(esm)) and that the one path that uses it, a download,
 * writes the header.
 */
import fastify from 'fastify';
import fastifyStatic from '@fastify/static';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

describe('@fastify/static with content-disposition 2.0.1', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fastify-static-'));
    writeFileSync(join(dir, 'report.txt'), 'hello');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves to the version supporting Node 20', () => {
    const main = require.resolve('content-disposition', { paths: [dirname(require.resolve('@fastify/static'))] });
    const pkg = JSON.parse(readFileSync(join(dirname(main), '../package.json'), 'utf8'));
    expect(pkg.version).toBe('2.0.1');
    expect(pkg.engines.node).toBe('>=18');
  });

  it('serves a download with a Content-Disposition header naming the file, UTF-8 names included', async () => {
    const app = fastify();
    await app.register(fastifyStatic, { root: dir, serve: false });
    app.get('/download/:name', (request, reply) => reply.download('report.txt', (request.params as { name: string }).name));
    try {
      const plain = await app.inject({ method: 'GET', url: '/download/report.txt' });
      expect(plain.statusCode).toBe(200);
      expect(plain.body).toBe('hello');
      expect(plain.headers['content-disposition']).toBe('attachment; filename=report.txt');
      const utf8 = await app.inject({ method: 'GET', url: `/download/${encodeURIComponent('résumé.txt')}` });
      expect(utf8.headers['content-disposition']).toBe(`attachment; filename="r?sum?.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt`);
    } finally {
      await app.close();
    }
  });
});

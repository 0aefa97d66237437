/**
 * A body over the size limit is answered 413 with the JSON error, readably by every kind of client: curl,
 * Node's fetch (undici) and Node's http module, with a Content-Length or chunked. The server reads and drops
 * the excess (up to 16 MiB past the limit) before answering, so the client is not reset while it is still
 * sending; then it closes the connection. A client that sends without end is still cut off.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as nodeHttp from 'node:http';
import { join } from 'node:path';
import { ClusterNode, http, LocalCluster } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(120_000);

const MAX_VALUE_BYTES = 1024;
const LIMIT = 2 * MAX_VALUE_BYTES + 64 * 1024; // bodyLimitFor(MAX_VALUE_BYTES)
const DRAIN = 16 * 1024 * 1024; // OVERSIZE_DRAIN_BYTES
const TOO_LARGE = { error: `Request body is too large: the limit is ${LIMIT} bytes` };

let cluster: LocalCluster;
let node: ClusterNode;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 1, env: { MAX_KEY_BYTES: '64', MAX_VALUE_BYTES: String(MAX_VALUE_BYTES) } });
  node = await cluster.waitForLeader();
});

afterAll(async () => {
  await cluster?.stop();
});

interface Answer {
  status: number;
  connection: string | null | undefined;
  body: unknown;
}

function bodyOf(valueBytes: number): Buffer {
  return Buffer.from(JSON.stringify({ value: 'x'.repeat(valueBytes) }));
}

/** Chunks of 64 KiB: sent chunked when the length is not given. */
function* chunks(buf: Buffer): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += 65536) yield buf.subarray(i, i + 65536);
}

async function viaFetch(url: string, buf: Buffer, chunked: boolean): Promise<Answer> {
  const body = chunked
    ? new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks(buf)) controller.enqueue(chunk);
          controller.close();
        },
      })
    : buf;
  const init = { method: 'PUT', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit;
  const response = await fetch(url, init);
  return { status: response.status, connection: response.headers.get('connection'), body: JSON.parse(await response.text()) };
}

function viaHttp(url: string, buf: Buffer, chunked: boolean): Promise<Answer & { socketClosed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json' };
    if (!chunked) headers['content-length'] = buf.length;
    const agent = new nodeHttp.Agent({ keepAlive: true });
    const request = nodeHttp.request(url, { method: 'PUT', headers, agent }, (response) => {
      const socketClosed = new Promise<void>((closed) => response.socket.once('close', () => closed()));
      let text = '';
      response.setEncoding('utf8').on('data', (d: string) => (text += d));
      response.on('end', () =>
        resolve({ status: response.statusCode!, connection: response.headers.connection, body: JSON.parse(text), socketClosed }),
      );
    });
    request.on('error', reject);
    if (chunked) {
      for (const chunk of chunks(buf)) request.write(chunk);
      request.end();
    } else {
      request.end(buf);
    }
  });
}

function viaCurl(url: string, buf: Buffer, chunked: boolean): Promise<Answer> {
  const file = join(cluster.root, `body-${buf.length}.json`);
  writeFileSync(file, buf);
  const args = ['-sS', '-X', 'PUT', url, '-H', 'content-type: application/json', '--data-binary', `@${file}`, '-D', '-'];
  if (chunked) args.push('-H', 'transfer-encoding: chunked');
  return new Promise((resolve, reject) => {
    execFile('curl', args, { maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`curl failed: ${stderr || error.message}`));
      // Headers of the final answer (after any 100 Continue), a blank line, then the body.
      const blocks = stdout.split('\r\n\r\n');
      const body = blocks.pop()!;
      const head = blocks.pop()!;
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)![1]);
      const connection = /^connection: *(.*)$/im.exec(head)?.[1];
      resolve({ status, connection, body: JSON.parse(body) });
    });
  });
}

const clients = { fetch: viaFetch, http: viaHttp, curl: viaCurl };

describe('PUT /kv/:key with a body over the size limit', () => {
  describe.each(Object.entries(clients))('read by %s', (_name, send) => {
    it.each([
      ['just over the limit, with Content-Length', LIMIT + 1000, false],
      ['just over the limit, chunked', LIMIT + 1000, true],
      ['5 MB, with Content-Length', 5_000_000, false],
      ['5 MB, chunked', 5_000_000, true],
      ['just under the limit plus what is drained, chunked', LIMIT + DRAIN - 100_000, true],
    ])('%s: 413 with the JSON error, then the connection closes', async (_what, size, chunked) => {
      const answer = await send(`${node.url}/kv/big`, bodyOf(size), chunked);
      expect(answer).toMatchObject({ status: 413, connection: 'close', body: TOO_LARGE });
      if ('socketClosed' in answer) await answer.socketClosed;
    });
  });

  it('nothing was written, and the node serves on', async () => {
    expect((await http('GET', `${node.url}/kv/big`)).status).toBe(404);
    expect((await http('PUT', `${node.url}/kv/small`, { value: 'fits' })).status).toBe(200);
    expect((await http('GET', `${node.url}/kv/small`)).body).toEqual(keyValue('small', 'fits'));
  });

  it.each([
    ['chunked, without end', undefined],
    ['declaring 1 GiB', String(1024 * 1024 * 1024)],
  ])('a client sending %s is cut off after at most the limit plus what is drained', async (_what, contentLength) => {
    const cap = 200 * 1024 * 1024; // far past LIMIT + DRAIN + socket buffers: reaching it means never cut off
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (contentLength) headers['content-length'] = contentLength;
    const chunk = Buffer.alloc(256 * 1024, 'x');
    const outcome = await new Promise<{ sent: number; status?: number; error?: string }>((resolve) => {
      let sent = 0;
      let done = false;
      const finish = (result: { status?: number; error?: string }) => {
        if (done) return;
        done = true;
        request.destroy();
        resolve({ sent, ...result });
      };
      const request = nodeHttp.request(`${node.url}/kv/endless`, { method: 'PUT', headers, agent: false }, (response) =>
        finish({ status: response.statusCode }),
      );
      request.on('error', (err: NodeJS.ErrnoException) => finish({ error: err.code ?? err.message }));
      request.write('{"value":"');
      const pump = () => {
        while (!done && sent < cap) {
          sent += chunk.length;
          if (!request.write(chunk)) return void request.once('drain', pump);
        }
        if (sent >= cap) finish({ error: 'never cut off' });
      };
      pump();
    });
    expect(outcome.error).not.toBe('never cut off');
    expect(outcome.status === 413 || ['EPIPE', 'ECONNRESET'].includes(outcome.error ?? '')).toBe(true);
    expect(outcome.sent).toBeLessThan(LIMIT + DRAIN + 32 * 1024 * 1024);
    expect((await http('PUT', `${node.url}/kv/after`, { value: 'still serving' })).status).toBe(200);
  });
});

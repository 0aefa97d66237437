import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { ExitCode, KvctlError } from './kvctl-error';
import { formatWatchEvent, WatchEvent, watchCommand } from './watch-command';

const frame = (index: number, key: string, value: string) =>
  `id: ${index}\nevent: put\ndata: ${JSON.stringify({ key, value, index })}\n\n`;

/** A node whose /watch answers with `handler`; records each request's Last-Event-ID and query. */
async function fakeNode(handler: (req: IncomingMessage, res: ServerResponse, call: number) => void) {
  const seen: Array<{ lastEventId?: string; url?: string }> = [];
  const server: Server = createServer((req, res) => {
    seen.push({ lastEventId: req.headers['last-event-id'] as string | undefined, url: req.url });
    handler(req, res, seen.length);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { url, seen, close };
}

const sse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream' });

describe('kvctl watch', () => {
  it('reconnects with Last-Event-ID after a dropped connection: every change once, in order', async () => {
    const node = await fakeNode((_req, res, call) => {
      sse(res);
      if (call === 1) {
        res.write(': watching from index 5\nid: 4\n\n' + frame(5, 'a', '1') + frame(7, 'a', '2'));
        setTimeout(() => res.destroy(), 20);
      } else res.write(frame(9, 'a', '3'));
    });
    const events: WatchEvent[] = [];
    try {
      await watchCommand({ endpoints: [node.url], key: 'a', fromIndex: 5, timeoutMs: 5000, count: 3, onEvent: (e) => events.push(e) });
    } finally {
      await node.close();
    }
    expect(events.map((e) => e.index)).toEqual([5, 7, 9]);
    expect(node.seen.map((s) => s.lastEventId)).toEqual(['4', '7']);
    expect(node.seen[0].url).toBe('/watch?key=a');
  });

  it('resumes from the start frame when the stream dropped before any event, on the next endpoint', async () => {
    const first = await fakeNode((_req, res) => {
      sse(res);
      res.write('id: 41\n\n');
      setTimeout(() => res.destroy(), 20);
    });
    const second = await fakeNode((_req, res) => {
      sse(res);
      res.write(frame(42, 'p/x', 'v'));
    });
    const events: WatchEvent[] = [];
    try {
      await watchCommand({ endpoints: [first.url, second.url], prefix: 'p/', timeoutMs: 5000, count: 1, onEvent: (e) => events.push(e) });
    } finally {
      await first.close();
      await second.close();
    }
    expect(events).toEqual([{ type: 'put', key: 'p/x', value: 'v', index: 42 }]);
    expect(second.seen[0]).toEqual({ lastEventId: '41', url: '/watch?prefix=p%2F' });
  });

  it('exits 1 on 410 and says from where to watch', async () => {
    const node = await fakeNode((_req, res) => {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'too old', oldestIndex: 120 }));
    });
    const failure = watchCommand({ endpoints: [node.url], key: 'a', fromIndex: 3, timeoutMs: 5000, onEvent: () => undefined });
    await expect(failure).rejects.toThrow(KvctlError);
    await expect(failure).rejects.toMatchObject({ exitCode: ExitCode.Failed, message: expect.stringContaining('--from-index 120') });
    await node.close();
  });

  it('refuses a key and a prefix together', async () => {
    await expect(watchCommand({ endpoints: ['http://127.0.0.1:1'], key: 'a', prefix: 'b', timeoutMs: 10, onEvent: () => undefined })).rejects.toMatchObject({
      exitCode: ExitCode.Usage,
    });
  });

  it('prints one line per event, newlines in values escaped', () => {
    expect(formatWatchEvent({ type: 'put', key: 'k', value: 'a\nb', index: 3 })).toBe('3 PUT k a\\nb\n');
    expect(formatWatchEvent({ type: 'delete', key: 'k', index: 4 })).toBe('4 DELETE k\n');
  });
});

import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { run } from './cli';
import { KvClient } from './kv-client';
import { ExitCode } from './kvctl-error';
import { failure } from '../../../test/support/kvctl-fake-node';

/**
 * kvctl's writes carry a generated Idempotency-Key and are retried with the same one after an unknown
 * outcome (no answer in time, a 503 `outcome: "unknown"`, a connection lost after the request went out).
 * A scripted node: each attempt's behaviour comes from a list, and it records the key every request carried.
 */

type Step = 'unknown' | 'hang' | 'reset' | 'replayed' | 'ok' | 'no-leader';

interface ScriptedNode {
  url: string;
  keys: Array<string | undefined>;
  close(): Promise<void>;
}

const nodes: ScriptedNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

async function scripted(steps: Step[]): Promise<ScriptedNode> {
  const keys: Array<string | undefined> = [];
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      keys.push(req.headers['idempotency-key'] as string | undefined);
      const step = steps.shift() ?? 'ok';
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (step === 'hang') return;
      if (step === 'reset') return req.socket.destroy();
      if (step === 'unknown') return json(503, { error: 'Write outcome unknown: not committed within 3000 ms', outcome: 'unknown' });
      if (step === 'no-leader') return json(503, { error: 'No leader', outcome: 'failed' });
      const replayed: Record<string, string> = step === 'replayed' ? { 'idempotent-replayed': 'true' } : {};
      json(200, { success: true, index: 42, createIndex: 40, modIndex: 42 }, replayed);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const node: ScriptedNode = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    keys,
    close: () =>
      new Promise((ok) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => ok());
      }),
  };
  nodes.push(node);
  return node;
}

describe('kvctl writes: an Idempotency-Key, and retries with it after an unknown outcome', () => {
  it('sends a fresh key (a UUID) with every put and delete', async () => {
    const n = await scripted([]);
    const client = new KvClient({ endpoints: [n.url], timeoutMs: 2000 });
    await client.put('a', '1');
    await client.put('a', '1');
    await client.delete('a');
    expect(n.keys).toHaveLength(3);
    for (const key of n.keys) expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(n.keys).size).toBe(3);
  });

  it.each<[string, Step[]]>([
    ['a 503 outcome unknown', ['unknown', 'replayed']],
    ['no answer in time', ['hang', 'replayed']],
    ['a connection lost after the request went out', ['reset', 'replayed']],
    ['an unknown outcome, then no leader for a while', ['unknown', 'no-leader', 'no-leader', 'replayed']],
  ])('after %s, retries with the same key and reports the first outcome', async (_name, steps) => {
    const attempts = steps.length;
    const n = await scripted([...steps]);
    let made = 0;
    const client = new KvClient({ endpoints: [n.url], timeoutMs: 4000, newIdempotencyKey: () => `key-${++made}` });
    const result = await client.put('k', 'v');
    expect(result).toEqual({ success: true, index: 42, createIndex: 40, modIndex: 42, replayed: true });
    expect(n.keys).toEqual(Array(attempts).fill('key-1'));
    expect(made).toBe(1);
  });

  it('moves to another endpoint with the same key when one hangs', async () => {
    const hung = await scripted(['hang']);
    const other = await scripted(['ok']);
    const result = await new KvClient({ endpoints: [hung.url, other.url], timeoutMs: 3000, newIdempotencyKey: () => 'the-key' }).delete('k');
    expect(result.index).toBe(42);
    expect([...hung.keys, ...other.keys]).toEqual(['the-key', 'the-key']);
  });

  it('a definite failure before any unknown outcome stays exit 1, not 4', async () => {
    const n = await scripted(['no-leader', 'no-leader', 'no-leader', 'no-leader', 'no-leader', 'no-leader']);
    const error = await failure(new KvClient({ endpoints: [n.url], timeoutMs: 500 }).put('k', 'v'));
    expect(error.exitCode).toBe(ExitCode.Failed);
  });

  it('the CLI prints the retried write as any other, and --json says it was replayed', async () => {
    const n = await scripted(['unknown', 'replayed']);
    let stdout = '';
    const code = await run(['node', 'kvctl', '--endpoints', n.url, '--timeout', '3000', '--json', 'put', 'k', 'v'], {
      stdout: (t) => (stdout += t),
      stderr: () => undefined,
      readStdin: () => Promise.resolve(undefined),
    });
    expect(code).toBe(ExitCode.Ok);
    expect(JSON.parse(stdout)).toEqual({ success: true, index: 42, createIndex: 40, modIndex: 42, replayed: true });
  });
});

import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { KvctlError } from '../../apps/kvctl/src/kvctl-error';
import { run } from '../../apps/kvctl/src/cli';

/** A fake node for kvctl's specs: answers with `handler`, records every request it gets. */
export interface FakeNode {
  url: string;
  requests: Array<{ method: string; url: string; body: string }>;
  server: Server;
}

export type Handler = (req: IncomingMessage, body: string) => { status: number; body?: unknown; headers?: Record<string, string> };

export async function fakeNode(handler: Handler): Promise<FakeNode> {
  const node: Partial<FakeNode> = { requests: [] };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      node.requests!.push({ method: req.method!, url: req.url!, body });
      const answer = handler(req, body);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  node.server = server;
  node.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return node as FakeNode;
}

/** The KvctlError `promise` rejects with (any other outcome fails the test). */
export async function failure(promise: Promise<unknown>): Promise<KvctlError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KvctlError) return error;
    throw error;
  }
  throw new Error('expected a KvctlError');
}

/** `node(handler)` for a spec file: the fake nodes it starts are closed after each test. */
export function fakeNodesPerTest(): (handler: Handler) => Promise<FakeNode> {
  const nodes: FakeNode[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => new Promise((ok) => n.server.close(ok))));
  });
  return async (handler) => {
    const n = await fakeNode(handler);
    nodes.push(n);
    return n;
  };
}

/** A port nothing listens on (fetch refuses some well-known ports outright, so not port 1). */
export async function closedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  await new Promise((ok) => server.close(ok));
  return `http://127.0.0.1:${port}`;
}

/** Runs kvctl in this process against `endpoints` (a 2 s budget), capturing its output and exit code. */
export async function runKvctl(endpoints: string[], ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(['node', 'kvctl', '--endpoints', endpoints.join(','), '--timeout', '2000', ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readStdin: () => Promise.resolve(undefined),
  });
  return { code, stdout, stderr };
}

import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { NodeStatus } from '../../apps/kvctl/src/kv-client';

/** The production build's entry point (`npm run build`). */
export const NODE_MAIN = resolve(__dirname, '../../dist/apps/kv-node/apps/kv-node/src/main.js');

/** Every process any LocalCluster started, so that a crashing test run still kills them all. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Ports the OS reports free right now (bound to port 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((ok, fail) => {
          const server = createServer();
          server.once('error', fail);
          server.listen(0, '127.0.0.1', () => ok(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

/** A node's `GET /status` answer: the shape kvctl reads too. */
export type StatusBody = NodeStatus;

export interface HttpAnswer<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** One request, never following redirects (so 307s are visible), with a timeout. */
export async function http<T = any>(
  method: string,
  url: string,
  body?: unknown,
  options: { timeoutMs?: number; headers?: Record<string, string>; raw?: string } = {},
): Promise<HttpAnswer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  let payload: string | undefined = options.raw;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, {
    method,
    headers,
    body: payload,
    redirect: 'manual',
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (metrics, HTML): the text is the body.
  }
  return { status: response.status, headers: response.headers, body: parsed as T };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value other than undefined, or throws after timeoutMs. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
}

export class ClusterNode {
  process?: ChildProcess;
  readonly output: string[] = [];
  exit?: { code: number | null; signal: NodeJS.Signals | null };

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dir: string,
    readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.process !== undefined && this.exit === undefined;
  }

  start(): void {
    this.exit = undefined;
    const child = spawn(process.execPath, [NODE_MAIN], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    const collect = (chunk: Buffer) => {
      this.output.push(chunk.toString());
      if (this.output.length > 2000) this.output.splice(0, 1000);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.on('exit', (code, signal) => {
      live.delete(child);
      this.exit = { code, signal };
    });
    this.process = child;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.process!.kill(signal);
  }

  /** Waits until the process has exited; returns its exit code and signal. */
  async waitForExit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return eventually(`${this.name} to exit`, async () => this.exit, timeoutMs, 20);
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGKILL');
    await this.waitForExit();
  }

  status(timeoutMs = 2000): Promise<StatusBody> {
    return http<StatusBody>('GET', `${this.url}/status`, undefined, { timeoutMs }).then((r) => r.body);
  }

  logs(): string {
    return this.output.join('');
  }
}

export interface LocalClusterOptions {
  nodes?: number;
  /** Extra environment for every node. */
  env?: Record<string, string>;
}

/**
 * A cluster of real node processes (the production build) on free loopback ports, each with its own data
 * directory under the OS temp dir. Always call stop() (in afterAll): it kills every process and removes
 * the directories.
 */
export class LocalCluster {
  private constructor(
    readonly nodes: ClusterNode[],
    readonly root: string,
  ) {}

  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const count = options.nodes ?? 3;
    const ports = await freePorts(count);
    const root = mkdtempSync(join(tmpdir(), 'raftkv-e2e-'));
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const nodes = ports.map((port, i) => {
      const name = `node${i + 1}`;
      return new ClusterNode(name, port, join(root, name), {
        NODE_ID: name,
        HTTP_PORT: String(port),
        BIND_HOST: '127.0.0.1',
        ADVERTISE_URL: urls[i],
        PEER_URLS: urls.filter((_, j) => j !== i).join(','),
        WAL_DIR: join(root, name),
        LOG_LEVEL: 'info',
        HEARTBEAT_INTERVAL_MS: '50',
        ELECTION_TIMEOUT_MS: '500',
        REQUEST_TIMEOUT_MS: '3000',
        ...options.env,
      });
    });
    const cluster = new LocalCluster(nodes, root);
    for (const node of nodes) node.start();
    return cluster;
  }

  node(name: string): ClusterNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  /**
   * Waits until the given nodes (by default: the nodes running at each poll, so that a node killed while
   * we wait stops counting) agree on one leader; returns it.
   */
  async waitForLeader(timeoutMs = 15_000, nodes?: ClusterNode[]): Promise<ClusterNode> {
    return this.explained(eventually(
      'a leader that every running node agrees on',
      async () => {
        const among = nodes ?? this.nodes.filter((n) => n.running);
        const statuses = await Promise.all(among.map((n) => n.status().catch(() => undefined)));
        if (statuses.some((s) => s === undefined)) return undefined;
        const leaders = statuses.filter((s) => s!.isLeader);
        if (leaders.length !== 1) return undefined;
        const leader = leaders[0]!;
        if (!statuses.every((s) => s!.leader === leader.nodeId && s!.term === leader.term)) return undefined;
        return among.find((n) => n.name === leader.nodeId);
      },
      timeoutMs,
    ));
  }

  /** Adds the tail of every node's output to a failure, where it is most useful. */
  async explained<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      const tails = this.nodes.map((n) => `----- ${n.name} -----\n${n.logs().split('\n').slice(-40).join('\n')}`);
      (error as Error).message += `\n${tails.join('\n')}`;
      throw error;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Everything the nodes printed, for a failing test's message. */
  logs(): string {
    return this.nodes.map((n) => `----- ${n.name} -----\n${n.logs()}`).join('\n');
  }
}

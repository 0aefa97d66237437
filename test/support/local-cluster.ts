import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterEnvs, Member, NODE_MAIN, NodeExit, NodeProcess, StatusBody } from '../../scripts/lib/node-process';

export { NODE_MAIN, StatusBody };

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

/**
 * One node of a LocalCluster: a NodeProcess (scripts/lib/node-process.ts) whose output is kept in memory
 * for a failing test's message, addressed on 127.0.0.1.
 */
export class ClusterNode extends NodeProcess {
  constructor(
    name: string,
    readonly port: number,
    readonly dir: string,
    env: Record<string, string>,
    /** PEER_PORT, when the node serves peers on a port of their own (LocalClusterOptions.peerPorts). */
    readonly peerPort?: number,
  ) {
    super({ name, env, clientUrl: `http://127.0.0.1:${port}` });
  }

  /** Where its peers reach it: http://127.0.0.1:PEER_PORT, or its client URL without a peer port. */
  get peerUrl(): string {
    return this.peerPort === undefined ? this.url : `http://127.0.0.1:${this.peerPort}`;
  }

  /** How the last incarnation ended, once it has (undefined while it runs). */
  get exit(): NodeExit | undefined {
    return this.lastExit;
  }
}

export interface LocalClusterOptions {
  nodes?: number;
  /** Extra environment for every node. */
  env?: Record<string, string>;
  /**
   * Each node also gets a PEER_PORT (a free port): the members' URLs (PEER_URLS) are then their peer URLs,
   * ADVERTISE_URL their client URL.
   */
  peerPorts?: boolean;
  /** Called with each node's data directory before any node starts (to put one on its own file system). */
  beforeStart?: (dirs: string[]) => void;
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
    const all = await freePorts(options.peerPorts ? 2 * count : count);
    const ports = all.slice(0, count);
    const peerPorts = options.peerPorts ? all.slice(count) : undefined;
    const root = mkdtempSync(join(tmpdir(), 'raftkv-e2e-'));
    const members: Member[] = ports.map((port, i) => ({
      name: `node${i + 1}`,
      port,
      url: `http://127.0.0.1:${peerPorts?.[i] ?? port}`,
      dir: join(root, `node${i + 1}`),
      bindHost: '127.0.0.1',
    }));
    const envs = clusterEnvs(members, (i) => ({
      LOG_LEVEL: 'info',
      HEARTBEAT_INTERVAL_MS: '50',
      ELECTION_TIMEOUT_MS: '500',
      REQUEST_TIMEOUT_MS: '3000',
      ...(peerPorts ? { ADVERTISE_URL: `http://127.0.0.1:${ports[i]}`, PEER_PORT: String(peerPorts[i]) } : {}),
      ...options.env,
    }));
    const nodes = members.map((m, i) => new ClusterNode(m.name, m.port, m.dir, envs[i], peerPorts?.[i]));
    const cluster = new LocalCluster(nodes, root);
    options.beforeStart?.(members.map((m) => m.dir));
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
  async waitForLeader(timeoutMs = 30_000, nodes?: ClusterNode[]): Promise<ClusterNode> {
    return this.explained(eventually(
      'a leader that every running node agrees on',
      () => leaderAgreedBy(nodes ?? this.nodes.filter((n) => n.running)),
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

/** The leader every node of `among` names (by NODE_ID, in one term), or undefined while they disagree or one is silent. */
export async function leaderAgreedBy(among: ClusterNode[]): Promise<ClusterNode | undefined> {
  const statuses = await Promise.all(among.map((n) => n.status().catch(() => undefined)));
  if (statuses.some((s) => s === undefined)) return undefined;
  const leaders = statuses.filter((s) => s!.isLeader);
  if (leaders.length !== 1) return undefined;
  const leader = leaders[0]!;
  if (!statuses.every((s) => s!.leader === leader.nodeId && s!.term === leader.term)) return undefined;
  return among.find((n) => n.name === leader.nodeId);
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { clusterEnvs, Member, NodeProcess, StatusBody } from '../../scripts/lib/node-process';
import { freePorts } from './local-cluster';
import { makeTestCa, TestCa, TestCert } from './tls-certs';

export interface TlsAnswer<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/**
 * A cluster of real node processes serving TLS on free loopback ports, members named https://127.0.0.1:port,
 * each with a certificate of one throwaway CA (openssl) and, with `mutual`, TLS_CA_FILE (mutual TLS). The test
 * process reaches them through `request()`, which trusts that CA (Node's own fetch would not: NODE_EXTRA_CA_CERTS
 * is read when a process starts). Always call stop(): it kills the processes and removes the directory.
 */
export class TlsCluster {
  readonly agent: Agent;

  private constructor(
    readonly nodes: NodeProcess[],
    readonly root: string,
    readonly ca: TestCa,
    readonly certs: Map<string, TestCert>,
  ) {
    this.agent = new Agent({ connect: { ca: ca.ca } });
  }

  /** `peerPorts`: each node also serves its peers on a PEER_PORT of its own (over TLS too). */
  static async start(options: { nodes?: number; mutual?: boolean; env?: Record<string, string>; peerPorts?: boolean } = {}): Promise<TlsCluster> {
    const count = options.nodes ?? 3;
    const root = mkdtempSync(join(tmpdir(), 'raftkv-tls-'));
    const ca = makeTestCa(root);
    const all = await freePorts(options.peerPorts ? 2 * count : count);
    const ports = all.slice(0, count);
    const peerPorts = options.peerPorts ? all.slice(count) : undefined;
    const members: Member[] = ports.map((port, i) => ({
      name: `node${i + 1}`,
      port,
      url: `https://127.0.0.1:${peerPorts?.[i] ?? port}`,
      dir: join(root, `node${i + 1}`),
      bindHost: '127.0.0.1',
    }));
    const certs = new Map(members.map((m) => [m.name, ca.issue(m.name)]));
    const envs = clusterEnvs(members, (i) => ({
      HEARTBEAT_INTERVAL_MS: '50',
      ELECTION_TIMEOUT_MS: '500',
      REQUEST_TIMEOUT_MS: '3000',
      TLS_CERT_FILE: certs.get(members[i].name)!.certFile,
      TLS_KEY_FILE: certs.get(members[i].name)!.keyFile,
      ...(options.mutual === false ? {} : { TLS_CA_FILE: ca.caFile }),
      ...(peerPorts ? { ADVERTISE_URL: `https://127.0.0.1:${ports[i]}`, PEER_PORT: String(peerPorts[i]) } : {}),
      ...options.env,
    }));
    const nodes = members.map((m, i) => new NodeProcess({ name: m.name, env: envs[i], clientUrl: `https://127.0.0.1:${m.port}` }));
    for (const node of nodes) node.start();
    return new TlsCluster(nodes, root, ca, certs);
  }

  node(name: string): NodeProcess {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  /** One request trusting the cluster's CA, never following redirects. */
  async request<T = any>(method: string, url: string, body?: unknown, timeoutMs = 10_000): Promise<TlsAnswer<T>> {
    const response = await undiciFetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
      dispatcher: this.agent,
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: the text is the body
    }
    return { status: response.status, headers: response.headers as unknown as Headers, body: parsed as T };
  }

  async status(node: NodeProcess): Promise<StatusBody> {
    const answer = await this.request<StatusBody>('GET', `${node.url}/status`, undefined, 2000);
    if (answer.status !== 200) throw new Error(`${node.name} /status answered ${answer.status}`);
    return answer.body;
  }

  /** The node every running node names as leader in one term, once they agree; throws after `timeoutMs`. */
  async waitForLeader(timeoutMs = 20_000): Promise<NodeProcess> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.nodes.filter((n) => n.running);
      const statuses = await Promise.all(running.map((n) => this.status(n).catch(() => undefined)));
      const leaders = statuses.filter((s) => s?.isLeader);
      if (statuses.every((s) => s !== undefined) && leaders.length === 1) {
        const leader = leaders[0]!;
        if (statuses.every((s) => s!.leader === leader.nodeId && s!.term === leader.term)) return this.node(leader.nodeId);
      }
      if (Date.now() > deadline) throw new Error(`no agreed leader within ${timeoutMs} ms\n${this.logs()}`);
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }

  logs(): string {
    return this.nodes.map((n) => `----- ${n.name} -----\n${n.tail(40)}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    await this.agent.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}

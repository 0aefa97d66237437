/**
 * Misconfiguration is stopped or reported, never left to split silently: invalid variables, a second
 * process on one WAL_DIR, a data directory of another node, a node holding another cluster's data, two nodes
 * with one NODE_ID, and a wrong cluster token.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterNode, eventually, freePorts, http, LocalCluster, NODE_MAIN } from '../support/local-cluster';

jest.setTimeout(60_000);

const dirs: string[] = [];
const extra: ClusterNode[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-misconfig-'));
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(extra.map((n) => n.kill()));
  await single?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * One single-node cluster for the tests that need a node to run (its port taken, its WAL_DIR locked) and then
 * to have stopped (its directory another node's): each node start costs seconds on a busy machine. The last
 * test to use it stops its node.
 */
let single: LocalCluster | undefined;
async function singleNode(): Promise<ClusterNode> {
  single ??= await LocalCluster.start({ nodes: 1 });
  return single.waitForLeader();
}

/**
 * Runs the node with `env`, to see it refuse to start: its exit code and standard error. Not spawnSync: a
 * test's own event loop must run meanwhile, or fetch reuses a keep-alive connection the node closed while the
 * loop was blocked (5 s: KEEP_ALIVE_TIMEOUT_MS) and the next request fails with "other side closed".
 */
function startFails(env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [NODE_MAIN], { env: { ...process.env, LOG_LEVEL: 'error', ...env }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

describe('invalid configuration stops the process with one clear line and exit code 1', () => {
  it.each([
    [{ HTTP_PORT: 'abc' }, "kv-node: cannot start: HTTP_PORT must be an integer between 1 and 65535 (got 'abc')"],
    [{ NODE_ID: 'a b' }, 'kv-node: cannot start: NODE_ID must be'],
    [{ PEER_URLS: 'localhost:3002' }, "PEER_URLS has 'localhost:3002': only http:// and https:// URLs are supported"],
    [{ ELECTION_TIMEOUT_MS: '100' }, 'ELECTION_TIMEOUT_MS (100) must be at least 3 x HEARTBEAT_INTERVAL_MS (100)'],
    [{ CLUSTER_TOKEN: 'x' }, 'CLUSTER_TOKEN must be at least 16 characters when set'],
    [{ PEER_ALLOW_ANY: 'yes' }, "PEER_ALLOW_ANY must be true or false (got 'yes')"],
    [{ PEER_ALLOWED_ADDRESSES: '10.0.0.1,node2' }, "PEER_ALLOWED_ADDRESSES has 'node2': give IP addresses or CIDR ranges"],
    [{ JOIN: 'http://127.0.0.1:1', PEER_URLS: 'http://127.0.0.1:2' }, 'JOIN and PEER_URLS are both set'],
  ])('%j', async (env, message) => {
    const { status, stderr } = await startFails({ WAL_DIR: tempDir(), ...env });
    expect(status).toBe(1);
    expect(stderr).toContain(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('a port already in use', async () => {
    const node = await singleNode();
    const { status, stderr } = await startFails({ HTTP_PORT: String(node.port), BIND_HOST: '127.0.0.1', WAL_DIR: tempDir() });
    expect(status).toBe(1);
    expect(stderr).toContain(`HTTP_PORT ${node.port} is already in use`);
  });
});

describe('data directory', () => {
  it('a second process on the same WAL_DIR exits with a clear error, and the first keeps serving', async () => {
    const node = await singleNode();
    const [port] = await freePorts(1);
    const { status, stderr } = await startFails({ HTTP_PORT: String(port), WAL_DIR: node.dir, NODE_ID: 'node1' });
    expect(status).toBe(1);
    expect(stderr).toContain(node.dir);
    expect(stderr).toMatch(/in use|locked/i);
    expect((await http('PUT', `${node.url}/kv/k`, { value: 'v' })).status).toBe(200);
  });

  it("a node pointed at another node's directory refuses to start", async () => {
    const node = await singleNode();
    await node.kill();
    const { status, stderr } = await startFails({ ...node.env, NODE_ID: 'node2' });
    expect(status).toBe(1);
    expect(stderr).toMatch(/the data directory belongs to node 'node1' \(cluster [0-9a-f]{16}\), this process is 'node2'/);
  });
});

describe('peers that disagree are refused and reported', () => {
  it("a node holding another cluster's data is refused (409) and both sides log the mismatch", async () => {
    const cluster = await LocalCluster.start({ nodes: 2 });
    try {
      // node2 comes back on a directory of its own single-node cluster: same NODE_ID, same address, other cluster.
      const [a, b] = cluster.nodes;
      await cluster.waitForLeader();
      await b.kill();
      const dir = tempDir();
      const odd = new ClusterNode('node2', b.port, dir, { ...b.env, WAL_DIR: dir, PEER_URLS: '' });
      extra.push(odd);
      odd.start();
      // node1 streams to node2 (still its peer); node2, a cluster of its own, refuses it.
      await eventually('node2 to report the mismatch', async () => (/cluster mismatch: node1/.test(odd.logs()) ? true : undefined));
      await eventually('node1 to report the refusal', async () => (/refused our messages \(409\).*cluster mismatch/.test(a.logs()) ? true : undefined));
      const status = await a.status();
      expect(status.isLeader).toBe(false);
    } finally {
      await cluster.stop();
    }
  });

  it('two nodes with the same NODE_ID are refused and reported', async () => {
    const cluster = await LocalCluster.start({ nodes: 2, env: { NODE_ID: 'twin' } });
    try {
      const [a, b] = cluster.nodes;
      await eventually('the duplicate to be reported', async () =>
        /duplicate NODE_ID: .* answers as 'twin'/.test(a.logs() + b.logs()) ? true : undefined,
      );
      // Neither forms a cluster: each exits on the other's answer (test/e2e/identity.e2e-spec.ts).
      for (const node of [a, b]) expect(await node.waitForExit(30_000)).toMatchObject({ code: 1 });
    } finally {
      await cluster.stop();
    }
  });

  it('with CLUSTER_TOKEN set, peer requests without it get 401, and the cluster works with it', async () => {
    const token = 'a-shared-secret-of-32-characters';
    const cluster = await LocalCluster.start({ nodes: 3, env: { CLUSTER_TOKEN: token } });
    try {
      const leader = await cluster.waitForLeader();
      expect((await http('PUT', `${leader.url}/kv/k`, { value: 'v' })).status).toBe(200);
      const anonymous = await http('POST', `${leader.url}/raft/stream`, undefined, {
        raw: 'x',
        headers: { 'content-type': 'application/x-raft-stream' },
      });
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.error).toMatch(/cluster token/);
      const wrong = await http('POST', `${leader.url}/raft/stream`, undefined, {
        raw: 'x',
        headers: { 'content-type': 'application/x-raft-stream', authorization: 'Bearer wrong' },
      });
      expect(wrong.status).toBe(401);
    } finally {
      await cluster.stop();
    }
  });

  it('without CLUSTER_TOKEN, a node warns that peer traffic is unauthenticated', async () => {
    const cluster = await LocalCluster.start({ nodes: 2 });
    try {
      await eventually('the warning', async () => (/CLUSTER_TOKEN is not set/.test(cluster.nodes[0].logs()) ? true : undefined));
      // Once the node knows its cluster (before, every peer request is answered 503: retry later).
      await cluster.waitForLeader();
      const garbage = await http('POST', `${cluster.nodes[0].url}/raft/stream`, undefined, {
        raw: 'not a batch',
        headers: { 'content-type': 'application/x-raft-stream' },
      });
      expect(garbage.status).toBeGreaterThanOrEqual(400);
      expect(garbage.status).toBeLessThan(500);
    } finally {
      await cluster.stop();
    }
  });
});

/**
 * A member is its NODE_ID (issue 12, "Identity"): three nodes started with only the seed's four variables
 * (NODE_ID, HTTP_PORT, PEER_URLS, WAL_DIR) form a cluster whatever name their PEER_URLS give the others —
 * `127.0.0.1`, `localhost`, or a mixture — although each advertises itself as http://localhost:PORT. And the
 * refusals: two nodes with one NODE_ID, and a node started on another node's data directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterNode, eventually, freePorts, http, leaderAgreedBy } from '../support/local-cluster';

jest.setTimeout(120_000);

/** How node `i` (0-based) names node `j` in its PEER_URLS, given the ports; undefined leaves it out. */
type Spelling = (i: number, j: number, port: number) => string | undefined;

const IP: Spelling = (i, j, port) => (i === j ? undefined : `http://127.0.0.1:${port}`);
const LOCALHOST: Spelling = (i, j, port) => (i === j ? undefined : `http://localhost:${port}`);
/**
 * node1 names its peers by 127.0.0.1, node2 by localhost; node3 names node1 by 127.0.0.1 and node2 by
 * localhost, and lists itself too, by 127.0.0.1 (a spelling that is not its default ADVERTISE_URL): discovery
 * must recognise that entry as this very process.
 */
const MIXTURE: Spelling = (i, j, port) => {
  if (i === 0) return IP(i, j, port);
  if (i === 1) return LOCALHOST(i, j, port);
  return j === 1 ? `http://localhost:${port}` : `http://127.0.0.1:${port}`;
};

/** Nodes of one test, with their directories: stop() kills each by the pid it started, then removes them. */
class Nodes {
  readonly list: ClusterNode[] = [];
  readonly root = mkdtempSync(join(tmpdir(), 'raftkv-identity-'));

  /** A node with exactly these variables (the seed's four, unless a test adds one on purpose). */
  add(name: string, port: number, env: Record<string, string>): ClusterNode {
    const node = new ClusterNode(name, port, env.WAL_DIR, env);
    this.list.push(node);
    return node;
  }

  /** Three nodes node1..node3 on free ports, each given only NODE_ID, HTTP_PORT, PEER_URLS and WAL_DIR. */
  async trio(spelling: Spelling): Promise<ClusterNode[]> {
    const ports = await freePorts(3);
    return ports.map((port, i) =>
      this.add(`node${i + 1}`, port, {
        NODE_ID: `node${i + 1}`,
        HTTP_PORT: String(port),
        PEER_URLS: ports
          .map((p, j) => spelling(i, j, p))
          .filter((u): u is string => u !== undefined)
          .join(','),
        WAL_DIR: join(this.root, `node${i + 1}`),
      }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.list.map((n) => n.kill()));
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Adds the end of every node's output to a failure. */
  async explained<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      (error as Error).message += `\n${this.list.map((n) => `----- ${n.name} -----\n${n.tail(40)}`).join('\n')}`;
      throw error;
    }
  }
}

/** Waits until every node names one leader, by NODE_ID, in one term; returns it. */
async function agreedLeader(nodes: Nodes, among: ClusterNode[]): Promise<ClusterNode> {
  return nodes.explained(
    eventually('one leader every node names by its NODE_ID', () => leaderAgreedBy(among), 30_000),
  );
}

/** A write through the leader, then read back from every node's own copy. */
async function expectReplicated(nodes: Nodes, leader: ClusterNode, among: ClusterNode[], key: string, value: string): Promise<void> {
  const put = await http('PUT', `${leader.url}/kv/${key}`, { value });
  expect(put).toMatchObject({ status: 200, body: { success: true } });
  for (const node of among) {
    const answer = await nodes.explained(
      eventually(`${node.name} to apply ${key}`, async () => {
        const got = await http('GET', `${node.url}/kv/${key}?consistency=stale`);
        return got.status === 200 ? got : undefined;
      }),
    );
    expect(answer.body).toMatchObject({ key, value });
  }
}

describe.each([
  ['127.0.0.1', IP],
  ['localhost', LOCALHOST],
  ['a mixture of 127.0.0.1 and localhost (and a node listing itself)', MIXTURE],
])('three nodes given only the four seed variables, peers named by %s', (_label, spelling) => {
  let nodes: Nodes;
  let trio: ClusterNode[];

  beforeAll(async () => {
    nodes = new Nodes();
    trio = await nodes.trio(spelling);
    for (const node of trio) node.start();
  });

  afterAll(async () => {
    await nodes?.stop();
  });

  it('elect one leader, which /status names by NODE_ID on every node', async () => {
    const leader = await agreedLeader(nodes, trio);
    const statuses = await Promise.all(trio.map((n) => n.status()));
    statuses.forEach((s, i) => {
      expect(s.nodeId).toBe(`node${i + 1}`);
      expect(s.leader).toBe(leader.name);
    });
    // The leader's peers are the two others, by NODE_ID.
    const own = statuses.find((s) => s.isLeader)!;
    expect((own.peers ?? []).map((p) => p.nodeId).sort()).toEqual(trio.filter((n) => n !== leader).map((n) => n.name).sort());
    // Nobody refused anybody on the way.
    for (const node of trio) expect(node.logs()).not.toMatch(/cluster mismatch|is not a member|duplicate NODE_ID/);
  });

  it('replicate a write to every node', async () => {
    const leader = await agreedLeader(nodes, trio);
    await expectReplicated(nodes, leader, trio, 'greeting', 'hello');
  });

  it('answer GET /raft/hello with one cluster id and the sorted NODE_IDs as initial voters', async () => {
    const hellos = await Promise.all(trio.map((n) => http('GET', `${n.url}/raft/hello`)));
    const ids = new Set(hellos.map((h) => h.body.clusterId));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/^[0-9a-f]{16}$/);
    hellos.forEach((h, i) => expect(h.body).toMatchObject({ nodeId: `node${i + 1}`, initialVoters: ['node1', 'node2', 'node3'] }));
  });
});

describe('refusals', () => {
  let nodes: Nodes;

  beforeEach(() => {
    nodes = new Nodes();
  });

  afterEach(async () => {
    await nodes.stop();
  });

  it('two nodes with one NODE_ID refuse each other: each says so in one line and exits 1', async () => {
    const ports = await freePorts(2);
    const twins = ports.map((port, i) =>
      nodes.add(`twin-${i + 1}`, port, {
        NODE_ID: 'twin',
        HTTP_PORT: String(port),
        PEER_URLS: `http://127.0.0.1:${ports[1 - i]}`,
        WAL_DIR: join(nodes.root, `twin-${i + 1}`),
      }),
    );
    for (const twin of twins) twin.start();
    const exits = await nodes.explained(Promise.all(twins.map((t) => t.waitForExit(30_000))));
    twins.forEach((twin, i) => {
      expect(exits[i]).toMatchObject({ code: 1, expected: false });
      const other = `http://127.0.0.1:${ports[1 - i]}`;
      expect(twin.logs()).toContain(`twin: cannot start: duplicate NODE_ID: ${other} answers as 'twin', the NODE_ID of this node`);
      expect(twin.logs()).toContain('give every node its own NODE_ID');
    });
  });

  it("a node started on another node's data directory refuses to start, and the cluster is unharmed", async () => {
    const trio = await nodes.trio(IP);
    for (const node of trio) node.start();
    const [node1, node2, node3] = trio;
    const leader = await agreedLeader(nodes, trio);
    await expectReplicated(nodes, leader, trio, 'kept', 'safe');
    await node1.kill();
    await node2.kill();
    // node2's variables, node1's directory.
    const impostor = nodes.add('node2-on-node1-dir', node2.port, { ...node2.env, WAL_DIR: node1.env.WAL_DIR });
    impostor.start();
    const exit = await nodes.explained(impostor.waitForExit(30_000));
    expect(exit).toMatchObject({ code: 1, expected: false });
    expect(impostor.logs()).toMatch(
      /node2: cannot start: the data directory belongs to node 'node1' \(cluster [0-9a-f]{16}\), this process is 'node2'; point WAL_DIR at this node's own directory/,
    );
    // Each node back on its own directory: the cluster serves, with what it had.
    node1.start();
    node2.start();
    const again = await agreedLeader(nodes, trio);
    const read = await http('GET', `${again.url}/kv/kept`);
    expect(read).toMatchObject({ status: 200, body: { key: 'kept', value: 'safe' } });
    expect(node3.running).toBe(true);
  });
});

/**
 * PEER_PORT on real node processes (docs/cluster-rpc.md, "Peer port"): three nodes on 127.0.0.1, each
 * serving clients on HTTP_PORT and peers on a PEER_PORT of its own, the members' URLs (PEER_URLS, the
 * records) being the peer ones. The cluster forms; a write sent to a follower is redirected to the leader's
 * CLIENT port and succeeds with curl -L and Node's fetch; the peer routes are refused on HTTP_PORT and the
 * client API on PEER_PORT; the killed leader is replaced, and restarts on its data; a fourth node joins with
 * JOIN (a member's client URL) and PEER_PORT, and gets every key.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ClusterNode, eventually, freePorts, http, LocalCluster } from '../support/local-cluster';
import { ask, joiningNode, members, waitForRole } from '../support/membership';

jest.setTimeout(180_000);

const TOKEN = 'peer-port-e2e-token-0123456789';

/** `curl -sS -L -X PUT` of a JSON body: follows the 307, re-sending the body. Resolves with status and body. */
function curlPut(url: string, body: unknown): Promise<{ status: number; body: string }> {
  const args = ['-sS', '-L', '--max-redirs', '3', '-m', '10', '-X', 'PUT', '-H', 'content-type: application/json', '--data', JSON.stringify(body)];
  return new Promise((resolve, reject) => {
    execFile('curl', [...args, '-w', '\n%{http_code}', url], (error, stdout, stderr) => {
      if (error) return reject(new Error(`curl failed: ${stderr || error.message}`));
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}

describe('PEER_PORT: peers on a port of their own', () => {
  let cluster: LocalCluster;
  const written = new Map<string, string>();

  /** A node other than `leader` that is running. */
  const followerOf = (leader: ClusterNode) => cluster.nodes.find((n) => n !== leader && n.running)!;

  async function hasEveryKey(node: ClusterNode): Promise<void> {
    await cluster.explained(
      eventually(
        `${node.name} to hold every key written (${written.size})`,
        async () => {
          for (const [key, value] of written) {
            const answer = await http('GET', `${node.url}/kv/${key}?consistency=stale`);
            if (answer.status !== 200 || answer.body.value !== value) return undefined;
          }
          return true;
        },
        30_000,
        200,
      ),
    );
  }

  beforeAll(async () => {
    cluster = await LocalCluster.start({ peerPorts: true, env: { CLUSTER_TOKEN: TOKEN } });
    await cluster.waitForLeader(30_000);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('forms the cluster: members are known by their peer URLs, and each one tells its client URL', async () => {
    const leader = await cluster.waitForLeader();
    for (const node of cluster.nodes) expect(node.peerUrl).not.toBe(node.url);
    const expected = cluster.nodes.map((n) => ({ nodeId: n.name, url: n.peerUrl, peerUrl: n.peerUrl, clientUrl: n.url, role: 'voter' }));
    // Each node learns the others' client URLs from their streams: every view ends up complete.
    for (const node of cluster.nodes) {
      await cluster.explained(
        eventually(`${node.name} to list every member with its client URL`, async () => {
          const view = await members(node.url, TOKEN);
          const listed = view.members.map(({ nodeId, url, peerUrl, clientUrl, role }) => ({ nodeId, url, peerUrl, clientUrl, role }));
          return JSON.stringify(listed) === JSON.stringify(expected) ? true : undefined;
        }),
      );
    }
    const status = await http('GET', `${leader.url}/status`);
    expect(status.body).toMatchObject({ isLeader: true, url: leader.peerUrl, peerUrl: leader.peerUrl, clientUrl: leader.url, leaderUrl: leader.url });
    for (const peer of status.body.peers) {
      const node = cluster.node(peer.nodeId);
      expect(peer).toMatchObject({ url: node.peerUrl, peerUrl: node.peerUrl, clientUrl: node.url });
    }
    const follower = followerOf(leader);
    expect((await http('GET', `${follower.url}/status`)).body).toMatchObject({ isLeader: false, leaderUrl: leader.url });
  });

  it("redirects a write sent to a follower to the leader's client port, and it succeeds with curl -L and fetch", async () => {
    const leader = await cluster.waitForLeader();
    const follower = followerOf(leader);

    const redirect = await http('PUT', `${follower.url}/kv/seen`, { value: 'raw' });
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get('location')).toBe(`${leader.url}/kv/seen`);
    expect(redirect.body).toMatchObject({ leader: leader.name, leaderUrl: leader.url });

    const curled = await curlPut(`${follower.url}/kv/by-curl`, { value: 'curl -L' });
    expect(curled).toMatchObject({ status: 200 });
    written.set('by-curl', 'curl -L');

    const fetched = await fetch(`${follower.url}/kv/by-fetch`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: 'fetch' }),
      redirect: 'follow',
      signal: AbortSignal.timeout(10_000),
    });
    expect({ status: fetched.status, url: fetched.url }).toEqual({ status: 200, url: `${leader.url}/kv/by-fetch` });
    written.set('by-fetch', 'fetch');

    for (const [key, value] of written) {
      expect((await http('GET', `${leader.url}/kv/${key}`)).body).toMatchObject({ key, value });
    }
  });

  it('refuses the peer routes on HTTP_PORT and the client API on PEER_PORT (404 JSON naming the other port)', async () => {
    const node = cluster.nodes[0];
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-raft-stream', 'x-raft-from': 'node2' };
    const stream = await http('POST', `${node.url}/raft/stream`, undefined, { headers, raw: '' });
    expect(stream.status).toBe(404);
    expect(stream.body.error).toMatch(new RegExp(`peer traffic .* peer port of node1 \\(PEER_PORT ${node.peerPort}`));
    expect((await http('GET', `${node.url}/raft/hello`, undefined, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);

    const read = await http('GET', `${node.peerUrl}/kv/by-curl`);
    expect(read.status).toBe(404);
    expect(read.body.error).toMatch(new RegExp(`peer port of node1 .*HTTP_PORT ${node.port} \\(${node.url}\\)`));
    expect((await http('GET', `${node.peerUrl}/status`)).status).toBe(404);
    expect((await http('PUT', `${node.peerUrl}/kv/nope`, { value: 'x' })).status).toBe(404);

    // The peer routes answer there, as before: the hello (CLUSTER_TOKEN) names the node and its client URL.
    const hello = await http('GET', `${node.peerUrl}/raft/hello`, undefined, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(hello).toMatchObject({ status: 200, body: { nodeId: 'node1', clientUrl: node.url } });
    expect((await http('GET', `${node.peerUrl}/raft/hello`)).status).toBe(401);
  });

  it('replaces a killed leader, which then restarts on its data and catches up', async () => {
    const old = await cluster.waitForLeader();
    await old.kill();
    const leader = await cluster.waitForLeader(30_000);
    expect(leader).not.toBe(old);
    const follower = followerOf(leader);
    const answer = await ask('PUT', follower.url, '/kv/after-election', { body: { value: 'new leader' } });
    expect({ status: answer.status, hops: answer.hops }).toEqual({ status: 200, hops: 1 });
    written.set('after-election', 'new leader');

    old.start();
    await old.waitServing();
    await hasEveryKey(old);
    await cluster.waitForLeader(30_000);
  });

  it("joins a fourth node with JOIN (a member's client URL) and PEER_PORT: it is added at its peer URL and gets every key", async () => {
    for (let i = 0; i < 10; i++) {
      const leader = await cluster.waitForLeader();
      const answer = await ask('PUT', leader.url, `/kv/before-join-${i}`, { body: { value: `v${i}` } });
      expect(answer.status).toBe(200);
      written.set(`before-join-${i}`, `v${i}`);
    }
    const [port, peerPort] = await freePorts(2);
    const leader = await cluster.waitForLeader();
    const via = followerOf(leader);
    const node4 = joiningNode(cluster, 'node4', port, {
      BIND_HOST: '127.0.0.1',
      ADVERTISE_URL: `http://127.0.0.1:${port}`,
      PEER_PORT: String(peerPort),
      JOIN: via.url,
      CLUSTER_TOKEN: TOKEN,
      HEARTBEAT_INTERVAL_MS: '50',
      ELECTION_TIMEOUT_MS: '500',
      WAL_DIR: join(cluster.root, 'node4'),
    });
    node4.start();
    await node4.waitServing();
    await hasEveryKey(node4);

    // It promotes itself once caught up, asking the members at their client URLs (not their peer URLs).
    await waitForRole(cluster, 'node4', 'voter', TOKEN);
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const view = await members((await cluster.waitForLeader()).url, TOKEN);
    expect(view.members.find((m) => m.nodeId === 'node4')).toMatchObject({ url: peerUrl, peerUrl, clientUrl: node4.url });
    const last = await ask('PUT', node4.url, '/kv/after-join', { body: { value: 'five' } });
    expect(last.status).toBe(200);
    written.set('after-join', 'five');
    for (const node of cluster.nodes) await hasEveryKey(node);
  });
});

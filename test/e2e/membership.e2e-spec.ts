/**
 * Membership changes on real node processes (issue 12, "Proof"), each cluster on free loopback ports:
 * - replace a node: node1 removed while it runs (it exits 0, and refuses to start again on its data), node4
 *   joined with JOIN and nothing else of the cluster's (no PEER_URLS), node2 stopped: node3 and node4 still
 *   take writes and node4 has every key; a joined node restarts without JOIN; one started with
 *   JOIN_AS_LEARNER=true stays a learner;
 * - grow 3 → 5 and shrink 5 → 3 while clients write (test/support/membership.ts, WriteLoad): no answer but
 *   200, 307 and 503 with Retry-After, and every acknowledged write readable afterwards;
 * - the membership routes' refusals over HTTP: 401 without the token, 404, 409 (id or URL in use, a learner
 *   not caught up, another change pending, two voters to one), 410 from a removed node, which also learns of
 *   a removal made while it was down.
 */
import { ClusterNode, eventually, freePorts, http, LocalCluster, sleep } from '../support/local-cluster';
import { ask, joiningNode, members, MembersAnswer, roleOnLeader, waitForRole, WriteLoad } from '../support/membership';

jest.setTimeout(180_000);

const TOKEN = 'membership-e2e-token-0123456789';
const REMOVED_AGAIN = "this node was removed from the cluster; start it with an empty WAL_DIR and JOIN to add it back (node '";

/** `node`'s own copy of every key of `written` (stale reads), once it has them all. */
async function hasEveryKey(cluster: LocalCluster, node: ClusterNode, written: Map<string, string>): Promise<void> {
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

/** Nodes of `view`, as `nodeId:role`, in order. */
const roles = (view: MembersAnswer) => view.members.map((m) => `${m.nodeId}:${m.role}`);

describe('replace a node: remove node1, join node4, stop node2', () => {
  let cluster: LocalCluster;
  const written = new Map<string, string>();

  async function put(via: ClusterNode, key: string, value: string): Promise<void> {
    const answer = await ask('PUT', via.url, `/kv/${key}`, { body: { value } });
    expect({ key, status: answer.status }).toEqual({ key, status: 200 });
    written.set(key, value);
  }

  beforeAll(async () => {
    cluster = await LocalCluster.start({ env: { CLUSTER_TOKEN: TOKEN } });
    await cluster.waitForLeader(30_000);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('removes node1 while it runs: it exits 0, and refuses to start again on its data', async () => {
    for (let i = 0; i < 20; i++) await put(cluster.node('node2'), `before-${i}`, `value ${i}`);
    const node1 = cluster.node('node1');
    const removed = await ask('DELETE', cluster.node('node3').url, '/cluster/members/node1', { token: TOKEN });
    expect(removed).toMatchObject({ status: 200, body: { members: [{ nodeId: 'node2' }, { nodeId: 'node3' }] } });
    expect(removed.body.members).toHaveLength(2);

    expect(await cluster.explained(node1.waitForExit(20_000))).toMatchObject({ code: 0, signal: null, expected: false });
    expect(node1.logs()).toContain('node1: removed from the cluster; exiting');
    node1.start();
    expect(await node1.waitForExit(20_000)).toMatchObject({ code: 1 });
    expect(node1.tail()).toContain(`${REMOVED_AGAIN}node1'`);
  });

  it('joins node4 from NODE_ID, HTTP_PORT, WAL_DIR, JOIN and CLUSTER_TOKEN alone: a learner, then a voter with every key', async () => {
    const [port] = await freePorts(1);
    const node4 = joiningNode(cluster, 'node4', port, { JOIN: cluster.node('node2').url, CLUSTER_TOKEN: TOKEN });
    expect(Object.keys(node4.env).sort()).toEqual(['CLUSTER_TOKEN', 'HTTP_PORT', 'JOIN', 'NODE_ID', 'WAL_DIR']);
    node4.start();
    await waitForRole(cluster, 'node4', 'voter', TOKEN);

    const leader = await cluster.waitForLeader();
    const view = await members(leader.url, TOKEN);
    expect(roles(view)).toEqual(['node2:voter', 'node3:voter', 'node4:voter']);
    // Its URL is where its join request came from (no ADVERTISE_URL given), on its HTTP_PORT.
    expect(view.members.find((m) => m.nodeId === 'node4')!.url).toBe(`http://127.0.0.1:${port}`);
    await hasEveryKey(cluster, node4, written);
    // node4 answers the membership as a member too.
    expect(roles(await members(node4.url, TOKEN))).toEqual(['node2:voter', 'node3:voter', 'node4:voter']);
  });

  it('stops node2: node3 and node4, two of three voters, still take writes, and node4 has every key', async () => {
    await cluster.node('node2').stop();
    for (let i = 0; i < 10; i++) await put(cluster.node('node3'), `after-${i}`, `value ${i}`);
    await hasEveryKey(cluster, cluster.node('node4'), written);
  });

  it('restarts the joined node on its data without JOIN: it is a voter again and catches up', async () => {
    const node2 = cluster.node('node2');
    node2.start();
    await node2.waitServing();
    await cluster.waitForLeader(30_000);
    const node4 = cluster.node('node4');
    await node4.stop();
    for (let i = 0; i < 5; i++) await put(cluster.node('node3'), `while-node4-down-${i}`, `value ${i}`);
    delete node4.env.JOIN;
    node4.start();
    await node4.waitServing();
    await hasEveryKey(cluster, node4, written);
    expect((await roleOnLeader(cluster, 'node4', TOKEN))?.role).toBe('voter');
    // Only its first start asked to join.
    expect(node4.logs().match(/asking the cluster of .* to add it \(JOIN\)/g)).toHaveLength(1);
  });

  it('keeps a node started with JOIN_AS_LEARNER=true a learner, caught up, until it is removed', async () => {
    const [port] = await freePorts(1);
    const node5 = joiningNode(cluster, 'node5', port, { JOIN: cluster.node('node3').url, CLUSTER_TOKEN: TOKEN, JOIN_AS_LEARNER: 'true' });
    node5.start();
    await waitForRole(cluster, 'node5', 'learner', TOKEN);
    await hasEveryKey(cluster, node5, written);
    // Caught up, it would be promoted at its next request (every 500 ms): three such periods; it makes none.
    await sleep(1500);
    expect((await roleOnLeader(cluster, 'node5', TOKEN))?.role).toBe('learner');

    const leader = await cluster.waitForLeader();
    expect(await ask('DELETE', leader.url, '/cluster/members/node5', { token: TOKEN })).toMatchObject({ status: 200 });
    expect(roles(await members(leader.url, TOKEN))).toEqual(['node2:voter', 'node3:voter', 'node4:voter']);
    // A removed learner sends nothing of its own, so no peer gets to answer it 410 and it does not learn of its
    // removal by itself, unlike a voter, whose next campaign is answered so: stopped here.
    await node5.stop();
  });
});

describe('grow 3 → 5 and shrink 5 → 3 while clients write', () => {
  let cluster: LocalCluster;
  const timings = { HEARTBEAT_INTERVAL_MS: '50', ELECTION_TIMEOUT_MS: '500', REQUEST_TIMEOUT_MS: '3000' };

  beforeAll(async () => {
    cluster = await LocalCluster.start({ env: timings });
    await cluster.waitForLeader(30_000);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('answers every write 200, 307 or 503 with Retry-After, and every acknowledged write is there at the end', async () => {
    const stable = cluster.nodes.slice(0, 3).map((n) => n.url);
    const load = new WriteLoad(() => stable);
    try {
      await sleep(500);
      const before = load.acked.size;
      const [port4, port5] = await freePorts(2);
      for (const [name, port, via] of [
        ['node4', port4, stable[0]],
        ['node5', port5, stable[1]],
      ] as const) {
        joiningNode(cluster, name, port, { JOIN: via, ...timings }).start();
        await waitForRole(cluster, name, 'voter');
      }
      const leader = await cluster.waitForLeader();
      expect(roles(await members(leader.url))).toEqual(['node1:voter', 'node2:voter', 'node3:voter', 'node4:voter', 'node5:voter']);
      const grown = load.acked.size;
      expect(grown).toBeGreaterThan(before);

      for (const [name, via] of [
        ['node5', stable[2]],
        ['node4', stable[0]],
      ] as const) {
        expect(await ask('DELETE', via, `/cluster/members/${name}`)).toMatchObject({ status: 200 });
        expect(await cluster.explained(cluster.node(name).waitForExit(20_000))).toMatchObject({ code: 0, expected: false });
      }
      expect(roles(await members((await cluster.waitForLeader()).url))).toEqual(['node1:voter', 'node2:voter', 'node3:voter']);
      await sleep(500);
      expect(load.acked.size).toBeGreaterThan(grown);
    } finally {
      await load.stop();
    }

    expect(load.problems).toEqual([]);
    expect([...load.answers.keys()].filter((status) => ![200, 307, 503].includes(status))).toEqual([]);
    const leader = await cluster.waitForLeader();
    const keys = [...load.acked.keys()];
    for (let i = 0; i < keys.length; i += 16) {
      const reads = await Promise.all(keys.slice(i, i + 16).map((key) => ask('GET', leader.url, `/kv/${key}`)));
      reads.forEach((read, j) => expect({ key: keys[i + j], status: read.status, value: read.body?.value }).toEqual({ key: keys[i + j], status: 200, value: load.acked.get(keys[i + j]) }));
    }
    process.stdout.write(`membership: ${load.acked.size} writes acknowledged while growing and shrinking; answers ${JSON.stringify(Object.fromEntries(load.answers))}\n`);
  });
});

describe('the membership routes over HTTP: what they refuse', () => {
  let cluster: LocalCluster;
  const auth = { authorization: `Bearer ${TOKEN}` };
  /** Ports nothing listens on: the URLs of members that never answer. */
  let dead: number[];

  beforeAll(async () => {
    // Longer election timeouts than the other clusters': a removed node answers 410 for two of them, and a
    // leader whose followers are paused keeps leading (check-quorum) for one.
    cluster = await LocalCluster.start({ env: { CLUSTER_TOKEN: TOKEN, HEARTBEAT_INTERVAL_MS: '100', ELECTION_TIMEOUT_MS: '1500', REQUEST_TIMEOUT_MS: '5000' } });
    await cluster.waitForLeader(30_000);
    dead = await freePorts(3);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('401 without the cluster token, or with another one, on every route', async () => {
    const leader = await cluster.waitForLeader();
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/cluster/members'],
      ['POST', '/cluster/members', { nodeId: 'intruder', url: `http://127.0.0.1:${dead[0]}` }],
      ['POST', '/cluster/members/node2/promote'],
      ['DELETE', '/cluster/members/node2'],
    ];
    for (const [method, path, body] of routes) {
      for (const headers of [{}, { authorization: 'Bearer not-the-cluster-token-at-all' }] as Array<Record<string, string>>) {
        const answer = await http(method, `${leader.url}${path}`, body, { headers });
        expect({ method, path, status: answer.status, auth: answer.headers.get('www-authenticate') }).toEqual({
          method,
          path,
          status: 401,
          auth: 'Bearer realm="raft-kv"',
        });
        expect(answer.body.error).toMatch(/^Missing or unknown token/);
      }
    }
    expect(roles(await members(leader.url, TOKEN))).toEqual(['node1:voter', 'node2:voter', 'node3:voter']);
  });

  it('404 for a member that does not exist', async () => {
    const leader = await cluster.waitForLeader();
    for (const [method, path] of [
      ['DELETE', '/cluster/members/nobody'],
      ['POST', '/cluster/members/nobody/promote'],
    ]) {
      expect(await http(method, `${leader.url}${path}`, undefined, { headers: auth })).toMatchObject({
        status: 404,
        body: { error: 'nobody is not a member of this cluster' },
      });
    }
  });

  it('409 for an id or a URL in use, and for promoting a learner that has not caught up', async () => {
    const leader = await cluster.waitForLeader();
    const node2 = (await members(leader.url, TOKEN)).members.find((m) => m.nodeId === 'node2')!;
    const post = (body: unknown) => http('POST', `${leader.url}/cluster/members`, body, { headers: auth });
    expect(await post({ nodeId: 'node2', url: `http://127.0.0.1:${dead[0]}` })).toMatchObject({ status: 409, body: { error: 'node2 is already a member' } });
    expect(await post({ nodeId: 'other', url: node2.url })).toMatchObject({ status: 409, body: { error: `${node2.url} is already the URL of member node2` } });

    // A learner at an address where nothing answers never catches up.
    const ghost = await post({ nodeId: 'ghost', url: `http://127.0.0.1:${dead[0]}` });
    expect(ghost).toMatchObject({ status: 201, body: { member: { nodeId: 'ghost', role: 'learner' } } });
    const promote = await http('POST', `${leader.url}/cluster/members/ghost/promote`, undefined, { headers: auth });
    expect(promote.status).toBe(409);
    expect(promote.body.error).toMatch(/^ghost has not caught up yet/);
    expect(await ask('DELETE', leader.url, '/cluster/members/ghost', { token: TOKEN })).toMatchObject({ status: 200 });
    expect(roles(await members(leader.url, TOKEN))).toEqual(['node1:voter', 'node2:voter', 'node3:voter']);
  });

  it('409 for a change asked while another is pending', async () => {
    const leader = await cluster.waitForLeader();
    const followers = cluster.nodes.filter((n) => n !== leader && n.running);
    // With both followers frozen the first change cannot commit, so it stays pending.
    for (const f of followers) f.pause();
    let first: ReturnType<typeof ask> | undefined;
    try {
      first = ask('POST', leader.url, '/cluster/members', { token: TOKEN, body: { nodeId: 'pending', url: `http://127.0.0.1:${dead[1]}` }, timeoutMs: 0 });
      await sleep(300);
      const second = await http('POST', `${leader.url}/cluster/members`, { nodeId: 'second', url: `http://127.0.0.1:${dead[2]}` }, { headers: auth });
      expect(second.status).toBe(409);
      expect(second.body.error).toMatch(/^another membership change is in progress/);
    } finally {
      for (const f of followers) f.resume();
    }
    // The first one commits once the followers are back (or, had leadership moved, its outcome is unknown).
    expect([201, 503]).toContain((await first).status);
    await cluster.waitForLeader(30_000);
    if ((await roleOnLeader(cluster, 'pending', TOKEN)) !== undefined) {
      expect(await ask('DELETE', cluster.node('node1').url, '/cluster/members/pending', { token: TOKEN })).toMatchObject({ status: 200 });
    }
    expect(roles(await members((await cluster.waitForLeader()).url, TOKEN))).toEqual(['node1:voter', 'node2:voter', 'node3:voter']);
  });

  it('removes a node while it is down, refuses to go from two voters to one, and the removed node, back, answers 410 and exits 0', async () => {
    const leader = await cluster.waitForLeader();
    const [victim, other] = cluster.nodes.filter((n) => n !== leader);
    await victim.kill();
    expect(await ask('DELETE', leader.url, `/cluster/members/${victim.name}`, { token: TOKEN })).toMatchObject({ status: 200 });

    for (const last of [other, leader]) {
      const refused = await ask('DELETE', leader.url, `/cluster/members/${last.name}`, { token: TOKEN });
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatch(/ as the only voter, which could then wait forever for /);
    }

    // Back on its data, it is told by the others that it was removed: it answers 410 for a while, then exits 0.
    victim.start();
    const gone = await cluster.explained(
      eventually(
        `${victim.name} to answer 410`,
        async () => {
          const answer = await http('PUT', `${victim.url}/kv/k`, { value: 'v' }, { timeoutMs: 1000 });
          return answer.status === 410 ? answer : undefined;
        },
        30_000,
        50,
      ),
    );
    expect(gone.body).toEqual({ error: 'Removed from the cluster', outcome: 'failed' });
    // Writes, linearizable reads and membership changes are all refused so (its own stale copy still answers).
    const refusals = await Promise.all([
      http('GET', `${victim.url}/kv/k`),
      http('DELETE', `${victim.url}/cluster/members/${other.name}`, undefined, { headers: auth }),
      http('POST', `${victim.url}/cluster/members`, { nodeId: 'x', url: `http://127.0.0.1:${dead[0]}` }, { headers: auth }),
    ]);
    expect(refusals.map((r) => [r.status, r.body.error])).toEqual(Array(3).fill([410, 'Removed from the cluster']));
    expect(await cluster.explained(victim.waitForExit(20_000))).toMatchObject({ code: 0, expected: false });
    victim.start();
    expect(await victim.waitForExit(20_000)).toMatchObject({ code: 1 });
    expect(victim.tail()).toContain(`${REMOVED_AGAIN}${victim.name}'`);
    // The two left still serve.
    expect(await ask('PUT', leader.url, '/kv/still', { body: { value: 'serving' } })).toMatchObject({ status: 200 });
  });
});

/**
 * A 3-node cluster of real processes: election, redirects, reads on followers, failover after SIGKILL, full restart, loss of
 * quorum, and graceful shutdown — the seed README's walkthroughs, checked.
 */
import { ClusterNode, eventually, http, LocalCluster, sleep } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(120_000);

let cluster: LocalCluster;
/** Every write the cluster acknowledged: key -> value. Checked after every fault. */
const acknowledged = new Map<string, string>();

async function write(node: ClusterNode, key: string, value: string): Promise<void> {
  const answer = await http('PUT', `${node.url}/kv/${key}`, { value });
  expect(answer).toMatchObject({ status: 200, body: { success: true } });
  acknowledged.set(key, value);
}

async function expectAllAcknowledged(leader: ClusterNode): Promise<void> {
  for (const [key, value] of acknowledged) {
    const answer = await http('GET', `${leader.url}/kv/${key}`);
    expect(answer).toMatchObject({ status: 200, body: { key, value } });
  }
}

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3 });
});

afterAll(async () => {
  await cluster?.stop();
});

describe('three-node cluster', () => {
  let leader: ClusterNode;

  it('elects exactly one leader that every node reports', async () => {
    leader = await cluster.waitForLeader();
    const statuses = await Promise.all(cluster.nodes.map((n) => n.status()));
    expect(statuses.filter((s) => s.isLeader)).toHaveLength(1);
    for (const s of statuses) {
      expect(s.leader).toBe(leader.name);
      expect(s.state).toBe(s.isLeader ? 'LEADER' : 'FOLLOWER');
    }
    const leaderStatus = statuses.find((s) => s.isLeader)!;
    expect(leaderStatus.peers).toHaveLength(2);
    for (const peer of leaderStatus.peers!) {
      expect(peer.nodeId).toMatch(/^node[123]$/);
      expect(peer.lastContactMs).toBeLessThan(2000);
    }
  });

  it('replicates far more bytes over each peer stream than the client body limit allows one request', async () => {
    // 40 values of 100 KB: 4 MB through every stream, past the ~2.1 MB body limit of the HTTP port they share.
    const big = 'v'.repeat(100 * 1024);
    for (let i = 0; i < 40; i++) await write(leader, `big-${i}`, big);
    for (const node of cluster.nodes) {
      await eventually(`${node.name} to apply every large write`, async () => {
        const answer = await http('GET', `${node.url}/kv/big-39?consistency=stale`);
        return answer.status === 200 ? answer : undefined;
      });
    }
    const statuses = await Promise.all(cluster.nodes.map((n) => n.status()));
    expect(statuses.filter((s) => s.isLeader).map((s) => s.nodeId)).toEqual([leader.name]);
  });

  it('a write through the leader is readable everywhere', async () => {
    await write(leader, 'username', 'alice');
    for (const node of cluster.nodes) {
      const stale = await eventually(`${node.name} to apply the write`, async () => {
        const answer = await http('GET', `${node.url}/kv/username?consistency=stale`);
        return answer.status === 200 ? answer : undefined;
      });
      expect(stale.body).toEqual(keyValue('username', 'alice'));
      // The default read is linearizable, and every node serves it itself: no redirect.
      const answer = await http('GET', `${node.url}/kv/username`);
      expect(answer).toMatchObject({ status: 200, body: { key: 'username', value: 'alice' } });
    }
  });

  it('a follower serves linearizable reads itself: every write acknowledged by the leader is read back at once on each follower', async () => {
    const followers = cluster.nodes.filter((n) => n !== leader);
    for (let i = 0; i < 50; i++) {
      await write(leader, 'counter', String(i));
      // Issued right after the leader's answer: a follower that has not applied the write yet must wait for it.
      const reads = await Promise.all(followers.map((f) => http('GET', `${f.url}/kv/counter`)));
      for (const r of reads) expect(r).toMatchObject({ status: 200, body: { key: 'counter', value: String(i) } });
    }
  });

  it('a follower that missed writes (SIGSTOP) answers a linearizable read with them, not with its stale copy', async () => {
    const follower = cluster.nodes.find((n) => n !== leader)!;
    await write(leader, 'missed', 'before');
    await eventually('the follower to apply it', async () =>
      (await http('GET', `${follower.url}/kv/missed?consistency=stale`)).body?.value === 'before' ? true : undefined,
    );
    follower.pause();
    try {
      await write(leader, 'missed', 'after');
    } finally {
      follower.resume();
    }
    // Asked at once: its own copy still says 'before' until it catches up; the read waits for the leader's index.
    const [read, stale] = await Promise.all([
      http('GET', `${follower.url}/kv/missed`),
      http('GET', `${follower.url}/kv/missed?consistency=stale`),
    ]);
    expect(read).toMatchObject({ status: 200, body: { key: 'missed', value: 'after' } });
    console.log(`follower read after SIGCONT: linearizable ${read.body.value}, stale ${stale.body?.value}`);
    leader = await cluster.waitForLeader();
  });

  it('a follower answers writes with 307, a Location on the leader and the seed body', async () => {
    const follower = cluster.nodes.find((n) => n !== leader)!;
    const answer = await http('PUT', `${follower.url}/kv/redirected?x=1`, { value: 'v' });
    expect(answer.status).toBe(307);
    expect(answer.headers.get('location')).toBe(`${leader.url}/kv/redirected?x=1`);
    expect(answer.body).toEqual({ error: 'Not leader', leader: leader.name, leaderUrl: leader.url });
    // A client that follows the redirect (as curl -L does, re-sending the body on 307) succeeds.
    const followed = await http('PUT', answer.headers.get('location')!, { value: 'v' });
    expect(followed.status).toBe(200);
    acknowledged.set('redirected', 'v');
  });

  it('serves many concurrent writes and reads consistently', async () => {
    const writes = Array.from({ length: 100 }, (_, i) => write(leader, `bulk${i}`, `value-${i}`));
    await Promise.all(writes);
    const reads = await Promise.all(Array.from({ length: 100 }, (_, i) => http('GET', `${leader.url}/kv/bulk${i}`)));
    reads.forEach((r, i) => expect(r.body).toEqual(keyValue(`bulk${i}`, `value-${i}`)));
  });

  it('after SIGKILL of the leader, elects a new one with every acknowledged write, and keeps writing', async () => {
    const old = leader;
    await old.kill();
    leader = await cluster.waitForLeader(15_000);
    expect(leader).not.toBe(old);
    await expectAllAcknowledged(leader);
    await write(leader, 'after-failover', 'resilient');
    // The old leader comes back as a follower and catches up.
    old.start();
    await eventually('the old leader to catch up', async () => {
      const answer = await http('GET', `${old.url}/kv/after-failover?consistency=stale`).catch(() => undefined);
      return answer?.status === 200 ? answer : undefined;
    });
    leader = await cluster.waitForLeader();
  });

  it('with 2 of 3 nodes stopped, writes fail within seconds and no stale read is served', async () => {
    const survivor = leader;
    const others = cluster.nodes.filter((n) => n !== survivor);
    await Promise.all(others.map((n) => n.kill()));
    const started = Date.now();
    const answer = await http('PUT', `${survivor.url}/kv/test`, { value: 'should-fail' });
    expect(Date.now() - started).toBeLessThan(8000);
    expect([503, 307]).toContain(answer.status);
    if (answer.status === 503) {
      expect(answer.body.error).toMatch(/No leader|outcome unknown/);
      expect(answer.headers.get('retry-after')).toBe('1');
    }
    // Check quorum: the cut-off leader steps down; it refuses linearizable reads instead of serving them.
    await eventually('the survivor to step down', async () => ((await survivor.status()).isLeader ? undefined : true));
    const read = await http('GET', `${survivor.url}/kv/username`);
    expect(read.status).toBe(503);
    expect(read.body).toEqual(expect.objectContaining({ error: 'No leader' }));
    // Bring the others back: the cluster recovers, and the failed write's key holds no acknowledged value.
    for (const n of others) n.start();
    leader = await cluster.waitForLeader(20_000);
    await expectAllAcknowledged(leader);
  });

  it('a full cluster restart keeps every acknowledged write (the seed\'s "Verify Persistence")', async () => {
    await write(leader, 'persistent', 'durable');
    await Promise.all(cluster.nodes.map((n) => n.kill()));
    for (const n of cluster.nodes) n.start();
    leader = await cluster.waitForLeader(20_000);
    await expectAllAcknowledged(leader);
    expect((await http('GET', `${leader.url}/kv/persistent`)).body).toEqual(keyValue('persistent', 'durable'));
  });

  it('SIGTERM on the leader hands leadership over and exits 0', async () => {
    const old = leader;
    const before = await old.status();
    old.signal('SIGTERM');
    const exit = await old.waitForExit(10_000);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(old.logs()).toMatch(/transferring leadership to node[123]/);
    const rest = cluster.nodes.filter((n) => n !== old);
    leader = await cluster.waitForLeader(5_000, rest);
    // A handed-over leadership needs no election timeout: one term later.
    expect((await leader.status()).term).toBe(before.term + 1);
    await expectAllAcknowledged(leader);
    old.start();
    await cluster.waitForLeader();
  });

  it('exposes health on every node', async () => {
    await sleep(200);
    for (const node of cluster.nodes) {
      const ready = await eventually(`${node.name} ready`, async () => {
        const answer = await http('GET', `${node.url}/health/ready`);
        return answer.status === 200 ? answer : undefined;
      });
      expect(ready.body.info.raft.status).toBe('up');
    }
  });
});

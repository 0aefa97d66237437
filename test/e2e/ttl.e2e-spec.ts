/**
 * Expiry (#15) on a 3-node cluster of real processes: a key written with ?ttl disappears from every node
 * shortly after its deadline and not before; a rewrite without ttl keeps it; GET shows the time left on
 * every node; a follower's watcher sees the expiry as a delete; and across a leader SIGKILLed before the deadline, the new leader still expires the key, no
 * earlier than its deadline.
 */
import { ClusterNode, eventually, http, HttpAnswer, LocalCluster, sleep } from '../support/local-cluster';

jest.setTimeout(120_000);

let cluster: LocalCluster;
let leader: ClusterNode;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3 });
  leader = await cluster.waitForLeader(30_000);
});

afterAll(async () => {
  await cluster?.stop();
});

const keyUrl = (node: ClusterNode, key: string) => `${node.url}/kv/${encodeURIComponent(key)}`;
const running = () => cluster.nodes.filter((n) => n.running);

async function put(key: string, value: string, query = ''): Promise<HttpAnswer> {
  const answer = await http('PUT', `${keyUrl(leader, key)}${query}`, { value });
  expect(answer.status).toBe(200);
  return answer;
}

/** Each running node's own copy of `key` (stale reads: what that node has applied), by node name. */
async function copies(key: string): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  for (const node of running()) statuses[node.name] = (await http('GET', `${keyUrl(node, key)}?consistency=stale`)).status;
  return statuses;
}

async function everyNodeHas(key: string): Promise<void> {
  await eventually(`every node to have ${key}`, async () => (Object.values(await copies(key)).every((s) => s === 200) ? true : undefined));
}

/**
 * Polls every running node's copy of `key` until it is gone from all of them; returns when (Date.now()) it
 * was first seen gone on any node, and when it was gone from all.
 */
async function watchExpiry(key: string, timeoutMs: number): Promise<{ firstGone: number; allGone: number }> {
  // A follower's stale copy may not have the write yet: gone means gone after every node had it.
  await everyNodeHas(key);
  let firstGone: number | undefined;
  const allGone = await eventually(
    `${key} to be gone from every node`,
    async () => {
      const statuses = Object.values(await copies(key));
      if (statuses.includes(404)) firstGone ??= Date.now();
      return statuses.every((s) => s === 404) ? Date.now() : undefined;
    },
    timeoutMs,
    25,
  );
  return { firstGone: firstGone!, allGone };
}

describe('keys with a TTL', () => {
  it('a key with ttl=2 is served until its deadline and then disappears from every node within a margin', async () => {
    const sent = Date.now();
    await put('short-lived', 'v', '?ttl=2');
    const acked = Date.now();
    const { firstGone, allGone } = await cluster.explained(watchExpiry('short-lived', 10_000));
    // The deadline is the leader's time when it proposed (after `sent`) plus 2 s: never deleted before it.
    expect(firstGone).toBeGreaterThanOrEqual(sent + 2000);
    // A heartbeat-sized scheduler tick, a commit, and the followers' apply: well under a second here.
    expect(allGone - (acked + 2000)).toBeLessThan(1500);
    for (const node of running()) expect((await http('GET', keyUrl(node, 'short-lived'))).status).toBe(404);
    process.stdout.write(`ttl e2e: gone ${firstGone - sent - 2000}..${allGone - sent - 2000} ms after the earliest possible deadline\n`);
  });

  it('a rewrite without ttl makes the key permanent again', async () => {
    await put('kept', 'first', '?ttl=1');
    await put('kept', 'second');
    await sleep(2000);
    expect(await copies('kept')).toEqual({ node1: 200, node2: 200, node3: 200 });
    const read = await http('GET', keyUrl(leader, 'kept'));
    expect(read.body).not.toHaveProperty('ttl');
  });

  it('GET shows the remaining ttl and expiresAt on every node', async () => {
    const sent = Date.now();
    await put('counting', 'v', '?ttl=30');
    for (const node of running()) {
      const read = await http('GET', keyUrl(node, 'counting'));
      expect(read.status).toBe(200);
      expect(read.body.ttl).toBeGreaterThanOrEqual(28);
      expect(read.body.ttl).toBeLessThanOrEqual(30);
      const expiresAt = Date.parse(read.body.expiresAt as string);
      expect(expiresAt).toBeGreaterThanOrEqual(sent + 30_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 30_000);
    }
  });

  it('a watcher on a follower sees the expiry as a delete event after the put, in log order', async () => {
    const follower = running().find((n) => n !== leader)!;
    const written = await put('watched', 'v', '?ttl=1');
    const putIndex = written.body.index as number;
    const stream = new AbortController();
    const response = await fetch(`${follower.url}/watch?key=watched&fromIndex=${putIndex}`, { signal: stream.signal });
    expect(response.status).toBe(200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const timer = setTimeout(() => stream.abort(), 15_000);
    try {
      while (!/event: delete\n/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
    } finally {
      clearTimeout(timer);
      stream.abort();
    }
    const events = text
      .split('\n\n')
      .filter((frame) => frame.includes('event: '))
      .map((frame) => ({ event: /event: (\w+)/.exec(frame)![1], data: JSON.parse(/data: (.*)/.exec(frame)![1]) as Record<string, unknown> }));
    expect(events).toEqual([
      { event: 'put', data: { key: 'watched', value: 'v', index: putIndex } },
      { event: 'delete', data: { key: 'watched', index: expect.any(Number) as number } },
    ]);
    expect(events[1].data.index).toBeGreaterThan(putIndex);
  });

  it('across a leader SIGKILLed before the deadline, the new leader expires the key, not earlier than its deadline', async () => {
    const sent = Date.now();
    await put('survives-the-leader', 'v', '?ttl=3');
    const acked = Date.now();
    // Everyone has it before the kill, so it is the new leader's to expire.
    await everyNodeHas('survives-the-leader');
    const victim = leader;
    await victim.kill();
    leader = await cluster.waitForLeader(15_000, running());
    expect(leader).not.toBe(victim);
    const { firstGone, allGone } = await cluster.explained(watchExpiry('survives-the-leader', 15_000));
    expect(firstGone).toBeGreaterThanOrEqual(sent + 3000);
    // At most about an election timeout (500-1000 ms here) later than on a healthy leader, plus a margin.
    expect(allGone - (acked + 3000)).toBeLessThan(3000);
    process.stdout.write(`ttl e2e: across a leader change, gone ${allGone - acked - 3000} ms after the deadline\n`);

    // The old leader comes back, catches up, and has no copy either.
    victim.start();
    await cluster.explained(
      eventually(`${victim.name} to catch up`, async () => {
        const copy = await http('GET', `${keyUrl(victim, 'survives-the-leader')}?consistency=stale`).catch(() => undefined);
        return copy?.status === 404 ? true : undefined;
      }, 30_000),
    );
  });
});

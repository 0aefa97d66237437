/**
 * Safe retries (#15) on a 3-node cluster of real processes: a PUT sent twice, and sent concurrently, with one
 * Idempotency-Key applies once (same index; a value another client wrote in between is not overwritten);
 * a key reused for another request answers 422; a retry across a leader SIGKILLed after the first write
 * returns the first outcome; and kvctl, whose create-only write gets "outcome unknown" answers while the
 * followers are frozen, retries it with the same key and reports it created once (without the key, the
 * retry would find the key existing: exit 5).
 *
 * REQUEST_TIMEOUT_MS is short (400 ms) so that a frozen quorum turns into "outcome unknown" answers quickly;
 * ELECTION_TIMEOUT_MS long enough (2 s) that the leader keeps its leadership (CheckQuorum) through the freeze.
 */
import { ClusterNode, eventually, http, HttpAnswer, LocalCluster, sleep } from '../support/local-cluster';
import { runKvctl } from '../support/kvctl-process';

jest.setTimeout(120_000);

let cluster: LocalCluster;
let leader: ClusterNode;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3, env: { REQUEST_TIMEOUT_MS: '400', ELECTION_TIMEOUT_MS: '2000' } });
  leader = await cluster.waitForLeader(30_000);
});

afterAll(async () => {
  for (const node of cluster?.nodes ?? []) node.resume();
  await cluster?.stop();
});

const keyUrl = (node: ClusterNode, key: string) => `${node.url}/kv/${encodeURIComponent(key)}`;
const followers = () => cluster.nodes.filter((n) => n !== leader && n.running);

/**
 * A write as a careful client sends it: to `node`, following 307s to the leader, and retried with the same
 * headers (the same Idempotency-Key) while the outcome is unknown or no leader takes it.
 */
async function write(node: ClusterNode, method: 'PUT' | 'DELETE', key: string, value?: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  let url = keyUrl(node, key);
  for (let attempt = 0; attempt < 100; attempt++) {
    let answer: HttpAnswer;
    try {
      answer = await http(method, url, value === undefined ? undefined : { value }, { headers, timeoutMs: 5_000 });
    } catch {
      await sleep(100);
      continue;
    }
    if (answer.status === 307) {
      url = answer.headers.get('location')!;
      continue;
    }
    if (answer.status === 503) {
      await sleep(100);
      url = keyUrl(node, key);
      continue;
    }
    return answer;
  }
  throw new Error(`${method} ${key}: no answer after 100 attempts`);
}

describe('Idempotency-Key', () => {
  it('the same PUT sent twice applies once: the same index and body, Idempotent-Replayed, and no overwrite of a later value', async () => {
    const headers = { 'idempotency-key': 'e2e-twice' };
    const first = await write(leader, 'PUT', 'twice', 'mine', headers);
    expect(first.status).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const other = await write(leader, 'PUT', 'twice', 'another client');
    expect(other.status).toBe(200);
    const retry = await write(leader, 'PUT', 'twice', 'mine', headers);
    expect([retry.status, retry.body, retry.headers.get('idempotent-replayed')]).toEqual([200, first.body, 'true']);
    for (const node of cluster.nodes) {
      const read = await http('GET', keyUrl(node, 'twice'));
      expect([node.name, read.body.value, read.body.modIndex]).toEqual([node.name, 'another client', other.body.index]);
    }
  });

  it('the same PUT sent 8 times at once applies once: every answer has the one index', async () => {
    const headers = { 'idempotency-key': 'e2e-concurrent' };
    const before = (await http('GET', `${leader.url}/status`)).body.commitIndex as number;
    const answers = await Promise.all(Array.from({ length: 8 }, () => write(leader, 'PUT', 'concurrent', 'once', headers)));
    const indexes = new Set(answers.map((a) => a.body.index as number));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(indexes.size).toBe(1);
    const [index] = indexes;
    expect(index).toBeGreaterThan(before);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === null)).toHaveLength(1);
    const read = await http('GET', keyUrl(leader, 'concurrent'));
    expect(read.body).toMatchObject({ value: 'once', createIndex: index, modIndex: index });
  });

  it('a key reused for a different request answers 422 and writes nothing, on PUT and DELETE', async () => {
    const headers = { 'idempotency-key': 'e2e-reused' };
    const first = await write(leader, 'PUT', 'reused', 'a', headers);
    expect(first.status).toBe(200);
    const other = await write(leader, 'PUT', 'reused', 'b', headers);
    expect(other.status).toBe(422);
    expect(other.body.error).toBe('Idempotency-Key "e2e-reused" was used for a different request; use a new key for a new request');
    expect((await write(leader, 'DELETE', 'reused', undefined, headers)).status).toBe(422);
    expect((await http('GET', keyUrl(leader, 'reused'))).body).toMatchObject({ value: 'a', modIndex: first.body.index });
  });

  it('a retry on a follower that has applied the write is answered there at once; across a leader SIGKILL, the first outcome', async () => {
    const headers = { 'idempotency-key': 'e2e-leader-change' };
    const first = await write(leader, 'PUT', 'handover', 'v', headers);
    expect(first.status).toBe(200);
    const follower = followers()[0];
    // A linearizable read makes sure the follower has applied the write; the retry then needs no redirect.
    await http('GET', keyUrl(follower, 'handover'));
    const onFollower = await http('PUT', keyUrl(follower, 'handover'), { value: 'v' }, { headers });
    expect([onFollower.status, onFollower.body, onFollower.headers.get('idempotent-replayed')]).toEqual([200, first.body, 'true']);

    const victim = leader;
    await victim.kill();
    leader = await cluster.waitForLeader(20_000, cluster.nodes.filter((n) => n.running));
    const retry = await write(leader, 'PUT', 'handover', 'v', headers);
    expect([retry.status, retry.body, retry.headers.get('idempotent-replayed')]).toEqual([200, first.body, 'true']);
    expect((await http('GET', keyUrl(leader, 'handover'))).body).toMatchObject({ modIndex: first.body.index });
    victim.start();
    await cluster.explained(eventually(`${victim.name} back`, async () => ((await http('GET', `${victim.url}/status`).catch(() => undefined))?.status === 200 ? true : undefined), 30_000));
  });

  it("kvctl retries a create-only write after 'outcome unknown' with the same key: created once, reported once (exit 0)", async () => {
    leader = await cluster.waitForLeader(20_000);
    const frozen = followers();
    for (const node of frozen) node.pause();
    // The leader cannot commit: each attempt answers 503 outcome unknown after REQUEST_TIMEOUT_MS; kvctl retries.
    const kvctl = runKvctl(['--endpoints', leader.url, '--timeout', '20000', '--json', 'put', '--create', 'created-once', 'v']);
    await sleep(1500);
    for (const node of frozen) node.resume();
    const result = await kvctl;
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const answer = JSON.parse(result.stdout) as { index: number; createIndex: number; replayed?: boolean };
    // The first attempt's entry created the key; a later attempt was answered its outcome.
    expect(answer.replayed).toBe(true);
    const read = await http('GET', keyUrl(leader, 'created-once'));
    expect(read.body).toMatchObject({ value: 'v', createIndex: answer.index, modIndex: answer.index });
    expect(answer.createIndex).toBe(answer.index);
    process.stdout.write(`idempotency e2e: kvctl's create applied at ${answer.index}, reported as a replay\n`);
  });
});

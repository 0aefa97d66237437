/**
 * Listing keys by prefix (`GET /kv?prefix=`) on a 3-node cluster of real processes: on the leader and on
 * followers, pagination to the end, keysOnly, stale reads, linearizability on a follower right after a write,
 * the 400s, a follower that catches up through an installed snapshot (the index rebuilt at restore), kvctl.
 */
import { runKvctl } from '../support/kvctl-process';
import { ClusterNode, eventually, http, LocalCluster } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(120_000);

interface Page {
  items: Array<{ key: string; value?: string }>;
  more: boolean;
  next: string | null;
}

const SNAPSHOT_ENTRIES = 50;

let cluster: LocalCluster;
let leader: ClusterNode;
let followers: ClusterNode[];

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const kvUrl = (node: ClusterNode, key: string) => `${node.url}/kv/${encodeURIComponent(key)}`;

async function put(key: string, value: string): Promise<void> {
  expect(await http('PUT', kvUrl(leader, key), { value })).toMatchObject({ status: 200, body: { success: true } });
}

async function list(node: ClusterNode, query: Record<string, string>): Promise<Page> {
  const answer = await http<Page>('GET', `${node.url}/kv?${new URLSearchParams(query)}`);
  if (answer.status !== 200) throw new Error(`GET /kv?${new URLSearchParams(query)} on ${node.name}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** Every page of `prefix` on `node`, following the cursor; checks each page's shape on the way. */
async function listAll(node: ClusterNode, query: Record<string, string>): Promise<Page['items']> {
  const items: Page['items'] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await list(node, after === undefined ? query : { ...query, after });
    items.push(...page.items);
    if (!page.more) {
      expect(page.next).toBeNull();
      return items;
    }
    expect(page.next).toBe(page.items[page.items.length - 1].key);
    after = page.next!;
  }
  throw new Error('more than 1000 pages');
}

beforeAll(async () => {
  cluster = await LocalCluster.start({
    nodes: 3,
    // Small segments, so that compaction (by whole segments) drops what a follower that was down needs.
    env: { SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES), SNAPSHOT_CATCHUP_ENTRIES: '10', WAL_SEGMENT_BYTES: '4096' },
  });
  leader = await cluster.waitForLeader();
  followers = cluster.nodes.filter((n) => n !== leader);
});

afterAll(async () => {
  await cluster?.stop();
});

describe('GET /kv on a 3-node cluster', () => {
  /** user/000 … user/119 plus keys whose UTF-8 order differs from JavaScript's string order. */
  const users = Array.from({ length: 120 }, (_, i) => `user/${String(i).padStart(3, '0')}`);
  const odd = ['user/ключ', 'user/\uFFFD', 'user/🔑'];
  const expected = [...users, ...odd].sort(utf8Order);

  beforeAll(async () => {
    for (const key of [...users, ...odd, 'users', 'usea', 'app/x']) await put(key, `value of ${key}`);
  });

  it('pages through a prefix to the end on the leader and on each follower: every key once, in UTF-8 byte order, with its value', async () => {
    for (const node of [leader, ...followers]) {
      const items = await listAll(node, { prefix: 'user/', limit: '7' });
      expect(items.map((i) => i.key)).toEqual(expected);
      expect(items.every((i) => i.value === `value of ${i.key}`)).toBe(true);
    }
    expect(expected.slice(-3)).toEqual(['user/ключ', 'user/\uFFFD', 'user/🔑']);
  });

  it('answers {items, more, next}: 100 items by default, next the last key; keysOnly gives names only', async () => {
    const first = await list(followers[0], { prefix: 'user/', keysOnly: 'true' });
    expect(first.items).toHaveLength(100);
    expect(first.items[0]).toEqual({ key: 'user/000' });
    expect(first).toMatchObject({ more: true, next: 'user/099' });
    const rest = await list(followers[0], { prefix: 'user/', keysOnly: 'true', after: first.next!, limit: '1000' });
    expect(rest).toEqual({ items: expected.slice(100).map((key) => ({ key })), more: false, next: null });
  });

  it('an empty prefix lists every key; a prefix without keys lists none', async () => {
    const all = await listAll(leader, { limit: '1000', keysOnly: 'true' });
    expect(all.map((i) => i.key)).toEqual([...expected, 'app/x', 'usea', 'users'].sort(utf8Order));
    expect(await list(leader, { prefix: 'nothing/' })).toEqual({ items: [], more: false, next: null });
  });

  it("serves ?consistency=stale from a follower's own copy", async () => {
    await put('stale/1', 'one');
    const page = await eventually('the follower to apply the write', async () => {
      const p = await list(followers[1], { prefix: 'stale/', consistency: 'stale' });
      return p.items.length === 1 ? p : undefined;
    });
    expect(page).toEqual({ items: [keyValue('stale/1', 'one')], more: false, next: null });
  });

  it('is linearizable on a follower: a list right after a write acknowledged by the leader sees it', async () => {
    for (let i = 0; i < 30; i++) {
      const key = `lin/${String(i).padStart(2, '0')}`;
      await put(key, `v${i}`);
      const page = await list(followers[i % 2], { prefix: 'lin/', limit: '1000' });
      expect(page.items[page.items.length - 1]).toEqual(keyValue(key, `v${i}`));
      expect(page.items).toHaveLength(i + 1);
    }
    // A delete, too: the key is gone from the next listing.
    expect(await http('DELETE', kvUrl(leader, 'lin/29'))).toMatchObject({ status: 200, body: { existed: true } });
    expect((await list(followers[0], { prefix: 'lin/2', keysOnly: 'true' })).items.map((i) => i.key)).toEqual(
      Array.from({ length: 9 }, (_, i) => `lin/2${i}`),
    );
  });

  it.each([
    ['limit=0', 'limit must be an integer from 1 to 1000'],
    ['limit=1001', 'limit must be an integer from 1 to 1000'],
    ['limit=ten', 'limit must be an integer from 1 to 1000'],
    ['keysOnly=1', 'keysOnly must be true or false'],
    ['consistency=weak', 'consistency must be one of'],
    ['prefix=a&prefix=b', 'prefix must be a string'],
    ['cursor=x', 'unknown field "cursor"'],
  ])('answers 400 with a JSON error naming the parameter for ?%s', async (query, message) => {
    const answer = await http('GET', `${followers[0].url}/kv?${query}`);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toContain(message);
  });
});

describe('a follower that catches up through a snapshot', () => {
  it('lists what the leader lists once it has installed the snapshot (its index rebuilt at restore)', async () => {
    const follower = followers[0];
    const installs = () => follower.logs().split("installed the leader's snapshot").length - 1;
    const installsBefore = installs();
    await follower.kill();
    // Creates, overwrites and deletes while it is down, over several snapshots: the leader compacts past them.
    for (let i = 0; i < 4 * SNAPSHOT_ENTRIES; i++) {
      const key = `snap/${String(i % 80).padStart(2, '0')}`;
      if (i % 5 === 4) expect((await http('DELETE', kvUrl(leader, key))).status).toBe(200);
      else await put(key, `w${i}`);
    }
    follower.start();
    await cluster.explained(eventually(`${follower.name} to install a snapshot`, async () => (installs() > installsBefore ? true : undefined), 30_000));
    const onLeader = await listAll(leader, { prefix: 'snap/', limit: '1000' });
    expect(onLeader.length).toBeGreaterThan(40);
    // A write after the install goes through the follower's index by apply again.
    await put('snap/zz', 'after');
    const onFollower = await listAll(follower, { prefix: 'snap/', limit: '13' });
    // The same records (indexes included: every replica applied the same entries), then the new one.
    expect(onFollower).toEqual([...onLeader, keyValue('snap/zz', 'after')]);
  });
});

describe('kvctl list', () => {
  it('lists a prefix through the cluster, following pages; --keys-only and --limit', async () => {
    const endpoints = cluster.nodes.map((n) => n.url).join(',');
    const all = await runKvctl(['--endpoints', endpoints, 'list', 'user/']);
    expect(all.code).toBe(0);
    const lines = all.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(123);
    expect(lines[0]).toBe('user/000\tvalue of user/000');
    expect(lines[122]).toBe('user/🔑\tvalue of user/🔑');
    const some = await runKvctl(['--endpoints', endpoints, 'list', 'user/', '--keys-only', '--limit', '3']);
    expect(some).toMatchObject({ code: 0, stdout: 'user/000\nuser/001\nuser/002\n' });
  });
});

/**
 * GET /watch on a 3-node cluster of real processes: watchers on a follower and on the leader see exactly the
 * committed sequence of their keys (log order, no gap, no duplicate), replay with fromIndex, resume with
 * Last-Event-ID after the client drops, 410 for an index older than the history, and watchers on the survivors
 * of a SIGKILLed leader keep their stream and miss nothing.
 */
import { request as httpRequest, IncomingMessage } from 'node:http';
import { SseEvent, SseParser } from '../../apps/kvctl/src/sse-parser';
import { runKvctl } from '../support/kvctl-process';
import { ClusterNode, eventually, http, LocalCluster } from '../support/local-cluster';

jest.setTimeout(120_000);

/** A change as a watcher should see it. */
interface Seen {
  index: number;
  type: string;
  key: string;
  value?: string;
}

/** A watch stream read in the background. */
class Watch {
  readonly seen: Seen[] = [];
  readonly other: SseEvent[] = [];
  status = 0;
  ended = false;
  private response?: IncomingMessage;
  private readonly parser = new SseParser((event) => {
    if (event.event === 'put' || event.event === 'delete') {
      const data = JSON.parse(event.data) as { key: string; value?: string; index: number };
      expect(String(data.index)).toBe(event.id);
      this.seen.push({ index: data.index, type: event.event, key: data.key, ...(data.value !== undefined ? { value: data.value } : {}) });
    } else this.other.push(event);
  });

  private constructor(readonly opened: Promise<void>) {}

  static open(node: ClusterNode, query: string, headers: Record<string, string> = {}): Promise<Watch> {
    let watch!: Watch;
    const opened = new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${node.url}/watch?${query}`, { headers }, (res) => {
        watch.response = res;
        watch.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => watch.parser.push(chunk));
        res.on('close', () => (watch.ended = true));
        res.on('error', () => undefined);
        resolve();
      });
      req.on('error', (error) => (watch?.status ? (watch.ended = true) : reject(error)));
      req.end();
    });
    watch = new Watch(opened);
    return opened.then(() => watch);
  }

  get lastEventId(): string {
    return this.parser.lastEventId;
  }

  get comments(): number {
    return this.parser.comments;
  }

  /** The client drops the connection. */
  drop(): void {
    this.response?.destroy();
  }

  async toHaveSeen(expected: Seen[], what: string): Promise<void> {
    await eventually(what, async () => (this.seen.length >= expected.length ? true : undefined), 15_000);
    expect(this.seen).toEqual(expected);
  }
}

let cluster: LocalCluster;
let leader: ClusterNode;
/** Every acknowledged change, in log order (a delete of a missing key is none). */
const committed: Seen[] = [];
const under = (prefix: string, from = 0) => committed.filter((c) => c.key.startsWith(prefix) && c.index >= from);

async function put(key: string, value: string, via = leader): Promise<void> {
  const answer = await http('PUT', `${via.url}/kv/${encodeURIComponent(key)}`, { value });
  expect(answer.status).toBe(200);
  committed.push({ index: answer.body.index, type: 'put', key, value });
}

async function remove(key: string, via = leader): Promise<void> {
  const answer = await http('DELETE', `${via.url}/kv/${encodeURIComponent(key)}`);
  expect(answer.status).toBe(200);
  if (answer.body.existed) committed.push({ index: answer.body.index, type: 'delete', key });
}

const followers = () => cluster.nodes.filter((n) => n !== leader);
const watches: Watch[] = [];

beforeAll(async () => {
  // Short body and keep-alive timeouts: a watch stream must outlive both (the response is what is long here).
  cluster = await LocalCluster.start({
    nodes: 3,
    env: { WATCH_HEARTBEAT_MS: '200', WATCH_HISTORY_ENTRIES: '40', BODY_TIMEOUT_MS: '300', KEEP_ALIVE_TIMEOUT_MS: '200' },
  });
  // Generous: on a loaded machine the three processes take a while to start and discover each other.
  leader = await cluster.waitForLeader(60_000);
});

afterAll(async () => {
  for (const watch of watches) watch.drop();
  await cluster?.stop();
});

describe('GET /watch', () => {
  let onFollower: Watch;
  let onLeader: Watch;
  let keyOnFollower: Watch;
  let everything: Watch;

  it('streams the committed changes of a prefix or a key, on a follower and on the leader, in log order', async () => {
    const [follower, other] = followers();
    onFollower = await Watch.open(follower, 'prefix=w%2F');
    onLeader = await Watch.open(leader, 'prefix=w%2F');
    keyOnFollower = await Watch.open(follower, 'key=w%2Fa');
    everything = await Watch.open(other, 'prefix=');
    watches.push(onFollower, onLeader, keyOnFollower, everything);
    expect([onFollower.status, onLeader.status, keyOnFollower.status, everything.status]).toEqual([200, 200, 200, 200]);

    await put('w/a', '1');
    await put('x/elsewhere', 'no');
    await put('w/b', '2');
    await remove('w/missing');
    await put('w/a', 'line1\nline2 "quoted" ✓');
    await remove('w/a');
    await put('w/c', '3');

    await onFollower.toHaveSeen(under('w/'), 'the follower watcher to see every change under w/');
    await onLeader.toHaveSeen(under('w/'), 'the leader watcher to see every change under w/');
    await keyOnFollower.toHaveSeen(under('w/a').filter((c) => c.key === 'w/a'), 'the key watcher to see w/a');
    await everything.toHaveSeen(under(''), 'the watcher of every key to see everything');
    expect(under('w/').map((c) => c.type)).toEqual(['put', 'put', 'put', 'delete', 'put']);
  });

  it('keeps idle streams alive with heartbeat comments, past BODY_TIMEOUT_MS and KEEP_ALIVE_TIMEOUT_MS', async () => {
    const before = onFollower.comments;
    await eventually('five heartbeats', async () => (onFollower.comments >= before + 5 ? true : undefined), 5000);
    expect(onFollower.ended).toBe(false);
    expect(onLeader.ended).toBe(false);
  });

  it('replays the history from fromIndex on, then follows live', async () => {
    const from = under('w/')[1].index;
    const replay = await Watch.open(followers()[0], `prefix=w%2F&fromIndex=${from}`);
    watches.push(replay);
    await replay.toHaveSeen(under('w/', from), 'the replay');
    await put('w/d', '4');
    await replay.toHaveSeen(under('w/', from), 'the replay to follow live');
  });

  it('resumes with Last-Event-ID after the client dropped the connection: no gap, no duplicate', async () => {
    const node = followers()[1];
    const first = await Watch.open(node, 'prefix=r%2F');
    await put('r/1', 'a');
    await put('r/2', 'b');
    await first.toHaveSeen(under('r/'), 'the first connection');
    first.drop();
    await put('r/3', 'c');
    await remove('r/1');
    const resumed = await Watch.open(node, 'prefix=r%2F', { 'last-event-id': first.lastEventId });
    watches.push(resumed);
    await put('r/4', 'd');
    await resumed.toHaveSeen(under('r/').slice(2), 'the resumed connection');
    expect([...first.seen, ...resumed.seen]).toEqual(under('r/'));
  });

  it('answers 410 with the oldest index still kept for a fromIndex older than the history', async () => {
    for (let i = 0; i < 45; i++) await put(`fill/${i % 5}`, String(i));
    const answer = await http('GET', `${followers()[0].url}/watch?prefix=w%2F&fromIndex=1`);
    expect(answer.status).toBe(410);
    expect(answer.body.oldestIndex).toBeGreaterThan(1);
    expect(answer.body.error).toMatch(/older than this node's watch history/);
    const oldest = answer.body.oldestIndex as number;
    const atOldest = await Watch.open(followers()[0], `prefix=fill%2F&fromIndex=${oldest}`);
    watches.push(atOldest);
    await atOldest.toHaveSeen(under('fill/', oldest), 'the watch from oldestIndex');
    expect(atOldest.seen.length).toBeGreaterThan(30);
    const bad = await http('GET', `${leader.url}/watch?key=a&prefix=b`);
    expect(bad.status).toBe(400);
  });

  it('kvctl watch prints the replayed changes one per line, and exits 1 on 410 with the index to watch from', async () => {
    const follower = followers()[0];
    await put('k/1', 'one');
    await put('k/2', 'two words');
    await remove('k/1');
    const expected = under('k/');
    await eventually('the follower to apply the writes', async () => ((await follower.status()).appliedIndex >= expected[2].index ? true : undefined));
    const result = await runKvctl(['--endpoints', follower.url, 'watch', '--prefix', 'k/', '--from-index', String(expected[0].index), '--count', String(expected.length)]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(expected.map((c) => (c.type === 'put' ? `${c.index} PUT ${c.key} ${c.value}\n` : `${c.index} DELETE ${c.key}\n`)).join(''));
    const old = await runKvctl(['--endpoints', follower.url, 'watch', 'w/a', '--from-index', '1']);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/--from-index \d+/);
  });

  it('is in the OpenAPI document: text/event-stream, 410 with oldestIndex', async () => {
    const doc = (await http('GET', `${leader.url}/docs-json`)).body;
    const get = doc.paths['/watch'].get;
    expect(Object.keys(get.responses['200'].content)).toEqual(['text/event-stream']);
    expect(get.responses['410'].content['application/json'].schema.properties.oldestIndex).toEqual({ type: 'integer' });
    expect(get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['key', 'prefix', 'fromIndex', 'Last-Event-ID']));
  });

  it('watchers on the survivors of a SIGKILLed leader keep their stream and miss nothing', async () => {
    const survivors = followers();
    const fromStart = await Watch.open(survivors[0], 'prefix=f%2F');
    watches.push(fromStart);
    await put('f/before', '1');
    await fromStart.toHaveSeen(under('f/'), 'the change before the crash');
    await leader.kill();
    await eventually('the leader watcher to end with its node', async () => (onLeader.ended ? true : undefined), 5000);
    leader = await cluster.waitForLeader(20_000, survivors);
    await put('f/after', '2');
    await remove('f/before');
    await put('w/after', '5');
    for (const watch of [fromStart, onFollower, everything]) expect(watch.ended).toBe(false);
    await fromStart.toHaveSeen(under('f/'), 'the follower watcher across the leader change');
    await onFollower.toHaveSeen(under('w/'), 'the first follower watcher across the leader change');
    await everything.toHaveSeen(under(''), 'the watcher of every key across the leader change');
    // Strictly increasing indexes: no duplicate, and equal to the committed sequence: no gap.
    const ids = everything.seen.map((c) => c.index);
    expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
  });

  it('a node shutting down ends its streams with event: closed, and still exits', async () => {
    const node = cluster.nodes.find((n) => n !== leader && n.exit === undefined)!;
    const watch = await Watch.open(node, 'prefix=');
    watches.push(watch);
    const exit = await node.stop();
    expect(exit?.code).toBe(0);
    await eventually('the stream to end', async () => (watch.ended ? true : undefined), 5000);
    expect(watch.other.map((e) => e.event)).toEqual(['closed']);
  });
});

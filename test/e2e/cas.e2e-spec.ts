/**
 * Versions and conditional writes (#15) on a 3-node cluster of real processes: ETag and indexes on GET
 * (leader and followers, stale reads too), If-Match / If-None-Match through the leader and through a
 * follower (whose 307 the client follows, re-sending its headers), compare-and-set increments from
 * concurrent clients with no lost update, and conditions that still hold across a leader killed mid-way.
 * Then a node started from a backup whose map is in the previous snapshot format (keys without indexes).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSnapshotFile } from '@app/storage';
import { clusterEnvs, Member } from '../../scripts/lib/node-process';
import { runKvctl } from '../support/kvctl-process';
import { ClusterNode, eventually, freePorts, http, HttpAnswer, LocalCluster, sleep } from '../support/local-cluster';

jest.setTimeout(120_000);

let cluster: LocalCluster;
let leader: ClusterNode;
let followers: ClusterNode[];

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3 });
  leader = await cluster.waitForLeader();
  followers = cluster.nodes.filter((n) => n !== leader);
});

afterAll(async () => {
  await cluster?.stop();
});

const keyUrl = (node: ClusterNode, key: string) => `${node.url}/kv/${encodeURIComponent(key)}`;

/** A write sent to `node`, following 307s to the leader with the same body and headers, as a client must. */
async function write(
  node: ClusterNode,
  method: 'PUT' | 'DELETE',
  key: string,
  value?: string,
  headers: Record<string, string> = {},
): Promise<HttpAnswer & { redirected: boolean }> {
  let url = keyUrl(node, key);
  let redirected = false;
  for (let hop = 0; hop < 5; hop++) {
    const answer = await http(method, url, value === undefined ? undefined : { value }, { headers });
    if (answer.status !== 307) return { ...answer, redirected };
    url = answer.headers.get('location')!;
    redirected = true;
  }
  throw new Error(`${method} ${key}: more than 5 redirects`);
}

describe('versions and conditional writes', () => {
  it('GET gives createIndex, modIndex and the ETag on the leader and on followers, stale reads too', async () => {
    const created = await write(leader, 'PUT', 'versioned', 'one');
    expect(created.status).toBe(200);
    const first = created.body.index as number;
    expect(created.body).toEqual({ success: true, index: first, createIndex: first, modIndex: first });
    expect(created.headers.get('etag')).toBe(`"${first}"`);
    const changed = await write(leader, 'PUT', 'versioned', 'two');
    const second = changed.body.modIndex as number;
    expect(second).toBeGreaterThan(first);
    const expected = { key: 'versioned', value: 'two', createIndex: first, modIndex: second };
    for (const node of cluster.nodes) {
      const read = await http('GET', keyUrl(node, 'versioned'));
      expect({ node: node.name, status: read.status, body: read.body, etag: read.headers.get('etag') }).toEqual({
        node: node.name,
        status: 200,
        body: expected,
        etag: `"${second}"`,
      });
      // The linearizable read above waited for this node to apply the write, so its own copy has it too.
      const stale = await http('GET', `${keyUrl(node, 'versioned')}?consistency=stale`);
      expect([stale.status, stale.body, stale.headers.get('etag')]).toEqual([200, expected, `"${second}"`]);
    }
  });

  it('If-Match through a follower: a 307 first, then the current ETag writes and a stale one answers 412', async () => {
    const follower = followers[0];
    const { body } = await write(leader, 'PUT', 'config', 'v1');
    const etag = `"${body.modIndex}"`;
    const redirect = await http('PUT', keyUrl(follower, 'config'), { value: 'v2' }, { headers: { 'if-match': etag } });
    expect(redirect.status).toBe(307);

    const ok = await write(follower, 'PUT', 'config', 'v2', { 'if-match': etag });
    expect(ok).toMatchObject({ status: 200, redirected: true, body: { success: true, createIndex: body.modIndex } });
    const current = ok.body.modIndex as number;
    expect(ok.headers.get('etag')).toBe(`"${current}"`);

    const stale = await write(follower, 'PUT', 'config', 'v3', { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(stale.body).toEqual({
      error: `Precondition failed: If-Match: ${etag}, but the key was last changed at index ${current}`,
      key: 'config',
      modIndex: current,
      outcome: 'failed',
    });
    expect(stale.headers.get('etag')).toBe(`"${current}"`);
    // A failed condition takes a log index but changes nothing, on any node.
    for (const node of cluster.nodes) {
      expect((await http('GET', keyUrl(node, 'config'))).body).toMatchObject({ value: 'v2', modIndex: current });
    }
    // Unquoted, as typed by hand; and a malformed one is refused before anything is proposed.
    expect((await write(leader, 'PUT', 'config', 'v4', { 'if-match': String(current) })).status).toBe(200);
    const malformed = await write(follower, 'PUT', 'config', 'v5', { 'if-match': 'W/"1"' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatch(/If-Match must be one modIndex/);
  });

  it('If-None-Match: * creates only once; a DELETE with If-Match of the index got releases, an older one cannot', async () => {
    const acquired = await write(followers[1], 'PUT', 'lock', 'client-a', { 'if-none-match': '*' });
    expect(acquired).toMatchObject({ status: 200, redirected: true });
    const taken = await write(leader, 'PUT', 'lock', 'client-b', { 'if-none-match': '*' });
    expect(taken.status).toBe(412);
    expect(taken.body).toMatchObject({ key: 'lock', modIndex: acquired.body.modIndex, outcome: 'failed' });

    const stale = await write(leader, 'DELETE', 'lock', undefined, { 'if-match': `"${acquired.body.modIndex - 1}"` });
    expect(stale.status).toBe(412);
    const released = await write(followers[0], 'DELETE', 'lock', undefined, { 'if-match': `"${acquired.body.modIndex}"` });
    expect(released).toMatchObject({ status: 200, body: { success: true, existed: true } });
    const again = await write(leader, 'DELETE', 'lock', undefined, { 'if-match': `"${acquired.body.modIndex}"` });
    expect(again.status).toBe(412);
    expect(again.body).toMatchObject({ modIndex: null });
    expect((await write(leader, 'PUT', 'lock', 'client-b', { 'if-none-match': '*' })).status).toBe(200);
  });

  it('20 compare-and-set increments from 10 concurrent clients end at exactly 20, each value written once', async () => {
    await write(leader, 'PUT', 'counter', '0');
    const written: number[] = [];
    let conflicts = 0;
    const client = async (id: number) => {
      for (let done = 0; done < 2; ) {
        // Reads spread over every node (served where they land); writes reach the leader through redirects.
        const node = cluster.nodes[(id + done + conflicts) % cluster.nodes.length];
        const read = await http('GET', keyUrl(node, 'counter'));
        expect(read.status).toBe(200);
        const next = Number(read.body.value) + 1;
        const answer = await write(node, 'PUT', 'counter', String(next), { 'if-match': read.headers.get('etag')! });
        if (answer.status === 412) {
          conflicts++;
          continue;
        }
        expect(answer.status).toBe(200);
        written.push(next);
        done++;
      }
    };
    await Promise.all(Array.from({ length: 10 }, (_, id) => client(id)));
    expect((await http('GET', keyUrl(leader, 'counter'))).body.value).toBe('20');
    expect(written.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // Ten clients racing on one key: some of them must have lost a race and retried, or nothing was tested.
    expect(conflicts).toBeGreaterThan(0);
  });

  it('conditions hold across a leader change: CAS appends from 8 clients, the leader SIGKILLed mid-way, none lost or doubled', async () => {
    await write(leader, 'PUT', 'history', '[]');
    const perClient = 3;
    const acknowledged = new Set<string>();
    let outcomesUnknown = 0;
    /**
     * Appends its tag to the list at `history` by compare-and-set. Whatever goes wrong (a killed node, no
     * leader yet, an outcome unknown), it reads again before trying again: if its tag is there, its write took
     * effect; if not, an earlier attempt still in some log can never take effect later, since its If-Match
     * names a modIndex that the key has moved past, or will fail the one this attempt names.
     */
    const append = async (tag: string, start: number) => {
      for (let attempt = 0; ; attempt++) {
        const node = cluster.nodes.filter((n) => n.running)[(start + attempt) % cluster.nodes.filter((n) => n.running).length];
        try {
          const read = await http('GET', keyUrl(node, 'history'), undefined, { timeoutMs: 5_000 });
          if (read.status !== 200) throw new Error(`read answered ${read.status}`);
          const list = JSON.parse(read.body.value) as string[];
          if (list.includes(tag)) return;
          const answer = await write(node, 'PUT', 'history', JSON.stringify([...list, tag]), { 'if-match': read.headers.get('etag')! });
          if (answer.status === 200) {
            acknowledged.add(tag);
            return;
          }
          if (answer.status === 503 && answer.body?.outcome === 'unknown') outcomesUnknown++;
        } catch {
          // A connection to the killed node, or a timeout: the outcome is unknown; the next read tells.
        }
        await sleep(50);
      }
    };
    const clients = Array.from({ length: 8 }, async (_, id) => {
      for (let i = 0; i < perClient; i++) await append(`c${id}-${i}`, id);
    });
    const victim = leader;
    await eventually('a few appends before the kill', async () => (acknowledged.size >= 6 ? true : undefined), 30_000, 20);
    const atKill = acknowledged.size;
    await victim.kill();
    await Promise.all(clients);
    // Mid-way: appends were still to come when the leader died.
    expect(atKill).toBeLessThan(8 * perClient);

    const survivors = cluster.nodes.filter((n) => n !== victim);
    leader = await cluster.waitForLeader(15_000, survivors);
    const final = await http('GET', keyUrl(leader, 'history'));
    const list = JSON.parse(final.body.value) as string[];
    expect(new Set(list).size).toBe(list.length);
    expect(list.length).toBe(8 * perClient);
    for (const tag of acknowledged) expect(list).toContain(tag);
    process.stdout.write(`cas e2e: ${atKill} appends before the kill, ${acknowledged.size} acknowledged, ${outcomesUnknown} outcome unknown\n`);

    // The killed node comes back and applies the same entries, failed conditions included: the same outcome.
    victim.start();
    await cluster.explained(
      eventually(
        `${victim.name} to catch up with the same value and indexes`,
        async () => {
          const copy = await http('GET', `${keyUrl(victim, 'history')}?consistency=stale`).catch(() => undefined);
          return copy?.status === 200 && copy.body.modIndex === final.body.modIndex ? copy : undefined;
        },
        30_000,
      ),
    ).then((copy) => expect(copy.body).toEqual(final.body));
  });
});

describe('a node restored from a snapshot of the previous format (keys without indexes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-cas-format1-'));
  let node: ClusterNode | undefined;
  /** The index of the snapshot in the backup: every key of its map gets it as createIndex and modIndex. */
  const SNAPSHOT_INDEX = 5000;

  afterAll(async () => {
    await node?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives every key the snapshot index, takes If-Match with it, and keeps the indexes across a restart', async () => {
    // The node sends its CPU to this cluster only.
    await cluster.stop();
    // A backup file around map content written by the previous encoder (libs/kv/src/testdata).
    const content = readFileSync(join(__dirname, '../../libs/kv/src/testdata/snapshot-format-1.bin'));
    const parts: Buffer[] = [];
    for await (const part of encodeSnapshotFile({ index: SNAPSHOT_INDEX, term: 4, confState: { voters: ['node1'] } }, [content])) parts.push(part);
    const backup = join(dir, 'format-1.snap');
    writeFileSync(backup, Buffer.concat(parts));
    const [port] = await freePorts(1);
    const member: Member = { name: 'node1', port, url: `http://127.0.0.1:${port}`, dir: join(dir, 'node1'), bindHost: '127.0.0.1' };
    const restored = await runKvctl(['snapshot', 'restore', backup, '--wal-dir', member.dir, '--node-id', 'node1']);
    expect(restored).toMatchObject({ code: 0, stderr: '' });

    const [env] = clusterEnvs([member], () => ({ LOG_LEVEL: 'info', HEARTBEAT_INTERVAL_MS: '50', ELECTION_TIMEOUT_MS: '500', REQUEST_TIMEOUT_MS: '3000' }));
    node = new ClusterNode('node1', port, member.dir, env);
    node.start();
    const read = async () => {
      const answer = await http('GET', `${node!.url}/kv/lock`).catch(() => undefined);
      return answer?.status === 200 ? answer : undefined;
    };
    const first = await eventually('the restored node to answer', read, 20_000);
    expect(first.body).toEqual({ key: 'lock', value: 'owner-1', createIndex: SNAPSHOT_INDEX, modIndex: SNAPSHOT_INDEX });
    expect(first.headers.get('etag')).toBe(`"${SNAPSHOT_INDEX}"`);

    expect((await http('PUT', `${node.url}/kv/lock`, { value: 'x' }, { headers: { 'if-match': `"${SNAPSHOT_INDEX - 1}"` } })).status).toBe(412);
    const changed = await http('PUT', `${node.url}/kv/lock`, { value: 'owner-2' }, { headers: { 'if-match': `"${SNAPSHOT_INDEX}"` } });
    expect(changed.body).toMatchObject({ success: true, createIndex: SNAPSHOT_INDEX });
    expect(changed.body.modIndex).toBeGreaterThan(SNAPSHOT_INDEX);

    // At its first start the node took a snapshot of its own (recording its members), in the new format:
    // after a restart the indexes come from it and from the log, the same as before.
    expect(node.logs()).toMatch(new RegExp(`snapshot taken at index ${SNAPSHOT_INDEX} `));
    await node.stop();
    node.start();
    const again = await eventually('the restarted node to answer', read, 20_000);
    expect(again.body).toEqual({ key: 'lock', value: 'owner-2', createIndex: SNAPSHOT_INDEX, modIndex: changed.body.modIndex });
    expect((await http('GET', `${node.url}/kv/config%2Fmode`)).body).toEqual({
      key: 'config/mode',
      value: 'primary',
      createIndex: SNAPSHOT_INDEX,
      modIndex: SNAPSHOT_INDEX,
    });
  });
});

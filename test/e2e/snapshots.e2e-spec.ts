/**
 * Snapshots and log compaction with real node processes (docs/storage.md, "Snapshots and compaction";
 * docs/consensus.md, the node loop's Snapshotter and InstallSnapshot): small SNAPSHOT_ENTRIES and
 * WAL_SEGMENT_BYTES so that a thousand writes take several snapshots and delete segments.
 *
 * - A follower SIGKILLed while the cluster writes comes back behind the leader's compacted log and catches
 *   up through an installed snapshot; the leader's WAL stays bounded.
 * - A whole-cluster SIGKILL and restart restores every node from its snapshot, losing no acknowledged write.
 * - A cluster started with the seed's four variables only (the snapshot settings at their defaults) works.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { NodeProcess } from '../../scripts/lib/node-process';
import { sampleSum } from '../support/prometheus-text';
import { ClusterNode, eventually, freePorts, http, LocalCluster, sleep, StatusBody } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(180_000);

const SNAPSHOT_ENTRIES = 100;
const WRITES = 1000;
const KEYS = 300;
/** Each writer owns the keys k with k % WRITERS === w and writes them in turn: the last value is known. */
const WRITERS = 10;

/** /status with the snapshot fields this node serves (docs/api.md); kvctl's type has them optional (older nodes). */
type SnapshotStatus = StatusBody & { snapshotIndex: number; firstLogIndex: number };
const status = (node: NodeProcess) => node.status() as Promise<SnapshotStatus>;

let cluster: LocalCluster;
/** Every acknowledged write: key -> the value written last (each key has one writer, so this is its value). */
const acknowledged = new Map<string, string>();

beforeAll(async () => {
  cluster = await LocalCluster.start({
    nodes: 3,
    env: { SNAPSHOT_ENTRIES: String(SNAPSHOT_ENTRIES), SNAPSHOT_CATCHUP_ENTRIES: '10', WAL_SEGMENT_BYTES: '4096' },
  });
});

afterAll(async () => {
  await cluster?.stop();
});

/** Where writes go: the last leader seen. */
let leaderUrl: string | undefined;

/** A write, following a redirect and retrying a 503 (a leader change), until the cluster acknowledges it. */
async function write(key: string, value: string): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    leaderUrl ??= (await cluster.waitForLeader()).url;
    const answer = await http('PUT', `${leaderUrl}/kv/${key}`, { value }).catch(() => undefined);
    if (answer?.status === 200) {
      acknowledged.set(key, value);
      return;
    }
    if (answer?.status === 307 && answer.body?.leaderUrl) leaderUrl = answer.body.leaderUrl;
    else {
      await sleep(200);
      leaderUrl = undefined;
    }
  }
  throw new Error(`PUT ${key} was never acknowledged`);
}

/** `count` writes, overwrites of `keys` keys, from WRITERS concurrent sequential writers. */
async function writeMany(count: number, keys: number, tag: string): Promise<void> {
  const filler = 'x'.repeat(60); // entries of ~100 bytes: a 4 KiB segment holds a few dozen
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = w; i < count; i += WRITERS) {
        const k = (i * 7) % keys;
        // Key k has exactly one writer: i ≡ w (mod WRITERS) ⇔ k ≡ 7w (mod WRITERS), since 7 is invertible mod 10.
        await write(`key${k}`, `${tag}-${i}-${filler}`);
      }
    }),
  );
}

/** Reads every acknowledged key from `node` with ?consistency=stale: the keys whose value differs. */
async function staleMismatches(node: ClusterNode): Promise<string[]> {
  const wrong: string[] = [];
  const keys = [...acknowledged.keys()];
  for (let i = 0; i < keys.length; i += 20) {
    await Promise.all(
      keys.slice(i, i + 20).map(async (key) => {
        const answer = await http('GET', `${node.url}/kv/${key}?consistency=stale`);
        if (answer.status !== 200 || answer.body.value !== acknowledged.get(key)) wrong.push(`${key}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 40)}`);
      }),
    );
  }
  return wrong;
}

/** Waits until `node` has applied up to the leader's commit index, then expects it to hold every acknowledged write. */
async function expectReplicaComplete(node: ClusterNode, leader: ClusterNode): Promise<void> {
  const commit = (await leader.status()).commitIndex;
  await cluster.explained(eventually(`${node.name} to apply up to ${commit}`, async () => ((await node.status()).appliedIndex >= commit ? true : undefined), 30_000));
  expect({ node: node.name, wrong: await staleMismatches(node) }).toEqual({ node: node.name, wrong: [] });
}

function walFiles(node: ClusterNode): { segments: string[]; snapshots: string[]; temporary: string[] } {
  const segments = readdirSync(node.dir).filter((f) => f.endsWith('.wal'));
  const snap = readdirSync(join(node.dir, 'snap'));
  return { segments, snapshots: snap.filter((f) => f.endsWith('.snap')), temporary: snap.filter((f) => f.endsWith('.tmp')) };
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

/** The output of the node's current incarnation: from its last start line on. */
function currentIncarnation(node: ClusterNode): string {
  const logs = node.logs();
  return logs.slice(Math.max(0, logs.lastIndexOf(' starting at term ') - 200));
}

describe('snapshots and compaction in a 3-node cluster', () => {
  it('a follower killed during 1,000 writes catches up through an installed snapshot; the leader compacted its WAL', async () => {
    let leader = await cluster.waitForLeader();
    await writeMany(50, 50, 'warm');
    const follower = cluster.nodes.find((n) => n !== leader)!;
    await eventually(`${follower.name} to apply the first writes`, async () => ((await follower.status()).appliedIndex >= (await leader.status()).commitIndex ? true : undefined));
    const before = await status(follower);
    const installsBefore = count(follower.logs(), "installed the leader's snapshot");
    await follower.kill();

    const started = Date.now();
    await writeMany(WRITES, KEYS, 'load');
    const writeSeconds = (Date.now() - started) / 1000;
    leader = await cluster.waitForLeader(15_000, cluster.nodes.filter((n) => n !== follower));
    const leaderStatus = await status(leader);
    // The leader snapshotted, and compaction moved its log's start: the follower cannot be caught up from it.
    expect(leaderStatus.snapshotIndex).toBeGreaterThanOrEqual(WRITES - 2 * SNAPSHOT_ENTRIES);
    expect(leaderStatus.firstLogIndex).toBeGreaterThan(before.appliedIndex + 1);
    // The log holds about two snapshots' worth of entries (back to the previous snapshot), not the thousand.
    expect(leaderStatus.lastLogIndex - leaderStatus.firstLogIndex + 1).toBeLessThan(4 * SNAPSHOT_ENTRIES);
    const files = walFiles(leader);
    // ~100-byte entries in 4 KiB segments: the whole log would be 30+ segments; compaction keeps under 10.
    expect(files.segments.length).toBeLessThanOrEqual(12);
    expect(files.snapshots.length).toBeGreaterThanOrEqual(1);
    expect(files.snapshots.length).toBeLessThanOrEqual(2);

    follower.start();
    const after = await cluster.explained(
      eventually(
        `${follower.name} to install the leader's snapshot`,
        async () => {
          const s = await status(follower);
          return s.snapshotIndex > before.snapshotIndex && count(follower.logs(), "installed the leader's snapshot") > installsBefore ? s : undefined;
        },
        30_000,
      ),
    );
    // It jumped past everything it missed in one step, to a snapshot the leader's compacted log no longer has entries for.
    expect(after.snapshotIndex).toBeGreaterThan(before.appliedIndex + SNAPSHOT_ENTRIES);
    expect(follower.logs()).toMatch(new RegExp(`installed the leader's snapshot at index ${after.snapshotIndex} \\(term \\d+\\)`));
    await expectReplicaComplete(follower, leader);
    await expectReplicaComplete(leader, leader);
    expect(walFiles(follower).temporary).toEqual([]);

    // The metrics say the same: the leader took snapshots and sent one; the follower installed one.
    const leaderMetrics = (await http<string>('GET', `${leader.url}/metrics`)).body;
    expect(sampleSum(leaderMetrics, 'raftkv_raft_snapshot_duration_seconds_count', { kind: 'taken' })).toBeGreaterThan(0);
    expect(sampleSum(leaderMetrics, 'raftkv_peer_snapshots_sent_total', { outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    const followerMetrics = (await http<string>('GET', `${follower.url}/metrics`)).body;
    expect(sampleSum(followerMetrics, 'raftkv_raft_snapshot_duration_seconds_count', { kind: 'installed' })).toBeGreaterThanOrEqual(1);
    expect(sampleSum(followerMetrics, 'raftkv_peer_snapshots_received_total', { outcome: 'ok' })).toBeGreaterThanOrEqual(1);

    process.stdout.write(
      `snapshots e2e: ${WRITES} writes in ${writeSeconds.toFixed(1)} s with ${follower.name} down; leader ${leader.name} at snapshot ` +
        `${leaderStatus.snapshotIndex}, log [${leaderStatus.firstLogIndex}, ${leaderStatus.lastLogIndex}], ${files.segments.length} segments, ` +
        `${files.snapshots.length} snapshot files; ${follower.name} installed snapshot ${after.snapshotIndex} (it had applied ${before.appliedIndex})\n`,
    );
  });

  it('after SIGKILL of every node, each restores from its snapshot and every acknowledged write reads back', async () => {
    await writeMany(300, 100, 'again');
    const snapshots = await Promise.all(cluster.nodes.map(async (n) => (await status(n)).snapshotIndex));
    await Promise.all(cluster.nodes.map((n) => n.kill()));
    for (const n of cluster.nodes) n.start();
    const leader = await cluster.waitForLeader(30_000);
    for (const [i, node] of cluster.nodes.entries()) {
      expect(snapshots[i]).toBeGreaterThan(0);
      // The start line of the new incarnation: the state came from a snapshot at or after the one it had.
      const line = /starting at term \d+ with commit \d+, last index \d+, state restored from the snapshot at (\d+)/.exec(currentIncarnation(node));
      expect({ node: node.name, restoredFrom: line && Number(line[1]) >= snapshots[i] }).toEqual({ node: node.name, restoredFrom: true });
      expect(walFiles(node).temporary).toEqual([]);
    }
    // Linearizable reads through the leader, then each replica's own copy.
    const keys = [...acknowledged.keys()];
    for (let i = 0; i < keys.length; i += 20) {
      const answers = await Promise.all(keys.slice(i, i + 20).map((key) => http('GET', `${leader.url}/kv/${key}`)));
      answers.forEach((a, j) => expect({ key: keys[i + j], status: a.status, value: a.body?.value }).toEqual({ key: keys[i + j], status: 200, value: acknowledged.get(keys[i + j]) }));
    }
    for (const node of cluster.nodes) await expectReplicaComplete(node, leader);
  });
});

describe('the snapshot settings at their defaults', () => {
  it("a cluster started with the seed's four variables only works, restarts, and takes no snapshot before 10,000 entries", async () => {
    const ports = await freePorts(3);
    const urls = ports.map((p) => `http://localhost:${p}`);
    const nodes = ports.map(
      (port, i) =>
        new NodeProcess({
          name: `node${i + 1}`,
          // Only these four, as in the seed's README: no SNAPSHOT_*, no WAL_SEGMENT_BYTES, nothing inherited.
          env: { NODE_ID: `node${i + 1}`, HTTP_PORT: String(port), PEER_URLS: urls.filter((_, j) => j !== i).join(','), WAL_DIR: join(cluster.root, `defaults-node${i + 1}`) },
          inheritEnv: false,
          clientUrl: `http://127.0.0.1:${port}`,
        }),
    );
    try {
      for (const n of nodes) n.start();
      await Promise.all(nodes.map((n) => n.waitServing(30_000, '/health/ready')));
      const leaderOf = async () => {
        const statuses = await Promise.all(nodes.map((n) => n.status()));
        const l = statuses.find((s) => s.isLeader);
        return l && nodes.find((n) => n.name === l.nodeId);
      };
      let leader = await eventually('a leader', leaderOf, 30_000);
      for (let i = 0; i < 20; i++) expect((await http('PUT', `${leader.url}/kv/d${i}`, { value: `v${i}` })).status).toBe(200);
      expect(await status(leader)).toMatchObject({ snapshotIndex: 0, firstLogIndex: 1 });
      expect(sampleSum((await http<string>('GET', `${leader.url}/metrics`)).body, 'raftkv_raft_snapshot_duration_seconds_count', { kind: 'taken' })).toBe(0);

      await Promise.all(nodes.map((n) => n.kill()));
      for (const n of nodes) n.start();
      leader = await eventually('a leader after the restart', leaderOf, 30_000);
      for (let i = 0; i < 20; i++) expect((await http('GET', `${leader.url}/kv/d${i}`)).body).toEqual(keyValue(`d${i}`, `v${i}`));
      expect(nodes.map((n) => n.logs()).join('\n')).not.toContain('state restored from the snapshot');
    } finally {
      await Promise.all(nodes.map((n) => n.kill()));
    }
  });
});

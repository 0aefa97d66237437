/**
 * Backup and restore, end to end, as an operator does it (etcd's `snapshot save` / `snapshot restore`): a
 * 3-node cluster with API_TOKENS_FILE takes writes (overwrites and deletes among them, and writes that go on
 * during the save), `kvctl snapshot save` downloads a snapshot from it, `kvctl snapshot restore` makes three
 * new data directories from the file, and a NEW cluster on new ports starts on them: every key reads back
 * exactly, deleted keys are gone, writes work. Also: GET /cluster/snapshot needs an admin token and redirects
 * from a follower; a damaged file is refused by status and restore; restore refuses a non-empty directory.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSnapshotFile, SnapshotDecoder } from '@app/storage';
import { decodeKvSnapshot } from '../../libs/kv/src/kv-snapshot-format';
import { clusterEnvs, Member } from '../../scripts/lib/node-process';
import { runKvctl } from '../support/kvctl-process';
import { ClusterNode, eventually, freePorts, http, LocalCluster } from '../support/local-cluster';

jest.setTimeout(90_000);

const READ = 'backup-reader-0123456789';
const WRITE = 'backup-writer-0123456789';
const ADMIN = 'backup-admin-01234567890';
const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

const dir = mkdtempSync(join(tmpdir(), 'raftkv-backup-'));
const backup = join(dir, 'backup.snap');
let source: LocalCluster;
let leader: ClusterNode;
let follower: ClusterNode;
let restored: ClusterNode[] = [];

/** What the source cluster holds once the writes below are acknowledged: key → value (undefined: deleted). */
const expected = new Map<string, string | undefined>();
/** The concurrent writes acknowledged before the save started, and the highest index among them. */
const ackedBeforeSave = new Map<string, string>();
let ackedIndexBeforeSave = 0;

async function put(key: string, value: string): Promise<number> {
  const answer = await http('PUT', `${leader.url}/kv/${encodeURIComponent(key)}`, { value }, auth(WRITE));
  if (answer.status !== 200) throw new Error(`PUT ${key}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body.index as number;
}

async function del(key: string): Promise<void> {
  const answer = await http('DELETE', `${leader.url}/kv/${encodeURIComponent(key)}`, undefined, auth(WRITE));
  if (answer.status !== 200) throw new Error(`DELETE ${key}: ${answer.status}`);
}

/** The node the given nodes all follow, once they agree; the failure shows their logs. */
async function leaderOf(nodes: ClusterNode[]): Promise<ClusterNode> {
  try {
    return await eventually(
      'a leader of the restored cluster',
      async () => {
        const statuses = await Promise.all(nodes.map((n) => n.status()));
        const leaders = statuses.filter((s) => s.isLeader);
        if (leaders.length !== 1 || !statuses.every((s) => s.leader === leaders[0].nodeId)) return undefined;
        return nodes.find((n) => n.name === leaders[0].nodeId);
      },
      20_000,
    );
  } catch (error) {
    (error as Error).message += `\n${nodes.map((n) => `----- ${n.name} -----\n${n.tail(30)}`).join('\n')}`;
    throw error;
  }
}

function kvctl(args: string[]) {
  return runKvctl(args);
}

/** The map a snapshot file holds. */
async function contentOf(file: string): Promise<{ index: number; map: Map<string, string> }> {
  const reader = await readSnapshotFile(file);
  const chunks: Uint8Array[] = [];
  for await (const chunk of reader.chunks()) chunks.push(chunk);
  return { index: reader.metadata.index, map: decodeKvSnapshot(chunks) };
}

beforeAll(async () => {
  const tokens = join(dir, 'tokens');
  writeFileSync(tokens, `${READ} read\n${WRITE} readwrite\n${ADMIN} admin\n`);
  source = await LocalCluster.start({ nodes: 3, env: { API_TOKENS_FILE: tokens } });
  leader = await source.waitForLeader();
  follower = source.nodes.find((n) => n !== leader)!;

  for (let i = 0; i < 40; i++) expected.set(`key-${i}`, `value-${i}`);
  expected.set('unicode ключ/🔑', 'значение ✓');
  // Larger than one KV snapshot chunk (256 KiB): the file holds several.
  expected.set('big', 'b'.repeat(300_000));
  for (const [key, value] of expected) await put(key, value!);
  for (let i = 0; i < 10; i++) {
    expected.set(`key-${i}`, `overwritten-${i}`);
    await put(`key-${i}`, `overwritten-${i}`);
  }
  for (let i = 30; i < 35; i++) {
    expected.set(`key-${i}`, undefined);
    await del(`key-${i}`);
  }
});

afterAll(async () => {
  await Promise.all(restored.map((n) => n.kill()));
  await source?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /cluster/snapshot', () => {
  it('needs an admin token: 401 without one, 403 with a read token', async () => {
    const none = await http('GET', `${leader.url}/cluster/snapshot`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="raft-kv"');
    expect(none.body).toEqual({ error: expect.stringContaining('Missing or unknown API token') });
    const reader = await http('GET', `${leader.url}/cluster/snapshot`, undefined, auth(READ));
    expect(reader).toMatchObject({ status: 403, body: { error: expect.stringContaining("it needs 'admin'") } });
  });

  it('redirects from a follower to the leader, like a linearizable read', async () => {
    const answer = await http('GET', `${follower.url}/cluster/snapshot`, undefined, auth(ADMIN));
    expect(answer.status).toBe(307);
    expect(answer.headers.get('location')).toBe(`${leader.url}/cluster/snapshot`);
    expect(answer.body).toMatchObject({ error: 'Not leader', leader: leader.name });
  });

  it('streams a sound snapshot file of the whole map from the leader, named after its index', async () => {
    const response = await fetch(`${leader.url}/cluster/snapshot`, { ...auth(ADMIN), signal: AbortSignal.timeout(10_000) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    const index = Number(response.headers.get('x-snapshot-index'));
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="raft-kv-${index}.snap"`);
    expect(Number(response.headers.get('x-snapshot-keys'))).toBe([...expected.values()].filter((v) => v !== undefined).length);
    const decoder = new SnapshotDecoder('response');
    const chunks = decoder.push(Buffer.from(await response.arrayBuffer()));
    const summary = decoder.end();
    expect(summary).toMatchObject({ index, term: Number(response.headers.get('x-snapshot-term')) });
    expect(summary.chunks).toBeGreaterThan(1);
    expect([...summary.confState.voters].sort()).toEqual(source.nodes.map((n) => n.name).sort());
    const map = decodeKvSnapshot(chunks);
    for (const [key, value] of expected) expect({ key, value: map.get(key) }).toEqual({ key, value });
  });

  it('is described in the OpenAPI document: a binary 200, the redirect, 503, 401 and 403', async () => {
    const doc = (await http('GET', `${leader.url}/docs-json`)).body;
    const op = doc.paths['/cluster/snapshot'].get;
    expect(op.tags).toEqual(['cluster']);
    expect(op.responses['200'].content['application/octet-stream'].schema).toEqual({ type: 'string', format: 'binary' });
    expect(Object.keys(op.responses['200'].headers)).toEqual(['x-snapshot-index', 'x-snapshot-term', 'x-snapshot-keys']);
    expect(Object.keys(op.responses).sort()).toEqual(['200', '307', '401', '403', '503']);
  });

  it('lets the node go on serving when a client abandons the download', async () => {
    const controller = new AbortController();
    const response = await fetch(`${leader.url}/cluster/snapshot`, { ...auth(ADMIN), signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await put('after-abort', 'yes');
    expected.set('after-abort', 'yes');
    expect(await http('GET', `${leader.url}/kv/after-abort`, undefined, auth(READ))).toMatchObject({ status: 200, body: { value: 'yes' } });
  });
});

describe('kvctl snapshot save', () => {
  it('says why it failed without a token (exit 1), and leaves no file behind', async () => {
    const result = await kvctl(['--endpoints', follower.url, 'snapshot', 'save', backup]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('answered 401');
    expect(existsSync(backup)).toBe(false);
    expect(existsSync(`${backup}.tmp`)).toBe(false);
  });

  it('saves a verified snapshot through a follower endpoint with --token, holding every write acknowledged before it started', async () => {
    // Writes go on during the save: those acknowledged before it started must be in it.
    let writing = true;
    let saveStarted = false;
    let n = 0;
    const writer = (async () => {
      while (writing) {
        const key = `during-${n++}`;
        const index = await put(key, `w${n}`);
        if (!saveStarted) {
          ackedBeforeSave.set(key, `w${n}`);
          ackedIndexBeforeSave = Math.max(ackedIndexBeforeSave, index);
        }
        expected.set(key, `w${n}`);
      }
    })();
    while (ackedBeforeSave.size < 5) await new Promise((r) => setTimeout(r, 10));
    saveStarted = true;
    const result = await kvctl(['--endpoints', follower.url, '--token', ADMIN, 'snapshot', 'save', backup]);
    writing = false;
    await writer;

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(new RegExp(`^Snapshot saved to ${backup.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
    expect(result.stdout).toMatch(/^index {4}\d+$/m);
    expect(result.stdout).toMatch(/^sha256 {3}[0-9a-f]{64}$/m);
    expect(result.stdout).toMatch(/^verified OK \(\d+ chunks, \d+ content bytes; every checksum and the digest match\)$/m);
    expect(existsSync(`${backup}.tmp`)).toBe(false);

    const { index, map } = await contentOf(backup);
    expect(result.stdout).toContain(`index    ${index}\n`);
    expect(index).toBeGreaterThanOrEqual(ackedIndexBeforeSave);
    for (const [key, value] of ackedBeforeSave) expect({ key, value: map.get(key) }).toEqual({ key, value });
    for (const [key, value] of expected) {
      if (!key.startsWith('during-')) expect({ key, value: map.get(key) }).toEqual({ key, value });
    }
    // The file is exactly the map at its index: every key in it is one that was written, with its value then.
    for (const key of map.keys()) expect(expected.has(key)).toBe(true);
    // Writes acknowledged after the save are not expected in the restored cluster.
    for (const key of [...expected.keys()]) if (key.startsWith('during-') && !map.has(key)) expected.delete(key);
    for (const key of map.keys()) if (key.startsWith('during-')) expected.set(key, map.get(key));
  });

  it('refuses to replace an existing file unless --force (exit 2), and prints JSON with --json', async () => {
    const before = readFileSync(backup);
    const refused = await kvctl(['--endpoints', leader.url, '--token', ADMIN, 'snapshot', 'save', backup]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('already exists');
    expect(readFileSync(backup).equals(before)).toBe(true);

    const other = join(dir, 'again.snap');
    const forced = await kvctl(['--endpoints', leader.url, '--token', ADMIN, '--json', 'snapshot', 'save', other]);
    expect(forced.code).toBe(0);
    const again = await kvctl(['--endpoints', leader.url, '--token', ADMIN, '--json', 'snapshot', 'save', '--force', other]);
    expect(again.code).toBe(0);
    const report = JSON.parse(again.stdout);
    expect(report).toMatchObject({ file: other, verified: true, keys: expect.any(Number), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(report.index).toBeGreaterThanOrEqual(JSON.parse(forced.stdout).index);
  });
});

describe('kvctl snapshot status', () => {
  it('verifies a file and prints its metadata', async () => {
    const result = await kvctl(['snapshot', 'status', backup]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const { index } = await contentOf(backup);
    expect(result.stdout).toContain(`index    ${index}\n`);
    expect(result.stdout).toContain('verified OK');
    const json = JSON.parse((await kvctl(['--json', 'snapshot', 'status', backup])).stdout);
    expect(json).toMatchObject({ index, verified: true, members: expect.arrayContaining(source.nodes.map((n) => n.name)) });
  });

  it('refuses a damaged file (one byte flipped) with exit 1, naming the damage; restore refuses it too', async () => {
    const damaged = join(dir, 'damaged.snap');
    const bytes = readFileSync(backup);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    writeFileSync(damaged, bytes);
    const status = await kvctl(['snapshot', 'status', damaged]);
    expect(status).toMatchObject({ code: 1, stdout: '' });
    expect(status.stderr).toMatch(/^kvctl: snapshot file damaged: .*damaged\.snap at byte offset \d+: /);
    const target = join(dir, 'from-damaged');
    const restore = await kvctl(['snapshot', 'restore', damaged, '--wal-dir', target, '--node-id', 'node1']);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toContain('snapshot file damaged');
    expect(existsSync(target)).toBe(false);
  });
});

describe('kvctl snapshot restore, then a new cluster on the restored directories', () => {
  let members: Member[];

  beforeAll(async () => {
    // The source cluster is done with: its CPU goes to the new one.
    await source.stop();
    const ports = await freePorts(3);
    members = ports.map((port, i) => ({
      name: `node${i + 1}`,
      port,
      url: `http://127.0.0.1:${port}`,
      dir: join(dir, 'restored', `node${i + 1}`),
      bindHost: '127.0.0.1',
    }));
  });

  it('refuses a directory that is not empty (exit 2) and leaves it alone', async () => {
    const busy = join(dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'somebody-elses-data'), 'x');
    const result = await kvctl(['snapshot', 'restore', backup, '--wal-dir', busy, '--node-id', 'node1']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`refusing to restore into ${busy}: the directory is not empty (1 entries)`);
    expect(readdirSync(busy)).toEqual(['somebody-elses-data']);
  });

  it('restores the same file into three new directories (the new members are the ones the nodes start with)', async () => {
    const { index } = await contentOf(backup);
    for (const m of members) {
      const result = await kvctl(['snapshot', 'restore', backup, '--wal-dir', m.dir, '--node-id', m.name]);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).toMatch(new RegExp(`^Restored .* \\(index ${index}, term \\d+\\) into .* for ${m.name}\n`));
      expect(result.stdout).toContain(`into ${m.dir} for ${m.name}\n`);
      expect(result.stdout).toContain("the new cluster's members are the ones its nodes are started with");
      expect(readdirSync(join(m.dir, 'snap')).filter((f) => f.endsWith('.snap'))).toHaveLength(1);
    }
  });

  it('starts a new cluster on them: every key reads back exactly, deleted keys are gone, writes work', async () => {
    const envs = clusterEnvs(members, () => ({ LOG_LEVEL: 'info', HEARTBEAT_INTERVAL_MS: '50', ELECTION_TIMEOUT_MS: '500', REQUEST_TIMEOUT_MS: '3000' }));
    restored = members.map((m, i) => new ClusterNode(m.name, m.port, m.dir, envs[i]));
    for (const node of restored) node.start();
    const newLeader = await leaderOf(restored);
    const { index } = await contentOf(backup);
    // The nodes record the new members in a snapshot of their own at their first start (docs/operations.md).
    for (const node of restored) expect(node.logs()).toMatch(new RegExp(`snapshot taken at index ${index} `));
    const status = await newLeader.status();
    expect(status.commitIndex).toBeGreaterThanOrEqual(index);

    for (const [key, value] of expected) {
      const answer = await http('GET', `${newLeader.url}/kv/${encodeURIComponent(key)}`);
      if (value === undefined) expect({ key, status: answer.status }).toEqual({ key, status: 404 });
      else expect({ key, status: answer.status, value: answer.body?.value }).toEqual({ key, status: 200, value });
    }
    expect((await http('PUT', `${newLeader.url}/kv/after-restore`, { value: 'new' })).status).toBe(200);
    expect(await http('GET', `${newLeader.url}/kv/after-restore`)).toMatchObject({ status: 200, body: { value: 'new' } });
    expect(await http('PUT', `${newLeader.url}/kv/key-0`, { value: 'rewritten' })).toMatchObject({ status: 200 });
    // Every member has the data: a follower's own copy catches up.
    const other = restored.find((n) => n !== newLeader)!;
    for (let i = 0; i < 50; i++) {
      const answer = await http('GET', `${other.url}/kv/key-0?consistency=stale`);
      if (answer.body?.value === 'rewritten') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await http('GET', `${other.url}/kv/key-0?consistency=stale`)).toMatchObject({ status: 200, body: { value: 'rewritten' } });
    expect(await http('GET', `${other.url}/kv/big?consistency=stale`)).toMatchObject({ status: 200, body: { value: expected.get('big') } });
  });
});

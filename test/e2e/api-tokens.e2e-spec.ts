/**
 * Client authorization (API_TOKENS_FILE) on a real 3-node cluster: no token 401, a read token reads but
 * cannot write, a readwrite token writes, only an admin token reaches /cluster; kvctl with --token (or
 * KVCTL_TOKEN) works from a follower's endpoint, and without one it says why it failed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKvctl } from '../support/kvctl-process';
import { ClusterNode, http, LocalCluster } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(60_000);

const READ = 'reader-token-0123456789';
const WRITE = 'writer-token-0123456789';
const ADMIN = 'admin-token-01234567890';

const kvctl = (args: string[], env: NodeJS.ProcessEnv = {}) => runKvctl(args, { env });

let cluster: LocalCluster;
let leader: ClusterNode;
let follower: ClusterNode;
const dir = mkdtempSync(join(tmpdir(), 'raftkv-tokens-'));

beforeAll(async () => {
  const file = join(dir, 'tokens');
  writeFileSync(file, `# test tokens\n${READ} read\n${WRITE} readwrite\n${ADMIN} admin\n`);
  cluster = await LocalCluster.start({ nodes: 3, env: { API_TOKENS_FILE: file } });
  leader = await cluster.waitForLeader();
  follower = cluster.nodes.find((n) => n !== leader)!;
});

afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('API_TOKENS_FILE', () => {
  it('answers 401 without a token, and leaves /status open', async () => {
    const put = await http('PUT', `${leader.url}/kv/a`, { value: '1' });
    expect(put.status).toBe(401);
    expect(put.headers.get('www-authenticate')).toBe('Bearer realm="raft-kv"');
    expect((await http('GET', `${leader.url}/kv/a`)).status).toBe(401);
    expect((await http('GET', `${leader.url}/status`)).status).toBe(200);
  });

  it('lets each role do what it may, and answers 403 beyond it', async () => {
    expect((await http('PUT', `${leader.url}/kv/a`, { value: '1' }, auth(READ))).status).toBe(403);
    expect((await http('PUT', `${leader.url}/kv/a`, { value: '1' }, auth(WRITE))).status).toBe(200);
    expect((await http('GET', `${leader.url}/kv/a`, undefined, auth(READ))).body).toEqual(keyValue('a', '1'));
    expect((await http('GET', `${leader.url}/cluster/status`, undefined, auth(WRITE))).status).toBe(403);
    const cluster = await http('GET', `${leader.url}/cluster/status`, undefined, auth(ADMIN));
    expect(cluster.status).toBe(200);
    expect(cluster.body.nodes).toHaveLength(3);
  });

  it('kvctl writes and reads with --token or KVCTL_TOKEN through a follower, and says why without one', async () => {
    const put = await kvctl(['--endpoints', follower.url, '--token', WRITE, 'put', 'b', '2']);
    expect(put).toMatchObject({ code: 0 });
    const get = await kvctl(['--endpoints', follower.url, 'get', 'b'], { KVCTL_TOKEN: READ });
    expect(get).toMatchObject({ code: 0, stdout: '2\n' });
    const refused = await kvctl(['--endpoints', follower.url, 'put', 'c', '3']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/401: Missing or unknown API token/);
  });
});

/**
 * kvctl, the package's `bin`, run as a user runs it (a separate process, bin/kvctl.js on the production
 * build) against a real 3-node cluster: every command, text and --json output, finding the leader from
 * any endpoint, discovering the members, and the exit codes it documents.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runKvctl } from '../support/kvctl-process';
import { ClusterNode, eventually, freePorts, http, LocalCluster, sleep } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(120_000);

const ROOT = resolve(__dirname, '../..');
const kvctl = runKvctl;

let cluster: LocalCluster;
let leader: ClusterNode;
let followers: ClusterNode[];
let all: string;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3 });
  leader = await cluster.waitForLeader();
  followers = cluster.nodes.filter((n) => n !== leader);
  all = cluster.nodes.map((n) => n.url).join(',');
});

afterAll(async () => {
  await cluster?.stop();
});

describe('kvctl', () => {
  it('prints its usage: --help exits 0, no command exits 2; --version prints the package version', async () => {
    const [help, none, version] = await Promise.all([kvctl(['--help']), kvctl([]), kvctl(['--version'])]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    expect(help.code).toBe(0);
    for (const command of ['put [options] <key> [value]', 'get [options] <key>', 'delete|del [options] <key>', 'status']) expect(help.stdout).toContain(command);
    expect(help.stdout).toContain('--endpoints <urls>');
    expect(help.stdout).toContain('Exit codes');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: kvctl');
  });

  it('puts, gets and deletes through any endpoint, in text and JSON', async () => {
    expect(await kvctl(['--endpoints', all, 'put', 'username', 'alice'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^OK \(index \d+\)\n$/) });
    expect(await kvctl(['--endpoints', all, 'get', 'username'])).toMatchObject({ code: 0, stdout: 'alice\n' });
    const json = await kvctl(['--endpoints', all, '--json', 'get', 'username']);
    expect(JSON.parse(json.stdout)).toEqual(keyValue('username', 'alice'));
    const del = await kvctl(['--endpoints', all, '--json', 'delete', 'username']);
    expect(JSON.parse(del.stdout)).toEqual({ success: true, index: expect.any(Number), existed: true });
    expect(await kvctl(['--endpoints', all, 'del', 'username'])).toMatchObject({ code: 0, stdout: expect.stringContaining('the key did not exist') });
  });

  it('exits 3 with a clear message for a missing key', async () => {
    const result = await kvctl(['--endpoints', all, 'get', 'no-such-key']);
    expect(result).toMatchObject({ code: 3, stdout: '', stderr: 'kvctl: key not found: no-such-key\n' });
  });

  it('finds the leader itself when given only a follower, or a dead endpoint first', async () => {
    const [follower] = followers;
    const [closed] = await freePorts(1);
    const put = await kvctl(['--endpoints', `http://127.0.0.1:${closed},${follower.url}`, 'put', 'via-follower', 'v1']);
    expect(put).toMatchObject({ code: 0 });
    // The write really went through the leader: it is there at once, linearizably.
    expect(await http('GET', `${leader.url}/kv/via-follower`)).toMatchObject({ status: 200, body: { value: 'v1' } });
    expect(await kvctl(['--endpoints', follower.url, 'get', 'via-follower'])).toMatchObject({ code: 0, stdout: 'v1\n' });
  });

  it('reads a value from standard input, and keys with reserved characters', async () => {
    expect(await kvctl(['--endpoints', all, 'put', 'a/b c?'], { stdin: 'line 1\nline 2' })).toMatchObject({ code: 0 });
    const get = await kvctl(['--endpoints', all, '--json', 'get', 'a/b c?']);
    expect(get.code).toBe(0);
    expect(get.stdout.endsWith('}\n')).toBe(true);
    expect(JSON.parse(get.stdout)).toEqual(keyValue('a/b c?', 'line 1\nline 2'));
  });

  it('takes --endpoints from KVCTL_ENDPOINTS, and reads stale values from the first endpoint', async () => {
    const [follower] = followers;
    await eventually('the follower to apply', async () =>
      (await http('GET', `${follower.url}/kv/via-follower?consistency=stale`)).status === 200 ? true : undefined,
    );
    const stale = await kvctl(['get', '--stale', 'via-follower'], { env: { KVCTL_ENDPOINTS: follower.url } });
    expect(stale).toMatchObject({ code: 0, stdout: 'v1\n' });
  });

  it('shows every node in a table, from a single endpoint, with the README\'s columns', async () => {
    const result = await kvctl(['--endpoints', followers[1].url, 'status']);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const readmeHeader = /\$ npx kvctl status\n(.*)\n/.exec(readme)![1];
    expect(lines[0].split(/\s+/)).toEqual(readmeHeader.split(/\s+/));
    const rows = lines.slice(1).map((l) => l.split(/\s+/));
    expect(rows.map((r) => r[0])).toEqual(['node1', 'node2', 'node3']);
    expect(rows.filter((r) => r[2] === 'LEADER').map((r) => r[0])).toEqual([leader.name]);
    for (const row of rows) {
      expect(row[4]).toBe(leader.name); // LEADER column
      expect(row[5]).toMatch(/^\d+$/); // COMMIT
      expect(row[6]).toMatch(/^\d+$/); // APPLIED
    }
    const json = JSON.parse((await kvctl(['--endpoints', leader.url, '--json', 'status'])).stdout);
    expect(json.leader).toBe(leader.name);
    expect(json.nodes.map((n: { nodeId: string }) => n.nodeId)).toEqual(['node1', 'node2', 'node3']);
  });

  it('exits 2 for invalid arguments, its own or refused by the node', async () => {
    const [unknown, endpoint, timeout, longest, tooLong] = await Promise.all([
      kvctl(['--endpoints', all, 'frobnicate']),
      kvctl(['--endpoints', 'ftp://x', 'status']),
      kvctl(['--timeout', 'soon', 'status']),
      // Keys up to MAX_KEY_BYTES (1024) work, percent-encoded in the path; longer ones are refused by the node.
      kvctl(['--endpoints', all, 'put', 'é'.repeat(512), 'v']),
      kvctl(['--endpoints', all, 'put', 'k'.repeat(2000), 'v']),
    ]);
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'frobnicate'") });
    expect(endpoint).toMatchObject({ code: 2, stderr: expect.stringContaining('invalid endpoint') });
    expect(timeout).toMatchObject({ code: 2, stderr: expect.stringContaining('--timeout') });
    expect(longest).toMatchObject({ code: 0 });
    expect(tooLong).toMatchObject({ code: 2, stderr: expect.stringMatching(/^kvctl: refused by the node: .*1024/) });
  });

  it('exits 1 when no endpoint answers', async () => {
    const [closed] = await freePorts(1);
    const [result, status] = await Promise.all([
      kvctl(['--endpoints', `http://127.0.0.1:${closed}`, '--timeout', '1500', 'get', 'k']),
      kvctl(['--endpoints', `http://127.0.0.1:${closed}`, 'status']),
    ]);
    expect(result).toMatchObject({ code: 1, stderr: expect.stringMatching(/^kvctl: cannot reach the cluster within 1.5 s: .*connection refused/) });
    expect(status).toMatchObject({ code: 1, stderr: expect.stringContaining('cannot reach any node') });
  });

  it('without a majority: writes exit 1 (no leader), status lists the dead nodes and exits 1', async () => {
    await Promise.all(followers.map((f) => f.kill()));
    // Check-quorum: the lone leader steps down within an election timeout (500 ms here).
    await eventually('the survivor to lose its leader', async () => ((await leader.status()).leader === null ? true : undefined));
    const put = await kvctl(['--endpoints', all, '--timeout', '2000', 'put', 'k', 'v']);
    expect(put).toMatchObject({ code: 1, stderr: expect.stringContaining('no leader could take the request within 2 s') });
    expect(put.stderr).toContain('503 No leader');
    const status = await kvctl(['--endpoints', all, 'status']);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/UNREACHABLE/);
    expect(status.stdout).toContain('no leader');
    // Back to a majority: the same command succeeds, retrying through the election.
    for (const f of followers) f.start();
    await sleep(200);
    expect(await kvctl(['--endpoints', all, 'put', 'k', 'after'])).toMatchObject({ code: 0 });
  });
});

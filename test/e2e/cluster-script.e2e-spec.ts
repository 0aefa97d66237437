/**
 * `npm run cluster` itself, beyond what the README test walks through: five nodes with `--nodes 5`, the
 * banner (URLs, Swagger UI, metrics, a curl to paste, which works), one prefix per node, `ps`, refusals
 * with a reason (a second cluster on the same data, another cluster's data, ports in use, unknown nodes),
 * the supervisor's stdin closing, Ctrl-C stopping every node cleanly, and the peer token each run generates.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterScript, consecutiveFreePorts, sh } from '../support/cluster-script';
import { eventually, http } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(120_000);

let dir: string;
let cluster: ClusterScript;
let base: number;
const extra: ClusterScript[] = [];
/** The CLUSTER_TOKEN the 5-node run gave its nodes. */
let firstRunToken: string | undefined;

/** The CLUSTER_TOKEN in the environment of every node process a running cluster lists with `ps`. */
async function nodeTokens(script: ClusterScript): Promise<Array<string | undefined>> {
  const ps = await script.control('ps');
  const pids = ps.stdout
    .split('\n')
    .filter((l) => /^node\d+ /.test(l))
    .map((l) => Number(l.split(/\s+/)[2]));
  return pids.map((pid) =>
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .find((v) => v.startsWith('CLUSTER_TOKEN='))
      ?.slice('CLUSTER_TOKEN='.length),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'raftkv-cluster-script-'));
  base = await consecutiveFreePorts(5);
  // CLUSTER_TOKEN emptied: the script's own default, not this machine's.
  cluster = ClusterScript.start(['--nodes', '5', '--base-port', String(base), '--no-build'], join(dir, 'data'), { CLUSTER_TOKEN: '' });
  await cluster.waitFor(/cluster: ready; node\d is the leader \(term \d+\)/);
});

afterAll(async () => {
  await Promise.all([cluster, ...extra].map((c) => c?.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm run cluster -- --nodes 5', () => {
  it('prints every node with its URL, Swagger UI and metrics, and prefixes each node\'s lines', () => {
    const output = cluster.output();
    expect(output).toContain(`cluster: starting 5 nodes, data in ${join(dir, 'data')}`);
    for (let i = 1; i <= 5; i++) {
      const url = `http://localhost:${base + i - 1}`;
      expect(output).toMatch(new RegExp(`^  node${i}  ${url}\\s+Swagger UI ${url}/docs\\s+metrics ${url}/metrics$`, 'm'));
      expect(output).toMatch(new RegExp(`^node${i} \\| \\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  \\[Main\\] node${i} serving on 127\\.0\\.0\\.1:${base + i - 1}`, 'm'));
    }
    // Nest's start-up chatter is hidden without --verbose.
    expect(output).not.toContain('[InstanceLoader]');
  });

  it('prints ready-to-paste commands that work as printed', async () => {
    const ready = cluster.output().slice(cluster.output().indexOf('cluster: ready;'));
    const commands = ready
      .split('\n')
      .filter((l) => /^ {2}(curl|npx kvctl) /.test(l))
      .map((l) => l.trim());
    expect(commands.map((c) => c.split(' ')[0])).toEqual(['curl', 'curl', 'curl', 'npx']);
    const outputs = [];
    for (const command of commands) {
      const run = await sh(command, { ...process.env, KVCTL_ENDPOINTS: '' });
      expect({ command, code: run.code }).toEqual({ command, code: 0 });
      outputs.push(run.stdout);
    }
    expect(JSON.parse(outputs[0])).toEqual({ success: true, index: expect.any(Number), createIndex: expect.any(Number), modIndex: expect.any(Number) });
    expect(JSON.parse(outputs[1])).toEqual(keyValue('username', 'alice'));
    expect(JSON.parse(outputs[2])).toMatchObject({ isLeader: true, peers: expect.any(Array) });
    expect(JSON.parse(outputs[2]).peers).toHaveLength(4);
    const rows = outputs[3].trim().split('\n').slice(1);
    expect(rows.map((r) => r.split(/\s+/)[0])).toEqual(['node1', 'node2', 'node3', 'node4', 'node5']);
    expect(rows.filter((r) => r.split(/\s+/)[2] === 'LEADER')).toHaveLength(1);
  });

  it('lists its nodes with `ps`, and refuses unknown node names with exit code 2', async () => {
    const ps = await cluster.control('ps');
    expect(ps.code).toBe(0);
    const lines = ps.stdout.split('\n').filter((l) => /^(NAME|node\d) /.test(l));
    expect(lines[0].split(/\s+/)).toEqual(['NAME', 'URL', 'PID', 'STATE']);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[3])).toEqual(['running', 'running', 'running', 'running', 'running']);
    const unknown = await cluster.control('stop node6');
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toContain('no node named node6 (this cluster has node1, node2, node3, node4, node5)');
  });

  it('gives every node one CLUSTER_TOKEN generated for this run: a peer stream without it gets 401', async () => {
    expect(cluster.output()).toContain("peer traffic: a CLUSTER_TOKEN generated for this run, from the members' addresses only");
    const tokens = await nodeTokens(cluster);
    expect(tokens).toHaveLength(5);
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).toMatch(/^[A-Za-z0-9_-]{32}$/);
    firstRunToken = tokens[0];
    const headers = { 'content-type': 'application/x-raft-stream' };
    const anonymous = await http('POST', `http://127.0.0.1:${base}/raft/stream`, undefined, { raw: 'x', headers });
    expect(anonymous.status).toBe(401);
    // With the token, the request gets past the check (and is refused only for lacking a member's headers).
    const authorized = await http('POST', `http://127.0.0.1:${base}/raft/stream`, undefined, {
      raw: 'x',
      headers: { ...headers, authorization: `Bearer ${firstRunToken}` },
    });
    expect(authorized.status).toBe(409);
    expect(cluster.output()).not.toContain('CLUSTER_TOKEN is not set');
  });

  it('refuses to start a second cluster on the same data, or on its ports, saying why', async () => {
    const same = ClusterScript.start(['--nodes', '5', '--base-port', String(base), '--no-build'], join(dir, 'data'));
    const ports = ClusterScript.start(['--nodes', '3', '--base-port', String(base), '--no-build'], join(dir, 'other'));
    extra.push(same, ports);
    await Promise.all([same.waitForExit(), ports.waitForExit()]);
    expect(same.output()).toContain(`cluster: a cluster is already running with its data in ${join(dir, 'data')}`);
    expect(ports.output()).toContain(`cluster: ports ${base}, ${base + 1}, ${base + 2} already in use`);
  });

  it('without a control command to talk to, says so and exits 1', async () => {
    const run = await sh('npm run cluster -- ps', { ...process.env, CLUSTER_DATA_DIR: join(dir, 'nothing-here') });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`cluster: no cluster is running with its data in ${join(dir, 'nothing-here')}`);
  });

  it('Ctrl-C stops every node cleanly, and another node count on the same data is refused', async () => {
    cluster.interrupt();
    await cluster.waitForExit();
    const output = cluster.output();
    expect(output).toContain('cluster: SIGINT: stopping every node');
    expect(output).toContain('cluster: every node stopped cleanly');
    for (let i = 1; i <= 5; i++) expect(output).toMatch(new RegExp(`^node${i} \\| stopped$`, 'm'));
    // Nothing keeps listening.
    for (let i = 0; i < 5; i++) await expect(http('GET', `http://127.0.0.1:${base + i}/status`, undefined, { timeoutMs: 1000 })).rejects.toThrow();

    const three = ClusterScript.start(['--nodes', '3', '--base-port', String(base), '--no-build'], join(dir, 'data'));
    extra.push(three);
    await three.waitForExit();
    expect(three.output()).toMatch(/holds the data of another cluster \(node1's members: .*; asked for: .*\)\. .*--clean to delete it/);
  });

  it('stops its nodes when the program that started it goes away (its stdin closes)', async () => {
    const orphaned = ClusterScript.start(['--nodes', '1', '--base-port', String(base), '--no-build', '--clean'], join(dir, 'single'), {
      CLUSTER_TOKEN: '',
    });
    extra.push(orphaned);
    await orphaned.waitFor(/cluster: ready;/);
    // Another run, another token.
    const [token] = await nodeTokens(orphaned);
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(firstRunToken).toBeDefined();
    expect(token).not.toBe(firstRunToken);
    orphaned.child.stdin!.end();
    await orphaned.waitForExit();
    expect(orphaned.output()).toContain('standard input closed');
    expect(orphaned.output()).toMatch(/^node1 \| stopped$/m);
    await eventually('the port to be free', async () =>
      (await http('GET', `http://127.0.0.1:${base}/status`, undefined, { timeoutMs: 500 }).then(() => undefined, () => true)),
    );
  });
});

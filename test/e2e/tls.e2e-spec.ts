/**
 * TLS and mutual TLS between members, on real node processes: three nodes serving HTTPS with certificates of
 * one throwaway CA (made with openssl, as the README shows) and TLS_CA_FILE. Clients need no certificate:
 * curl (--cacert), Node's fetch (NODE_EXTRA_CA_CERTS, in a child process: it is read at start), axios (an
 * https.Agent with `ca`) and kvctl (--cacert) write and read through followers. Peers need one: a peer stream
 * without a certificate, or with one of another CA (from a member's own address), is refused 403 and logged;
 * a node with another CA's certificate cannot join; plain HTTP to the TLS port fails at once. And a node with
 * the cluster CA's certificate joins with JOIN (the join, its promotion and the status fan-out are HttpService
 * calls over TLS) and catches up from a snapshot sent over TLS (the log is compacted early here).
 */
import axios from 'axios';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeProcess } from '../../scripts/lib/node-process';
import { hasCommand } from '../support/has-command';
import { runKvctl } from '../support/kvctl-process';
import { eventually, freePorts } from '../support/local-cluster';
import { makeTestCa, TestCert } from '../support/tls-certs';
import { TlsCluster } from '../support/tls-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(120_000);

for (const command of ['openssl', 'curl']) {
  if (!hasCommand(command)) throw new Error(`tls.e2e needs ${command} (Debian package ${command})`);
}

/** A peer request from this process: `cert` is the client certificate it presents (none when undefined). */
function peerRequest(url: string, ca: Buffer, cert?: TestCert): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const request = httpsRequest(
      url,
      {
        method: url.endsWith('/raft/hello') ? 'GET' : 'POST',
        ca,
        ...(cert ? { cert: cert.cert, key: cert.key } : {}),
        agent: false,
        headers: { 'x-raft-from': 'node1', 'x-raft-cluster-id': 'whatever', 'content-type': 'application/x-raft-stream' },
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => ok({ status: response.statusCode ?? 0, body }));
      },
    );
    request.on('error', fail);
    request.end();
  });
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(file, args, { env, timeout: 30_000 }, (error, stdout, stderr) =>
      ok({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('a TLS cluster with mutual TLS between members', () => {
  let cluster: TlsCluster;
  let leader: NodeProcess;
  let followers: NodeProcess[];

  beforeAll(async () => {
    // Small snapshots and WAL segments: the log behind the first writes is gone by the time node4 joins.
    cluster = await TlsCluster.start({ nodes: 3, env: { SNAPSHOT_ENTRIES: '20', SNAPSHOT_CATCHUP_ENTRIES: '5', WAL_SEGMENT_BYTES: '4096' } });
    leader = await cluster.waitForLeader();
    followers = cluster.nodes.filter((n) => n !== leader);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('advertises https:// URLs and replicates over TLS', async () => {
    const status = await cluster.status(followers[0]);
    expect(status).toMatchObject({ url: followers[0].url, leaderUrl: leader.url });
    expect(status.url.startsWith('https://127.0.0.1:')).toBe(true);
  });

  it('curl --cacert: a write through a follower, then a linearizable read through the other', async () => {
    const put = await run('curl', ['-sS', '--cacert', cluster.ca.caFile, '-L', '-X', 'PUT', '-H', 'content-type: application/json',
      '-d', '{"value":"from-curl"}', `${followers[0].url}/kv/curl-key`]);
    expect(put).toMatchObject({ code: 0 });
    expect(JSON.parse(put.stdout)).toMatchObject({ success: true });
    const get = await run('curl', ['-sS', '--cacert', cluster.ca.caFile, '-L', `${followers[1].url}/kv/curl-key`]);
    expect(JSON.parse(get.stdout)).toEqual(keyValue('curl-key', 'from-curl'));
  });

  it("Node's fetch with NODE_EXTRA_CA_CERTS: a write and a linearizable read through followers", async () => {
    const script = `
      const [w, r] = process.argv.slice(1);
      (async () => {
        const put = await fetch(w + '/kv/fetch-key', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: 'from-fetch' }) });
        const get = await fetch(r + '/kv/fetch-key');
        console.log(JSON.stringify({ put: put.status, get: await get.json() }));
      })().catch((e) => { console.error(String(e.cause ?? e)); process.exit(1); });`;
    const result = await run(process.execPath, ['-e', script, followers[0].url, followers[1].url], {
      ...process.env,
      NODE_EXTRA_CA_CERTS: cluster.ca.caFile,
    });
    expect(result).toMatchObject({ code: 0 });
    expect(JSON.parse(result.stdout)).toEqual({ put: 200, get: keyValue('fetch-key', 'from-fetch') });
  });

  it('axios with an https.Agent trusting the CA: a write and a linearizable read through followers', async () => {
    const httpsAgent = new HttpsAgent({ ca: cluster.ca.ca });
    try {
      const put = await axios.put(`${followers[1].url}/kv/axios-key`, { value: 'from-axios' }, { httpsAgent, timeout: 10_000 });
      expect(put.data).toMatchObject({ success: true });
      const get = await axios.get(`${followers[0].url}/kv/axios-key`, { httpsAgent, timeout: 10_000 });
      expect(get.data).toEqual(keyValue('axios-key', 'from-axios'));
    } finally {
      httpsAgent.destroy();
    }
  });

  it('kvctl --cacert writes and reads; without it, a one-line TLS error and exit 1 at once', async () => {
    const endpoints = ['--endpoints', followers.map((f) => f.url).join(',')];
    expect(await runKvctl([...endpoints, '--cacert', cluster.ca.caFile, 'put', 'kvctl-key', 'from-kvctl'])).toMatchObject({ code: 0 });
    const get = await runKvctl([...endpoints, 'get', 'kvctl-key'], { env: { KVCTL_CACERT: cluster.ca.caFile } });
    expect(get).toMatchObject({ code: 0, stdout: 'from-kvctl\n' });

    const started = Date.now();
    const untrusted = await runKvctl([...endpoints, '--timeout', '20000', 'get', 'kvctl-key']);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr.trim().split('\n')).toEqual([expect.stringMatching(/TLS failure with https:\/\/127\.0\.0\.1:\d+: .*not signed by a CA kvctl trusts.*--cacert/)]);
    // Not retried until the budget ends: a certificate does not become trusted by waiting.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a peer stream (and the hello) without a client certificate is refused 403 and logged with the address', async () => {
    const stream = await peerRequest(`${followers[0].url}/raft/stream`, cluster.ca.ca);
    expect(stream.status).toBe(403);
    expect(JSON.parse(stream.body)).toEqual({ error: expect.stringContaining('no client certificate') });
    const hello = await peerRequest(`${followers[0].url}/raft/hello`, cluster.ca.ca);
    expect(hello.status).toBe(403);
    await eventually('the refusal in the log', async () =>
      followers[0].logs().includes('refused a peer request from 127.0.0.1 (claimed NODE_ID "node1"): peer routes need a client certificate') || undefined,
    );
    // A member's certificate is admitted on the same route.
    const withCert = await peerRequest(`${followers[0].url}/raft/hello`, cluster.ca.ca, cluster.certs.get('node2'));
    expect(withCert.status).toBe(200);
  });

  describe('a certificate signed by another CA', () => {
    let dir: string;
    let rogue: TestCert;
    let intruder: NodeProcess | undefined;

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'raftkv-tls-rogue-'));
      rogue = makeTestCa(dir, 'rogue-').issue('node4');
    });

    afterAll(async () => {
      await intruder?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    it("opens no peer stream, even from a member's address claiming a member's NODE_ID", async () => {
      const stream = await peerRequest(`${leader.url}/raft/stream`, cluster.ca.ca, rogue);
      expect(stream.status).toBe(403);
      expect(JSON.parse(stream.body).error).toMatch(/not signed by the cluster CA/);
    });

    it('cannot join the cluster (refused 403, the node exits 1), and the cluster keeps working', async () => {
      const [port] = await freePorts(1);
      intruder = new NodeProcess({
        name: 'node4',
        clientUrl: `https://127.0.0.1:${port}`,
        env: {
          NODE_ID: 'node4',
          HTTP_PORT: String(port),
          BIND_HOST: '127.0.0.1',
          ADVERTISE_URL: `https://127.0.0.1:${port}`,
          WAL_DIR: join(dir, 'node4'),
          JOIN: followers[0].url,
          TLS_CERT_FILE: rogue.certFile,
          TLS_KEY_FILE: rogue.keyFile,
          // It trusts the cluster's CA, so it can verify the members: what it lacks is their trust.
          TLS_CA_FILE: cluster.ca.caFile,
        },
      });
      intruder.start();
      const exit = await eventually('node4 to give up', async () => intruder!.lastExit, 60_000);
      expect(exit.code).toBe(1);
      expect(intruder.logs()).toMatch(/cannot start: cannot join the cluster .*403.*not signed by the cluster CA/);
      const members = await cluster.request('GET', `${leader.url}/cluster/members`);
      expect(members.body.members.map((m: { nodeId: string }) => m.nodeId).sort()).toEqual(['node1', 'node2', 'node3']);
      const put = await cluster.request('PUT', `${leader.url}/kv/after-intruder`, { value: 'still-serving' });
      expect(put).toMatchObject({ status: 200, body: { success: true } });
      for (const node of cluster.nodes) {
        await eventually(`${node.name} to apply the write`, async () => {
          const answer = await cluster.request('GET', `${node.url}/kv/after-intruder?consistency=stale`);
          return answer.status === 200 && answer.body.value === 'still-serving' ? true : undefined;
        });
      }
    });
  });

  it("joins a node with the cluster CA's certificate: a snapshot over TLS, promoted to voter, seen by the status fan-out", async () => {
    for (let i = 0; i < 120; i++) {
      expect((await cluster.request('PUT', `${leader.url}/kv/bulk-${i}`, { value: `v${i}` })).status).toBe(200);
    }
    await eventually('the leader to compact its log', async () => ((await cluster.status(leader)).firstLogIndex ?? 0) > 2 || undefined);
    const [port] = await freePorts(1);
    const cert = cluster.ca.issue('node4');
    const node4 = new NodeProcess({
      name: 'node4',
      clientUrl: `https://127.0.0.1:${port}`,
      env: {
        NODE_ID: 'node4',
        HTTP_PORT: String(port),
        BIND_HOST: '127.0.0.1',
        ADVERTISE_URL: `https://127.0.0.1:${port}`,
        WAL_DIR: join(cluster.root, 'node4'),
        JOIN: followers[0].url,
        TLS_CERT_FILE: cert.certFile,
        TLS_KEY_FILE: cert.keyFile,
        TLS_CA_FILE: cluster.ca.caFile,
        HEARTBEAT_INTERVAL_MS: '50',
        ELECTION_TIMEOUT_MS: '500',
      },
    });
    cluster.nodes.push(node4); // stopped with the cluster
    node4.start();
    await eventually(
      'node4 to be a voter',
      async () => {
        const members = await cluster.request('GET', `${leader.url}/cluster/members`);
        return members.body.members?.find((m: { nodeId: string; role: string }) => m.nodeId === 'node4' && m.role === 'voter');
      },
      60_000,
    );
    // The leader's log was compacted past node4's start: it got a snapshot, over TLS like everything else.
    expect(node4.logs()).toMatch(/received snapshot \d+ from node\d/);
    const read = await cluster.request('GET', `${node4.url}/kv/bulk-0?consistency=stale`);
    expect(read).toMatchObject({ status: 200, body: { value: 'v0' } });
    const view = await cluster.request('GET', `${followers[1].url}/cluster/status`);
    expect(view.body.nodes.map((n: { nodeId: string; reachable: boolean }) => [n.nodeId, n.reachable]).sort()).toEqual([
      ['node1', true],
      ['node2', true],
      ['node3', true],
      ['node4', true],
    ]);
  });

  it('plain HTTP to the TLS port fails at once, and the node keeps serving HTTPS', async () => {
    const started = Date.now();
    const plain = fetch(`${followers[0].url.replace('https:', 'http:')}/status`, { signal: AbortSignal.timeout(10_000) });
    await expect(plain).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await cluster.status(followers[0])).nodeId).toBe(followers[0].name);
  });
});

describe('a mutual-TLS cluster with PEER_PORT (peers on a port of their own, over TLS too)', () => {
  let cluster: TlsCluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
  });

  it('forms, replicates a write sent to a follower, and refuses a peer request without a certificate on PEER_PORT', async () => {
    cluster = await TlsCluster.start({ peerPorts: true });
    const leader = await cluster.waitForLeader();
    const follower = cluster.nodes.find((n) => n !== leader)!;
    const redirected = await cluster.request('PUT', `${follower.url}/kv/over-peer-port`, { value: 'tls' });
    expect(redirected.status).toBe(307);
    // Redirected to the leader's client port (https, HTTP_PORT), never to its peer port.
    expect(redirected.headers.get('location')).toBe(`${leader.url}/kv/over-peer-port`);
    expect((await cluster.request('PUT', redirected.headers.get('location')!, { value: 'tls' })).status).toBe(200);
    const read = await cluster.request('GET', `${follower.url}/kv/over-peer-port`);
    expect(read).toMatchObject({ status: 200, body: { key: 'over-peer-port', value: 'tls' } });
    const peerUrl = ((await cluster.status(follower)) as unknown as { peerUrl: string }).peerUrl;
    expect(peerUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(peerUrl).not.toBe(follower.url);
    const stream = await peerRequest(`${peerUrl}/raft/stream`, cluster.ca.ca);
    expect(stream.status).toBe(403);
    const withCert = await peerRequest(`${peerUrl}/raft/hello`, cluster.ca.ca, cluster.certs.get('node2'));
    expect(withCert.status).toBe(200);
  });
});

describe('a node started with half a TLS configuration', () => {
  it('stops with one line naming the missing variable (exit 1), serving nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-tls-half-'));
    try {
      const cert = makeTestCa(dir).issue('node1');
      const [port] = await freePorts(1);
      const node = new NodeProcess({
        name: 'node1',
        clientUrl: `https://127.0.0.1:${port}`,
        env: { NODE_ID: 'node1', HTTP_PORT: String(port), WAL_DIR: join(dir, 'data'), TLS_CERT_FILE: cert.certFile },
      });
      node.start();
      const exit = await eventually('the node to exit', async () => node.lastExit, 30_000);
      expect(exit.code).toBe(1);
      expect(node.logs().trim().split('\n')).toEqual([
        'kv-node: cannot start: TLS_CERT_FILE is set without TLS_KEY_FILE: give both (PEM files) or neither',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

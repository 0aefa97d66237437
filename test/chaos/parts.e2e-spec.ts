/**
 * The chaos harness's parts, each on its own: the nemesis's plans, the membership plumbing (exits, admin
 * redirects, client answers), the final-state checks, and the two networks (namespaces and proxies)
 * cutting and healing links between real processes. Seconds, no cluster.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { AddressInfo } from 'node:net';
import { createServer, RequestListener, Server } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HistoryOp } from '../linearizability/history';
import { Rng } from '../simulation/rng';
import { eventually, sleep } from '../support/local-cluster';
import { countCas, findDivergence, findLostWrites, possibleFinalValues } from './checks';
import { ClientPool, WORKLOAD_MIX } from './clients';
import { classifyExit } from './cluster';
import { ClusterNet, netnsSupported, openNet, sweepStaleNetworks } from './cluster-net';
import { run, runSync } from './exec';
import { adminRequest } from './membership';
import { HarnessFetch, makeChaosTls } from './tls';
import { applicableFaults, FAULT_KINDS, FaultCycle, parseFaults, planRound } from './nemesis';
import { CHAOS_SNAPSHOTS, countSnapshots, formatSnapshotCounts } from './snapshots';

jest.setTimeout(60_000);

describe('nemesis plans', () => {
  const reachable = (n: number, cuts: [number, number][], i: number) =>
    Array.from({ length: n }, (_, j) => j).filter((j) => j !== i && !cuts.some(([a, b]) => (a === i && b === j) || (a === j && b === i)));

  it('replays the same schedule for the same seed, whoever leads', () => {
    const kinds = parseFaults('all');
    const schedule = (rng: Rng, leader: (round: number) => number | undefined) => {
      const cycle = new FaultCycle(rng, kinds);
      return Array.from({ length: 200 }, (_, round) => planRound(rng, cycle.next(), kinds, 5, leader(round)).map((p) => p.kind));
    };
    expect(schedule(new Rng(42), () => undefined)).toEqual(schedule(new Rng(42), (round) => round % 5));
    expect(schedule(new Rng(42), () => undefined)).not.toEqual(schedule(new Rng(43), () => undefined));
  });

  it('has every kind in every cycle', () => {
    const cycle = new FaultCycle(new Rng(1), FAULT_KINDS);
    for (let c = 0; c < 20; c++) {
      expect(new Set(Array.from({ length: FAULT_KINDS.length }, () => cycle.next()))).toEqual(new Set(FAULT_KINDS));
    }
  });

  it('makes every fault kind, and targets the leader most often', () => {
    const rng = new Rng(7);
    const cycle = new FaultCycle(rng, FAULT_KINDS);
    const seen: Record<string, number> = {};
    for (let round = 0; round < 2000; round++) {
      // The first plan is the round's fault; a second one (random target) only accompanies partitions.
      const [p] = planRound(rng, cycle.next(), FAULT_KINDS, 5, 2);
      seen[`${p.kind}:${p.target}`] = (seen[`${p.kind}:${p.target}`] ?? 0) + 1;
    }
    for (const kind of FAULT_KINDS) expect(Object.keys(seen).some((k) => k.startsWith(`${kind}:`))).toBe(true);
    expect(seen['kill:leader']).toBeGreaterThan(seen['kill:random']);
    expect(seen['pause:leader']).toBeGreaterThan(seen['pause:random']);
    expect(seen['kill:all']).toBeGreaterThan(0);
  });

  it.each([3, 5, 7])('shapes partitions right for %i nodes', (n) => {
    const rng = new Rng(n);
    const majority = Math.floor(n / 2) + 1;
    for (let round = 0; round < 300; round++) {
      const kinds = applicableFaults(FAULT_KINDS, n);
      for (const p of planRound(rng, rng.pick(kinds), kinds, n, round % n)) {
        const degree = Array.from({ length: n }, (_, i) => reachable(n, p.cuts, i).length + 1);
        if (p.kind === 'isolate') {
          expect(p.nodes).toEqual([round % n]);
          expect(degree[round % n]).toBe(1);
        }
        if (p.kind === 'split') {
          expect(p.nodes.length).toBe(n - majority);
          for (const i of p.nodes) expect(degree[i]).toBe(n - majority);
        }
        if (p.kind === 'bridge') {
          // The bridge node sees everyone; the halves see only themselves and it (a majority each, for 5).
          expect(degree[p.nodes[0]]).toBe(n);
          expect(p.cuts.length).toBeGreaterThan(0);
          for (const d of degree) expect(d).toBeGreaterThanOrEqual(Math.ceil(n / 2));
        }
        if (p.kind === 'ring') {
          // Everyone sees a majority, but the majorities differ: no node sees all.
          for (const d of degree) expect(d).toBeGreaterThanOrEqual(majority);
          for (const d of degree) expect(d).toBeLessThan(n);
        }
      }
    }
  });

  it('leaves out the ring on 3 nodes and membership below 3, and refuses unknown faults', () => {
    expect(applicableFaults(FAULT_KINDS, 3)).not.toContain('ring');
    expect(applicableFaults(FAULT_KINDS, 3)).toContain('membership');
    expect(applicableFaults(FAULT_KINDS, 2)).not.toContain('membership');
    expect(parseFaults('kill,partition')).toEqual(['kill', 'isolate', 'split', 'bridge', 'ring']);
    expect(parseFaults('all')).toContain('membership');
    expect(parseFaults('membership,pause')).toEqual(['pause', 'membership']);
    expect(() => parseFaults('kill,meteor')).toThrow(/unknown fault 'meteor'/);
  });

  it.each([3, 5])('takes one member out per membership round, the leader half the time, with a partition half the time (%i nodes)', (n) => {
    const rng = new Rng(n * 11);
    const kinds = applicableFaults(FAULT_KINDS, n);
    const seen: Record<string, number> = {};
    for (let round = 0; round < 400; round++) {
      const leader = round % 7 === 0 ? undefined : round % n;
      const [change, ...others] = planRound(rng, 'membership', kinds, n, leader);
      expect(change.nodes).toHaveLength(1);
      expect(change.cuts).toEqual([]);
      if (change.target === 'leader') expect(change.nodes).toEqual([leader]);
      else expect(change.nodes).not.toEqual([leader]);
      expect(change.target).toEqual(leader === undefined ? 'random' : expect.stringMatching(/^(leader|follower)$/));
      // At most one more fault, and only a partition: never a second node down while one is out.
      expect(others.length).toBeLessThanOrEqual(1);
      for (const p of others) expect(['isolate', 'split', 'bridge', 'ring']).toContain(p.kind);
      if (n < 5) expect(others.map((p) => p.kind)).not.toContain('ring');
      seen[change.target] = (seen[change.target] ?? 0) + 1;
      seen[others.length > 0 ? 'with partition' : 'alone'] = (seen[others.length > 0 ? 'with partition' : 'alone'] ?? 0) + 1;
    }
    for (const k of ['leader', 'follower', 'with partition', 'alone']) expect(seen[k]).toBeGreaterThan(100);
    // Without partition kinds enabled, a membership change comes alone.
    expect(planRound(rng, 'membership', ['kill', 'membership'], n, 0)).toHaveLength(1);
  });
});

describe('membership plumbing', () => {
  it('tells a removed node\'s exit and a refused join from a crash', () => {
    const refused = 'node2: cannot start: cannot join the cluster of http://10.1.1.1:7000 (JOIN): join refused by http://10.1.1.1:7000: HTTP 409: another membership change is in progress';
    const clean = { code: 0, signal: null };
    const failed = { code: 1, signal: null };
    expect(classifyExit('removing', clean, 'node2: removed from the cluster; exiting')).toEqual({ kind: 'removed' });
    expect(classifyExit('joining', failed, `...\n${refused}\n`)).toEqual({ kind: 'join refused', reason: expect.stringMatching(/^cannot join the cluster of .* 409: another membership change/) });
    // The same ends in another phase, or another end in these phases, are crashes.
    expect(classifyExit('member', clean, '')).toEqual({ kind: 'crash' });
    expect(classifyExit('joining', clean, refused)).toEqual({ kind: 'crash' });
    expect(classifyExit('member', failed, refused)).toEqual({ kind: 'crash' });
    expect(classifyExit('joining', failed, 'node2: failed to start: TypeError: x is undefined')).toEqual({ kind: 'crash' });
    expect(classifyExit('removing', { code: null, signal: 'SIGSEGV' }, '')).toEqual({ kind: 'crash' });
    expect(classifyExit('removing', failed, '')).toEqual({ kind: 'crash' });
  });

  it('follows 307 to the leader at its client URL, sending the token at every hop', async () => {
    const seen: string[] = [];
    const servers = await Promise.all(
      [0, 1].map(
        (i) =>
          new Promise<Server>((ready) => {
            const server = createServer((req, res) => {
              seen.push(`${i} ${req.method} ${req.url} ${req.headers.authorization}`);
              if (i === 0) {
                // A follower names the leader by its advertised URL, which is not where the harness reaches it.
                res.writeHead(307, { location: `http://advertised-leader.invalid:7000${req.url}` }).end('{"error":"Not leader"}');
              } else if (req.url === '/nowhere') {
                res.writeHead(307, { location: '/nowhere' }).end();
              } else {
                res.writeHead(200, { 'content-type': 'application/json' }).end('{"index":7}');
              }
            });
            server.listen(0, '127.0.0.1', () => ready(server));
          }),
      ),
    );
    try {
      const port = (i: number) => (servers[i].address() as AddressInfo).port;
      const endpoints = [0, 1].map((i) => ({
        name: `node${i + 1}`,
        bindHost: '127.0.0.1',
        httpPort: port(i),
        url: i === 1 ? 'http://advertised-leader.invalid:7000' : `http://127.0.0.1:${port(i)}`,
        clientUrl: `http://127.0.0.1:${port(i)}`,
      }));
      const cluster = { token: 't0ken', options: { net: { endpoints } } };
      expect(await adminRequest(cluster, 0, 'DELETE', '/cluster/members/node3', 2000)).toEqual({ status: 200, body: { index: 7 }, url: `${endpoints[1].clientUrl}/cluster/members/node3` });
      expect(seen).toEqual(['0 DELETE /cluster/members/node3 Bearer t0ken', '1 DELETE /cluster/members/node3 Bearer t0ken']);
      // A Location that is no absolute URL (a leader whose address the node does not know) is no answer.
      expect(await adminRequest(cluster, 1, 'GET', '/nowhere', 2000)).toEqual({ error: expect.stringContaining('307 to "/nowhere"') });
    } finally {
      for (const server of servers) server.close();
    }
  });
});

/** A stand-in node on a loopback port that answers with `handler`. */
async function scriptedNode(handler: RequestListener): Promise<{ server: Server; url: string }> {
  const server = await new Promise<Server>((ready) => {
    const s = createServer(handler);
    s.listen(0, '127.0.0.1', () => ready(s));
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** One chaos client on key `k` against `url`, recording its operations into `recorded`. */
function onePool(url: string, recorded: HistoryOp[], extra: Partial<ConstructorParameters<typeof ClientPool>[0]> = {}): ClientPool {
  return new ClientPool({
    clients: 1,
    keys: ['k'],
    endpoints: [{ name: 'node1', bindHost: '127.0.0.1', httpPort: 0, url, clientUrl: url }],
    timeoutMs: [2000, 2000],
    rng: new Rng(1),
    now: () => 0,
    record: (op) => recorded.push(op),
    ...extra,
  });
}

describe('client answers around membership changes', () => {
  it('counts a removed node\'s 410 as failed, and a redirect to nowhere as an answer the API does not allow', async () => {
    const answers: Record<string, [number, Record<string, string>, string]> = {
      '/kv/gone': [410, {}, '{"error":"Removed from the cluster","outcome":"failed"}'],
      '/kv/nowhere': [307, { location: '/kv/nowhere' }, '{"error":"Not leader","leader":"node1","leaderUrl":""}'],
    };
    const { server, url } = await scriptedNode((req, res) => {
      const [status, headers, body] = answers[req.url!];
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
    });
    try {
      const recorded: HistoryOp[] = [];
      const pool = onePool(url, recorded);
      expect(await pool.read('t', 'gone', 0)).toMatchObject({ outcome: 'fail' });
      expect(pool.unexpected).toEqual([]);
      expect(await pool.read('t', 'nowhere', 0)).toMatchObject({ outcome: 'fail' });
      expect(pool.unexpected).toEqual([expect.objectContaining({ status: 307 })]);
      expect(recorded).toHaveLength(2);
    } finally {
      server.close();
    }
  });
});

describe('the cas workload\'s client', () => {
  it('reads, then writes with If-Match of the version read (If-None-Match: * when absent), recorded as cas(value read -> new)', async () => {
    // The key alternates between holding "a" at modIndex 7 and being absent; a PUT with If-Match "7" swaps,
    // one with If-None-Match: * finds the key there (412).
    let reads = 0;
    const puts: Record<string, string | undefined>[] = [];
    const { server, url } = await scriptedNode((req, res) => {
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.method === 'GET') return reads++ % 2 === 0 ? json(200, { key: 'k', value: 'a', createIndex: 3, modIndex: 7 }) : json(404, { error: 'Key not found', key: 'k' });
      puts.push({ ifMatch: req.headers['if-match'], ifNoneMatch: req.headers['if-none-match'] });
      req.resume().on('end', () =>
        req.headers['if-match'] === '"7"'
          ? json(200, { success: true, index: 12, createIndex: 3, modIndex: 12 })
          : json(412, { error: 'Precondition failed', key: 'k', modIndex: 7, outcome: 'failed' }),
      );
    });
    try {
      const recorded: HistoryOp[] = [];
      const pool = onePool(url, recorded, { mix: { get: 0, put: 0, delete: 0, cas: 1 }, thinkMs: [0, 0] });
      pool.start();
      await eventually('two compare-and-sets', async () => (recorded.length >= 4 ? true : undefined), 5000);
      await pool.stop();
      expect(pool.unexpected).toEqual([]);
      const pairs = recorded.slice(0, 4).map(({ op, expected, value, outcome, result }) => ({ op, expected, value, outcome, result }));
      expect(pairs).toEqual([
        { op: 'get', outcome: 'ok', result: { found: true, value: 'a' } },
        { op: 'cas', expected: 'a', value: expect.stringMatching(/^c1-/), outcome: 'ok', result: { swapped: true } },
        { op: 'get', outcome: 'ok', result: { found: false } },
        { op: 'cas', expected: null, value: expect.stringMatching(/^c1-/), outcome: 'ok', result: { swapped: false } },
      ]);
      expect(puts.slice(0, 2)).toEqual([{ ifMatch: '"7"' }, { ifNoneMatch: '*' }]);
      expect(countCas(recorded.slice(0, 4))).toEqual({ swapped: 1, notSwapped: 1, fail: 0, unknown: 0 });
    } finally {
      server.close();
    }
  });

  it('mixes compare-and-sets with reads, writes and deletes; the register workload has none', () => {
    expect(WORKLOAD_MIX.cas).toMatchObject({ cas: expect.any(Number), get: expect.any(Number), put: expect.any(Number), delete: expect.any(Number) });
    expect(WORKLOAD_MIX.register.cas ?? 0).toBe(0);
  });
});

describe('snapshot counts', () => {
  it('counts snapshots taken, installed and restored, compactions and segments from the logs of every incarnation', () => {
    const root = mkdtempSync(join(tmpdir(), 'raftkv-chaos-parts-'));
    try {
      // Lines as the node writes them (libs/consensus snapshotter.ts and raft-node.ts, libs/storage wal.ts).
      const log = [
        '----- 2026-12-01T00:00:00.000Z harness: start #1 -----',
        '[node2] 1  - 12/01/2026, 0:00:01 AM     LOG [Raft] node2: snapshot taken at index 50 (term 1) in 0.010 s',
        `[node2] 1  - 12/01/2026, 0:00:01 AM     LOG [Wal] compacted ${root}/data/node2 up to entry 40: deleted 2 segment(s); the log now holds [41, 60]`,
        '----- 2026-12-01T00:00:05.000Z harness: start #2 -----',
        '[node2] 2  - 12/01/2026, 0:00:06 AM     LOG [Raft] node2 starting at term 3 with commit 50, last index 60, state restored from the snapshot at 50; members: a, b, c',
        "[node2] 2  - 12/01/2026, 0:00:07 AM     LOG [Raft] node2: installed the leader's snapshot at index 180 (term 3) in 0.004 s",
        `[node2] 2  - 12/01/2026, 0:00:07 AM     LOG [Wal] compacted ${root}/data/node2 up to entry 180: deleted 5 segment(s); the log now holds [181, 181]`,
      ].join('\n');
      writeFileSync(join(root, 'node2.log'), log + '\n');
      mkdirSync(join(root, 'data', 'node2', 'snap'), { recursive: true });
      for (const name of ['0000000000000009-00000000000000b5.wal', 'LOCK', 'meta.json']) writeFileSync(join(root, 'data', 'node2', name), '');
      const counts = countSnapshots(CHAOS_SNAPSHOTS, [
        { name: 'node1', logPath: join(root, 'node1.log'), dir: join(root, 'data', 'node1') },
        { name: 'node2', logPath: join(root, 'node2.log'), dir: join(root, 'data', 'node2') },
      ]);
      expect(counts).toMatchObject({ taken: 1, installed: 1, restored: 1, compactions: 2 });
      expect(counts.byNode).toEqual({
        node1: { taken: 0, installed: 0, restored: 0, compactions: 0, segmentsDeleted: 0 },
        node2: { taken: 1, installed: 1, restored: 1, compactions: 2, segmentsDeleted: 7, segmentsAtEnd: 1 },
      });
      expect(formatSnapshotCounts(counts)).toMatch(/^taken 1, installed 1, restored at start 1, compactions 2 \(SNAPSHOT_ENTRIES 50, .*node1 0\/0\/0\/0, node2 1\/1\/1\/2\/1$/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('final-state checks', () => {
  let id = 0;
  const op = (o: Partial<HistoryOp> & Pick<HistoryOp, 'op' | 'start' | 'outcome'>): HistoryOp => ({ id: ++id, client: 'c', key: 'k', end: o.start + 1, ...o });

  it('accepts the last acknowledged write, or any write of unknown outcome', () => {
    const h = [
      op({ op: 'put', value: 'a', start: 0, outcome: 'ok' }),
      op({ op: 'put', value: 'b', start: 10, outcome: 'ok' }),
      op({ op: 'put', value: 'c', start: 5, end: 20, outcome: 'unknown' }),
      op({ op: 'put', value: 'd', start: 30, outcome: 'fail' }),
    ];
    expect(possibleFinalValues(h, 'k').values).toEqual(new Set(['b', 'c']));
    expect(findLostWrites(h, new Map([['k', 'b']]))).toEqual([]);
    expect(findLostWrites(h, new Map([['k', 'c']]))).toEqual([]);
  });

  it('reports an overwritten, a failed or a vanished value as a lost write', () => {
    const h = [
      op({ op: 'put', value: 'a', start: 0, outcome: 'ok' }),
      op({ op: 'delete', start: 10, outcome: 'ok', result: { found: true } }),
      op({ op: 'put', value: 'x', start: 20, outcome: 'fail' }),
    ];
    for (const final of ['a', 'x', 'never']) {
      const [lost] = findLostWrites(h, new Map([['k', final]]));
      expect(lost).toMatchObject({ key: 'k', final });
      expect(lost.expected.map((w) => w.op)).toEqual(['delete']);
    }
    expect(findLostWrites(h, new Map([['k', null]]))).toEqual([]);
    expect(findLostWrites([], new Map([['k', null]]))).toEqual([]);
  });

  it('reports a fresh key that lost its acknowledged write, or holds a failed one', () => {
    const acked = op({ key: 'f-1', op: 'put', value: 'v1', start: 0, outcome: 'ok' });
    const failed = op({ key: 'f-2', op: 'put', value: 'v2', start: 0, outcome: 'fail' });
    const unknown = op({ key: 'f-3', op: 'put', value: 'v3', start: 0, outcome: 'unknown' });
    const h = [acked, failed, unknown];
    const fine = new Map<string, string | null>([['f-1', 'v1'], ['f-2', null], ['f-3', null]]);
    expect(findLostWrites(h, fine)).toEqual([]);
    expect(findLostWrites(h, new Map([...fine, ['f-3', 'v3']]))).toEqual([]);
    expect(findLostWrites(h, new Map([...fine, ['f-1', null]]))).toEqual([{ key: 'f-1', final: null, expected: [acked], writer: undefined }]);
    expect(findLostWrites(h, new Map([...fine, ['f-2', 'v2']]))).toEqual([{ key: 'f-2', final: 'v2', expected: [], writer: failed }]);
  });

  it('counts a compare-and-set that swapped as a write, one that did not as none, an unknown one as possible', () => {
    const h = [
      op({ op: 'put', value: 'a', start: 0, outcome: 'ok' }),
      op({ op: 'cas', expected: 'a', value: 'b', start: 10, outcome: 'ok', result: { swapped: true } }),
      op({ op: 'cas', expected: 'a', value: 'x', start: 20, outcome: 'ok', result: { swapped: false } }),
      op({ op: 'cas', expected: 'b', value: 'c', start: 30, outcome: 'unknown' }),
    ];
    expect(possibleFinalValues(h, 'k').values).toEqual(new Set(['b', 'c']));
    const [lost] = findLostWrites(h, new Map([['k', 'x']]));
    expect(lost).toMatchObject({ final: 'x', writer: h[2], expected: [h[1]] });
  });

  it('counts concurrent acknowledged writes as possible winners', () => {
    const h = [
      op({ op: 'put', value: 'a', start: 0, end: 10, outcome: 'ok' }),
      op({ op: 'put', value: 'b', start: 5, end: 15, outcome: 'ok' }),
    ];
    expect(possibleFinalValues(h, 'k').values).toEqual(new Set(['a', 'b']));
  });

  it('finds replicas that differ', () => {
    const same = new Map([['k1', 'a']]);
    const other = new Map<string, string | null>([['k1', null]]);
    expect(findDivergence({ n1: same, n2: same }, ['k1'])).toEqual([]);
    expect(findDivergence({ n1: same, n2: other }, ['k1'])).toEqual([{ key: 'k1', values: { n1: 'a', n2: null } }]);
  });
});

/**
 * Which links between the probe servers work right now: each server is asked to send a peer request (with
 * the `x-raft-from` header carrying its NODE_ID, as the nodes' transport does) to each other one.
 */
async function linkMatrix(net: ClusterNet, get: HarnessFetch = fetch): Promise<string[]> {
  const n = net.endpoints.length;
  const links: [number, number][] = [];
  for (let from = 0; from < n; from++) for (let to = 0; to < n; to++) if (from !== to) links.push([from, to]);
  const works = await Promise.all(links.map(([from, to]) => probe(net, from, to, get)));
  return links.filter((_, i) => works[i]).map(([from, to]) => `${from + 1}>${to + 1}`);
}

/** Asks server `from` to request server `to` (as a peer would); resolves whether an answer came back. */
async function probe(net: ClusterNet, from: number, to: number, get: HarnessFetch = fetch): Promise<boolean> {
  const target = encodeURIComponent(net.endpoints[to].url);
  const r = await get(`${net.endpoints[from].clientUrl}/probe?to=${target}`, { signal: AbortSignal.timeout(10_000) });
  return (await r.text()) === 'ok';
}

const PEER_SERVER = `
const http = require('node:http');
const [host, port, self] = process.argv.slice(1);
http.createServer(async (req, res) => {
  if (req.url.startsWith('/probe')) {
    const to = new URL(req.url, 'http://x').searchParams.get('to');
    try {
      const r = await fetch(to + '/raft/messages', { method: 'POST', headers: { 'x-raft-from': self }, body: 'x', signal: AbortSignal.timeout(2000) });
      res.end(r.status === 204 ? 'ok' : 'status ' + r.status);
    } catch (e) { res.end('error ' + e.name); }
    return;
  }
  res.statusCode = 204;
  res.end();
}).listen(Number(port), host);
`;

async function startServers(net: ClusterNet): Promise<ChildProcess[]> {
  const servers = net.endpoints.map((e, i) => {
    const { file, args } = net.wrap(i, [process.execPath, '-e', PEER_SERVER, e.bindHost, String(e.httpPort), e.name]);
    return spawn(file, args, { stdio: 'ignore' });
  });
  await eventually('the probe servers', async () => {
    for (let i = 0; i < net.endpoints.length; i++) await fetch(`${net.endpoints[i].clientUrl}/health`, { signal: AbortSignal.timeout(500) });
    return true;
  });
  return servers;
}

describe.each(['proxy', 'netns'] as const)('the %s network', (kind) => {
  const skip = kind === 'netns' && !netnsSupported().ok;
  let net: ClusterNet;
  let servers: ChildProcess[] = [];

  beforeAll(async () => {
    if (skip) return;
    net = await openNet(kind, 3);
    servers = await startServers(net);
    await linkMatrix(net); // warm up: a process's first fetch is slow on a busy machine
  });

  afterAll(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await sleep(100);
    await net?.close();
  });

  (skip ? it.skip : it)('connects everyone, cuts exactly the links asked for, and heals them', async () => {
    const all = ['1>2', '1>3', '2>1', '2>3', '3>1', '3>2'];
    expect(await linkMatrix(net)).toEqual(all);
    await net.setCuts([[0, 1]]);
    expect(await linkMatrix(net)).toEqual(['1>3', '2>3', '3>1', '3>2']);
    await net.setCuts([[0, 2], [1, 2]]);
    expect(await linkMatrix(net)).toEqual(['1>2', '2>1']);
    await net.setCuts([]);
    expect(await linkMatrix(net)).toEqual(all);
    // Every probe connection was told apart by its sender's NODE_ID, and the cuts stopped some traffic
    // (undefined: blackhole routes, which count nothing).
    expect(net.problems()).toEqual([]);
    expect(net.cutTraffic()).not.toEqual(expect.objectContaining({ count: 0 }));
  });

  (skip ? it.skip : it)('reports peer connections whose sender it cannot tell apart (no cut could apply to them)', async () => {
    // A sender named by its URL, as peers once were: the proxies know nodes by NODE_ID only.
    const sender = net.endpoints[0].url;
    const r = await fetch(`${net.endpoints[1].url}/raft/messages`, { method: 'POST', headers: { 'x-raft-from': sender }, body: 'x' });
    expect(r.status).toBe(204);
    expect(net.problems()).toEqual(kind === 'proxy' ? [expect.stringContaining(`x-raft-from: ${sender}`)] : []);
  });
});

/**
 * PEER_SERVER over HTTPS, and without `x-raft-from`: the proxies must tell senders apart by the process that
 * owns the connection. NODE_EXTRA_CA_CERTS makes its fetch trust the run's CA.
 */
const TLS_PEER_SERVER = `
const https = require('node:https');
const fs = require('node:fs');
const [host, port, cert, key] = process.argv.slice(1);
https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, async (req, res) => {
  if (req.url.startsWith('/probe')) {
    const to = new URL(req.url, 'https://x').searchParams.get('to');
    try {
      const r = await fetch(to + '/raft/messages', { method: 'POST', body: 'x', signal: AbortSignal.timeout(2000) });
      res.end(r.status === 204 ? 'ok' : 'status ' + r.status);
    } catch (e) { res.end('error ' + e.name + ' ' + (e.cause && e.cause.code)); }
    return;
  }
  res.statusCode = 204;
  res.end();
}).listen(Number(port), host);
`;

describe('the proxy network over TLS', () => {
  it('tells senders apart by the process owning the connection, cuts exactly the links asked for, and heals them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-chaos-tls-parts-'));
    const net = await openNet('proxy', 3, undefined, { tls: true });
    const tls = makeChaosTls(dir, net.endpoints);
    const servers = net.endpoints.map((e, i) => {
      const env = tls.env(i);
      return spawn(process.execPath, ['-e', TLS_PEER_SERVER, e.bindHost, String(e.httpPort), env.TLS_CERT_FILE, env.TLS_KEY_FILE], {
        stdio: 'ignore',
        env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caFile },
      });
    });
    net.trackProcesses!(() => servers.map((s) => s.pid));
    try {
      expect(net.endpoints.map((e) => new URL(e.url).protocol)).toEqual(['https:', 'https:', 'https:']);
      await eventually('the TLS probe servers', async () => {
        for (const e of net.endpoints) await tls.fetch(`${e.clientUrl}/health`, { signal: AbortSignal.timeout(500) });
        return true;
      });
      const all = ['1>2', '1>3', '2>1', '2>3', '3>1', '3>2'];
      expect(await linkMatrix(net, tls.fetch)).toEqual(all);
      await net.setCuts([[0, 1]]);
      expect(await linkMatrix(net, tls.fetch)).toEqual(['1>3', '2>3', '3>1', '3>2']);
      await net.setCuts([[0, 2], [1, 2]]);
      expect(await linkMatrix(net, tls.fetch)).toEqual(['1>2', '2>1']);
      // A connection from no node's process (this one's, as the harness's own) belongs to no link: never cut.
      const own = await tls.fetch(`${net.endpoints[2].url}/raft/messages`, { method: 'POST', body: 'x', signal: AbortSignal.timeout(2000) });
      expect(own.status).toBe(204);
      await net.setCuts([]);
      expect(await linkMatrix(net, tls.fetch)).toEqual(all);
      expect(net.problems()).toEqual([]);
      expect(net.cutTraffic()).not.toEqual(expect.objectContaining({ count: 0 }));
    } finally {
      for (const s of servers) s.kill('SIGKILL');
      await sleep(100);
      await net.close();
      await tls.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

(netnsSupported().ok ? describe : describe.skip)('network namespace cleanup', () => {
  it('removes everything at close, and sweeps what a dead run left behind', async () => {
    const net = await openNet('netns', 2);
    const tag = net.describe().match(/bridge (rkc-[0-9a-z]+-[0-9a-z]+)b/)![1];
    await net.close();
    expect(runSync('ip', ['netns', 'list'])).not.toContain(tag);
    expect(runSync('ip', ['-o', 'link', 'show'])).not.toContain(tag);

    // A run whose process is gone (pid 0x7ffffffe does not exist) left a namespace and a bridge.
    const dead = `rkc-${(0x7ffffffe).toString(36)}-0`;
    await run('ip', ['netns', 'add', `${dead}-n1`]);
    await run('ip', ['link', 'add', `${dead}b`, 'type', 'bridge']);
    expect(sweepStaleNetworks()).toContain(dead);
    expect(runSync('ip', ['netns', 'list'])).not.toContain(dead);
    expect(runSync('ip', ['-o', 'link', 'show'])).not.toContain(dead);
  });
});

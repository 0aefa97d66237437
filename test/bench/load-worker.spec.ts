import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { LoadResult, mergeResults, runLoad } from './load-worker';

function part(latencies: number[], wallSeconds: number, extra: Partial<LoadResult> = {}): LoadResult {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    ops: sorted.length,
    errors: 0,
    opsPerSec: sorted.length / wallSeconds,
    p50: NaN,
    p90: NaN,
    p99: NaN,
    max: sorted[sorted.length - 1] ?? NaN,
    cpuSeconds: 1,
    wallSeconds,
    sampleErrors: [],
    latencies: sorted,
    ...extra,
  };
}

describe('mergeResults (pooling the rounds of --rounds)', () => {
  it('takes percentiles over every operation of every round, not an average of the rounds', () => {
    // Round one: 99 fast operations and one slow; round two: 100 slow ones. An average of per-round
    // p50s would say 5.5 ms; pooled, half of the 200 operations took 10 ms.
    const fast = part([...Array.from({ length: 99 }, () => 1), 10], 1);
    const slow = part(Array.from({ length: 100 }, () => 10), 1);
    const merged = mergeResults([fast, slow]);
    expect(merged.ops).toBe(200);
    expect(merged.p50).toBe(10);
    expect(merged.p90).toBe(10);
    expect(mergeResults([fast]).p50).toBe(1);
    expect(merged.max).toBe(10);
  });

  it('computes throughput over the rounds\u2019 total time and sums errors and CPU', () => {
    const a = part([1, 2, 3, 4], 2, { errors: 1, cpuSeconds: 0.5, sampleErrors: ['HTTP 503 on PUT /kv/k1'] });
    const b = part([5, 6], 1, { errors: 2, cpuSeconds: 0.25, sampleErrors: ['HTTP 503 on PUT /kv/k2', 'x', 'y', 'z', 'w'] });
    const merged = mergeResults([a, b]);
    expect(merged.opsPerSec).toBeCloseTo(6 / 3);
    expect(merged.errors).toBe(3);
    expect(merged.cpuSeconds).toBeCloseTo(0.75);
    expect(merged.wallSeconds).toBe(3);
    expect(merged.sampleErrors).toEqual(['HTTP 503 on PUT /kv/k1', 'HTTP 503 on PUT /kv/k2', 'x', 'y', 'z']);
    expect(merged.p99).toBe(6);
  });

  it('refuses parts without latencies or no parts at all', () => {
    const { latencies: _dropped, ...bare } = part([1], 1);
    expect(() => mergeResults([bare])).toThrow(/keepLatencies/);
    expect(() => mergeResults([])).toThrow(/no results/);
  });
});

describe('runLoad with ops (a fixed number of writes instead of a fixed time)', () => {
  let server: Server;
  let requests = 0;
  const paths = new Set<string>();
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      paths.add(req.url!);
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  });
  afterAll(() => new Promise((ok) => server.close(ok)));

  it('stops once `ops` operations were started over all clients, long before the duration ends', async () => {
    const { port } = server.address() as AddressInfo;
    requests = 0;
    const result = await runLoad({
      system: 'raft-kv',
      target: `http://127.0.0.1:${port}`,
      workload: 'write',
      concurrency: 8,
      durationMs: 60_000,
      ops: 123,
      keys: 10,
      valueBytes: 100,
    });
    expect(result.ops).toBe(123);
    expect(result.errors).toBe(0);
    expect(requests).toBe(123);
    expect(result.wallSeconds).toBeLessThan(30);
  });

  it('spreads the writes over every key (the disk scenario overwrites all 1,000)', async () => {
    const { port } = server.address() as AddressInfo;
    paths.clear();
    await runLoad({
      system: 'raft-kv',
      target: `http://127.0.0.1:${port}`,
      workload: 'write',
      concurrency: 8,
      durationMs: 60_000,
      ops: 2000,
      keys: 100,
      valueBytes: 100,
    });
    expect(paths.size).toBe(100);
  });
});

describe('runLoad with spread (reads on every node)', () => {
  const servers: Server[] = [];
  const counts: number[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 3; i++) {
      counts.push(0);
      const server = createServer((req, res) => {
        counts[i]++;
        req.resume();
        req.on('end', () => res.end('{}'));
      });
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      servers.push(server);
    }
  });
  afterAll(() => Promise.all(servers.map((s) => new Promise((ok) => s.close(ok)))));

  it('gives each node its share of the clients instead of sending everything to the target', async () => {
    const urls = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    const result = await runLoad({
      system: 'raft-kv',
      target: urls[0],
      spread: urls,
      workload: 'read',
      concurrency: 6,
      durationMs: 60_000,
      ops: 600,
      keys: 10,
      valueBytes: 100,
    });
    expect(result.ops).toBe(600);
    // Two clients per node, each asking only its own node: every node answers a good share.
    for (const count of counts) expect(count).toBeGreaterThan(100);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(600);
  });
});

/**
 * The load generator of `npm run bench`, run as its own process so that its CPU is measured apart from the
 * servers'. Reads one job (JSON) from argv[2], drives `concurrency` closed-loop clients (each with its own
 * keep-alive connection, one request at a time) for `durationMs`, and prints one JSON result line.
 *
 * The same generator drives both systems: raft-kv through its HTTP API, etcd through its JSON gateway.
 */
import { Pool } from 'undici';

export type Workload = 'write' | 'read' | 'stale' | 'mix';
export type System = 'raft-kv' | 'etcd';

export interface LoadJob {
  system: System;
  /** Base URL of the node every request goes to (the leader), unless `spread` is given. */
  target: string;
  /** Base URLs the clients are spread over instead (client i asks spread[i % n]): reads on every node. */
  spread?: string[];
  workload: Workload;
  concurrency: number;
  /** The clients stop at this time, or earlier once `ops` operations have been started. */
  durationMs: number;
  /**
   * Stop after this many operations have been started (successful or not), all clients together: a fixed
   * amount of work (the lifetime benchmark's "N writes") rather than a fixed time. Unset: run for durationMs.
   */
  ops?: number;
  /** Keys are k0..k{keys-1}. */
  keys: number;
  valueBytes: number;
  /** For `mix`: the share of reads (0.9 = 90/10). */
  readShare?: number;
  /** Return every latency too (sorted), so that rounds can be pooled by mergeResults(). */
  keepLatencies?: boolean;
}

export interface LoadResult {
  ops: number;
  errors: number;
  /** Successful operations per second over the measured window. */
  opsPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** CPU seconds the generator used (user + system). */
  cpuSeconds: number;
  wallSeconds: number;
  /** The first few error descriptions, for the report. */
  sampleErrors: string[];
  /** Every successful operation's latency in ms, sorted; only when the job asked for them. */
  latencies?: number[];
}

/** The figures of one set of operations: latencies sorted ascending, in ms. */
function summarize(
  latencies: number[],
  errors: number,
  wallSeconds: number,
  cpuSeconds: number,
  sampleErrors: string[],
): LoadResult {
  const at = (q: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : NaN);
  return {
    ops: latencies.length,
    errors,
    opsPerSec: latencies.length / wallSeconds,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: latencies.length ? latencies[latencies.length - 1] : NaN,
    cpuSeconds,
    wallSeconds,
    sampleErrors: sampleErrors.slice(0, 5),
  };
}

/**
 * Pools several runs of the same row (the rounds of `--rounds`) into one result: throughput over their
 * total time, percentiles over all their operations together. Every part must carry its latencies.
 */
export function mergeResults(parts: LoadResult[]): LoadResult {
  if (parts.length === 0) throw new Error('mergeResults: no results');
  const latencies: number[] = [];
  for (const p of parts) {
    if (!p.latencies) throw new Error('mergeResults: a result without latencies (run the job with keepLatencies)');
    for (const l of p.latencies) latencies.push(l);
  }
  latencies.sort((a, b) => a - b);
  const sum = (f: (r: LoadResult) => number) => parts.reduce((acc, r) => acc + f(r), 0);
  return summarize(
    latencies,
    sum((r) => r.errors),
    sum((r) => r.wallSeconds),
    sum((r) => r.cpuSeconds),
    parts.flatMap((r) => r.sampleErrors),
  );
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

interface Request {
  method: 'GET' | 'PUT' | 'POST';
  path: string;
  body?: string;
}

function requestFor(job: LoadJob, op: 'write' | 'read' | 'stale', key: string, value: string): Request {
  if (job.system === 'raft-kv') {
    if (op === 'write') return { method: 'PUT', path: `/kv/${key}`, body: JSON.stringify({ value }) };
    return { method: 'GET', path: op === 'stale' ? `/kv/${key}?consistency=stale` : `/kv/${key}` };
  }
  if (op === 'write') return { method: 'POST', path: '/v3/kv/put', body: JSON.stringify({ key: b64(key), value: b64(value) }) };
  const range: Record<string, unknown> = { key: b64(key) };
  if (op === 'stale') range.serializable = true;
  return { method: 'POST', path: '/v3/kv/range', body: JSON.stringify(range) };
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const urls = job.spread && job.spread.length > 0 ? job.spread : [job.target];
  const pools = urls.map(
    (url) => new Pool(url, { connections: Math.ceil(job.concurrency / urls.length), pipelining: 1, keepAliveTimeout: 60_000 }),
  );
  const latencies: number[] = [];
  let errors = 0;
  const sampleErrors: string[] = [];
  const value = 'v'.repeat(job.valueBytes);
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  const deadline = started + job.durationMs;
  let seq = 0;
  let issued = 0;
  const limit = job.ops ?? Infinity;

  const client = async (id: number) => {
    const pool = pools[id % pools.length];
    let n = id;
    while (performance.now() < deadline && issued < limit) {
      issued++;
      // 32-bit arithmetic: a plain product of two such numbers exceeds 2^53 and loses its low bits, and the
      // sequence then cycles through a fraction of the keys.
      n = (Math.imul(n, 1103515245) + 12345) & 0x7fffffff;
      const key = `k${n % job.keys}`;
      let op: 'write' | 'read' | 'stale' = job.workload === 'mix' ? (n % 1000 < (job.readShare ?? 0.9) * 1000 ? 'read' : 'write') : job.workload;
      const req = requestFor(job, op, key, op === 'write' ? `${value.slice(0, job.valueBytes - 12)}${String(seq++).padStart(12, '0')}` : value);
      const t0 = performance.now();
      try {
        const res = await pool.request({
          method: req.method,
          path: req.path,
          body: req.body,
          headers: req.body ? { 'content-type': 'application/json' } : undefined,
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        });
        await res.body.text();
        // A read of a key not written yet (404) is a correct, complete answer.
        if (res.statusCode === 200 || (res.statusCode === 404 && op !== 'write')) {
          latencies.push(performance.now() - t0);
        } else {
          errors++;
          if (sampleErrors.length < 5) sampleErrors.push(`HTTP ${res.statusCode} on ${req.method} ${req.path}`);
        }
      } catch (error) {
        errors++;
        if (sampleErrors.length < 5) sampleErrors.push(`${(error as Error).message} on ${req.method} ${req.path}`);
      }
      op = 'read';
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, (_, i) => client(i + 1)));
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  await Promise.all(pools.map((p) => p.close()));
  latencies.sort((a, b) => a - b);
  const result = summarize(latencies, errors, wallSeconds, (cpu.user + cpu.system) / 1e6, sampleErrors);
  if (job.keepLatencies) result.latencies = latencies;
  return result;
}

if (require.main === module) {
  const job = JSON.parse(process.argv[2]) as LoadJob;
  runLoad(job).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error) => {
      process.stderr.write(`load worker failed: ${(error as Error).stack}\n`);
      process.exit(1);
    },
  );
}

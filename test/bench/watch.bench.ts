/**
 * Watch fan-out benchmark: `npm run bench:watch [-- --watchers 1000 --writes 200]` (docs/kv.md, "Watch: measured").
 *
 * Starts one node (a single-node cluster, from dist/: `npm run build` first), opens N watch streams on it from
 * this process, then writes one key every 20 ms through the node and measures, for every event at every watcher,
 * the time from sending the PUT to reading the event (the write's commit, an fsync, included). Two cases:
 * - fan-out: every watcher follows the prefix written, so each event goes to all N;
 * - spread: each watcher follows its own key, and each write goes to one of those keys: one watcher per event,
 *   which shows a change's cost does not grow with the watchers that do not follow it.
 * The PUT round trip alone is reported for comparison.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NodeProcess, NODE_MAIN } from '../../scripts/lib/node-process';
import { integerOption, parseCommandLine, withUsage } from '../../scripts/lib/cli';

const USAGE = 'bench:watch';
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
const now = () => performance.now();

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(label: string, samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(2).padStart(7);
  return `${label.padEnd(34)} n=${String(sorted.length).padStart(7)}  p50 ${f(percentile(sorted, 50))} ms  p99 ${f(percentile(sorted, 99))} ms  max ${f(sorted[sorted.length - 1])} ms`;
}

/** Opens a watch; calls onEvent(key, value) per event. Resolves once the stream's headers are in. */
function openWatch(url: string, onEvent: (key: string, value: string) => void): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`watch answered ${res.statusCode}`));
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^data: (.*)$/m.exec(frame);
          if (data && /^event: put$/m.test(frame)) {
            const event = JSON.parse(data[1]) as { key: string; value: string };
            onEvent(event.key, event.value);
          }
        }
      });
      res.on('error', () => undefined);
      resolve(() => res.destroy());
    });
    req.on('error', reject);
    req.end();
  });
}

function put(base: string, key: string, value: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ value });
    const req = request(`${base}/kv/${encodeURIComponent(key)}`, {
      method: 'PUT',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`PUT answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runCase(base: string, name: string, watchers: number, writes: number, spread: boolean): Promise<void> {
  /** Write number → the time its PUT was sent. */
  const sent = new Map<string, number>();
  const delivery: number[] = [];
  const roundTrips: number[] = [];
  let received = 0;
  const closers: Array<() => void> = [];
  for (let i = 0; i < watchers; i++) {
    const query = spread ? `key=${encodeURIComponent(`${name}/k${i}`)}` : `prefix=${encodeURIComponent(`${name}/`)}`;
    closers.push(
      await openWatch(`${base}/watch?${query}`, (_key, value) => {
        const at = now();
        const start = sent.get(value);
        if (start !== undefined) delivery.push(at - start);
        received++;
      }),
    );
  }
  const expected = spread ? writes : writes * watchers;
  for (let w = 0; w < writes; w++) {
    const key = `${name}/k${spread ? w % watchers : w % 50}`;
    const value = String(w);
    const start = now();
    sent.set(value, start);
    await put(base, key, value);
    roundTrips.push(now() - start);
    await sleep(20);
  }
  const deadline = Date.now() + 30_000;
  while (received < expected && Date.now() < deadline) await sleep(50);
  for (const close of closers) close();
  console.log(`${name}: ${watchers} watchers, ${writes} writes, ${received}/${expected} events delivered`);
  console.log(`  ${summary('PUT sent -> event at a watcher', delivery)}`);
  console.log(`  ${summary('PUT round trip (for comparison)', roundTrips)}`);
  if (received !== expected) throw new Error(`${expected - received} events missing`);
}

async function main(): Promise<void> {
  const { values } = parseCommandLine({ options: { watchers: { type: 'string' }, writes: { type: 'string' } } });
  const watchers = values.watchers === undefined ? 1000 : integerOption('--watchers', values.watchers, 1);
  const writes = values.writes === undefined ? 200 : integerOption('--writes', values.writes, 1);
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-watch-bench-'));
  const port = 30_000 + Math.floor(Math.random() * 20_000);
  const node = new NodeProcess({
    name: 'bench',
    env: { NODE_ID: 'bench', HTTP_PORT: String(port), WAL_DIR: dir, LOG_LEVEL: 'warn' },
    clientUrl: `http://127.0.0.1:${port}`,
  });
  console.log(`node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${NODE_MAIN}`);
  try {
    node.start();
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try {
        if ((await node.status()).isLeader) break;
      } catch {
        // not up yet
      }
      if (i > 200) throw new Error('the node did not become leader');
      await sleep(100);
    }
    await runCase(base, 'fanout', watchers, writes, false);
    await runCase(base, 'spread', watchers, writes, true);
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

void withUsage(USAGE, main).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

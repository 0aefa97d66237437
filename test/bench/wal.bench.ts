/**
 * Write-ahead log benchmark: `npm run bench:wal` (docs/benchmarks.md, "Write-ahead log").
 *
 * - baseline: a raw 4 KiB append + fdatasync, and the same with the bytes of a 64-entry batch, straight
 *   through Node's fs (no WAL): the floor the WAL sits on.
 * - sequential: one save() of B entries of 100 bytes (plus a hard state) at a time, awaited: entries/s,
 *   fsyncs/s and the time from save() to durable, for B = 1, 16, 64, 256; and B = 1, 64 with the
 *   `fdatasync` sync method instead of the default O_DSYNC writes.
 * - group commit: C writers each saving 1 entry in a loop: how many saves share an fsync.
 * - recovery: Wal.open() on a log of 200,000 entries.
 *
 * Every case runs WAL_BENCH_ROUNDS times (default 5) for WAL_BENCH_SECONDS (default 1), the cases taking
 * turns, and the figures pool all rounds. WAL_BENCH_DIR: where to write (default: the OS temp dir).
 */
import { Entry, EntryType } from '@app/consensus';
import { SyncMethod, Wal } from '@app/storage';
import { execSync } from 'node:child_process';
import * as fs from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine, withUsage } from '../../scripts/lib/cli';

const BASE = process.env.WAL_BENCH_DIR ?? tmpdir();
const SECONDS = Number(process.env.WAL_BENCH_SECONDS ?? 1);
const ROUNDS = Number(process.env.WAL_BENCH_ROUNDS ?? 5);
const PAYLOAD = Buffer.alloc(100, 0x61);
const quiet = { log: () => undefined, warn: (m: string) => console.error(m), error: (m: string) => console.error(m) };

interface Sample {
  /** Latency of each operation, ms. */
  lat: number[];
  entries: number;
  fsyncs: number;
  seconds: number;
  saves?: number;
}

interface Case {
  name: string;
  run: () => Promise<Sample>;
  raw?: boolean;
  note?: (s: Sample) => string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function tempDir(): string {
  return fs.mkdtempSync(join(BASE, 'wal-bench-'));
}

async function rawFsync(size: number): Promise<Sample> {
  const dir = tempDir();
  try {
    const fd = fs.openSync(join(dir, 'raw'), 'w');
    const buf = Buffer.alloc(size, 1);
    const lat: number[] = [];
    const started = Date.now();
    let position = 0;
    while (Date.now() - started < SECONDS * 1000) {
      const t = process.hrtime.bigint();
      fs.writeSync(fd, buf, 0, size, position);
      fs.fdatasyncSync(fd);
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      position += size;
    }
    fs.closeSync(fd);
    return { lat, entries: 0, fsyncs: lat.length, seconds: (Date.now() - started) / 1000 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function batch(from: number, count: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) out.push({ index: from + i, term: 1, type: EntryType.Normal, data: PAYLOAD });
  return out;
}

async function sequential(size: number, syncMethod: SyncMethod): Promise<Sample> {
  const dir = tempDir();
  let fsyncs = 0;
  const wal = await Wal.open(dir, { logger: quiet, onFsync: () => fsyncs++, syncMethod });
  try {
    let next = 1;
    const lat: number[] = [];
    for (let i = 0; i < 20; i++) {
      await wal.save({ term: 1, vote: 'n1', commit: next - 1 }, batch(next, size)); // warm-up
      next += size;
    }
    fsyncs = 0;
    const started = Date.now();
    const first = next;
    while (Date.now() - started < SECONDS * 1000) {
      const t = process.hrtime.bigint();
      await wal.save({ term: 1, vote: 'n1', commit: next - 1 }, batch(next, size));
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      next += size;
    }
    return { lat, entries: next - first, fsyncs, seconds: (Date.now() - started) / 1000 };
  } finally {
    await wal.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function groupCommit(writers: number): Promise<Sample> {
  const dir = tempDir();
  let fsyncs = 0;
  const wal = await Wal.open(dir, { logger: quiet, onFsync: () => fsyncs++ });
  try {
    let next = 1;
    let saves = 0;
    const lat: number[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (Date.now() - started < SECONDS * 1000) {
          const t = process.hrtime.bigint();
          await wal.save(undefined, batch(next++, 1)); // the index is taken synchronously, so saves stay in order
          lat.push(Number(process.hrtime.bigint() - t) / 1e6);
          saves++;
        }
      }),
    );
    return { lat, entries: saves, fsyncs, seconds: (Date.now() - started) / 1000, saves };
  } finally {
    await wal.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function recovery(count: number): Promise<string> {
  const dir = tempDir();
  try {
    const wal = await Wal.open(dir, { logger: quiet });
    for (let i = 1; i <= count; i += 1000) await wal.save({ term: 1, vote: 'n1', commit: i - 1 }, batch(i, 1000));
    await wal.close();
    const bytes = fs.readdirSync(dir).reduce((sum, n) => sum + fs.statSync(join(dir, n)).size, 0);
    const t = process.hrtime.bigint();
    const again = await Wal.open(dir, { logger: quiet });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    const last = again.storage.lastIndex();
    const heap = process.memoryUsage();
    await again.close();
    return (
      `recovery: Wal.open() of ${last} entries (${(bytes / 1048576).toFixed(1)} MiB in ` +
      `${fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).length} segment(s)) took ${ms.toFixed(0)} ms ` +
      `(rss ${(heap.rss / 1048576).toFixed(0)} MiB after)`
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function machine(): string {
  const fsType = (() => {
    try {
      return execSync(`df -T ${JSON.stringify(BASE)} | tail -1`, { encoding: 'utf8' }).trim().split(/\s+/).slice(0, 2).join(' ');
    } catch {
      return 'unknown';
    }
  })();
  return [
    `date: ${new Date().toISOString()}`,
    `cpu: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}, memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `kernel: Linux ${release()}, node ${process.version}`,
    `directory: ${BASE} on ${fsType}`,
    `each case: ${ROUNDS} rounds of ${SECONDS} s, taking turns with the others`,
  ].join('\n');
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function main(): Promise<void> {
  const { values } = parseCommandLine({ args: process.argv.slice(2), options: { help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench:wal\n  no options; the environment sets WAL_BENCH_ROUNDS (default 5), WAL_BENCH_SECONDS (default 1)\n' +
        '  and WAL_BENCH_DIR (default: the OS temp dir)\n',
    );
    return;
  }
  console.log(machine());
  const cases: Case[] = [
    { name: 'raw fs: write 4 KiB + fdatasync', run: () => rawFsync(4096), raw: true },
    { name: 'raw fs: write 8,320 B (64 framed entries) + fdatasync', run: () => rawFsync(64 * 130), raw: true },
    ...[1, 16, 64, 256].map((n) => ({ name: `save(), batch of ${n}`, run: () => sequential(n, 'dsync') })),
    ...[1, 64].map((n) => ({ name: `save(), batch of ${n}, syncMethod fdatasync`, run: () => sequential(n, 'fdatasync') })),
    ...[8, 64].map((w) => ({
      name: `group commit: ${w} writers × 1 entry`,
      run: () => groupCommit(w),
      note: (s: Sample) => `${((s.saves ?? 0) / s.fsyncs).toFixed(1)} saves per fsync`,
    })),
  ];
  // Rounds, each running every case in turn, so that noise from other work on the machine is spread over
  // all cases instead of hitting one.
  const pooled = cases.map(() => ({ lat: [] as number[], entries: 0, fsyncs: 0, seconds: 0, saves: 0 }));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [k, c] of cases.entries()) {
      const s = await c.run();
      const p = pooled[k];
      p.lat.push(...s.lat);
      p.entries += s.entries;
      p.fsyncs += s.fsyncs;
      p.seconds += s.seconds;
      p.saves += s.saves ?? 0;
    }
  }
  console.log('');
  console.log('| case | entries/s | fsyncs/s | p50 ms | p99 ms | note |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const [k, c] of cases.entries()) {
    const p = pooled[k];
    p.lat.sort((a, b) => a - b);
    const entries = c.raw ? '–' : fmt(p.entries / p.seconds);
    console.log(
      `| ${c.name} | ${entries} | ${fmt(p.fsyncs / p.seconds)} | ${fmt(percentile(p.lat, 0.5), 3)} | ` +
        `${fmt(percentile(p.lat, 0.99), 3)} | ${c.note?.(p) ?? ''} |`,
    );
  }
  console.log('');
  console.log(await recovery(200_000));
}

withUsage('bench:wal', main).catch((err) => {
  console.error(err);
  process.exit(1);
});

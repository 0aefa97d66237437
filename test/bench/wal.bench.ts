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
 * Options (env): WAL_BENCH_DIR (default: the OS temp dir), WAL_BENCH_SECONDS per case (default 3).
 */
import { Entry, EntryType } from '@app/consensus';
import { SyncMethod, Wal } from '@app/storage';
import { execSync } from 'node:child_process';
import * as fs from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

const BASE = process.env.WAL_BENCH_DIR ?? tmpdir();
const SECONDS = Number(process.env.WAL_BENCH_SECONDS ?? 3);
const PAYLOAD = Buffer.alloc(100, 0x61);
const quiet = { log: () => undefined, warn: (m: string) => console.error(m), error: (m: string) => console.error(m) };

interface Row {
  case: string;
  entriesPerSec: number;
  fsyncsPerSec: number;
  p50: number;
  p99: number;
  note?: string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function tempDir(): string {
  return fs.mkdtempSync(join(BASE, 'wal-bench-'));
}

function rawFsync(label: string, size: number): Row {
  const dir = tempDir();
  try {
    const fd = fs.openSync(join(dir, 'raw'), 'w');
    const buf = Buffer.alloc(size, 1);
    const lat: number[] = [];
    const end = Date.now() + SECONDS * 1000;
    let position = 0;
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      fs.writeSync(fd, buf, 0, size, position);
      fs.fdatasyncSync(fd);
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      position += size;
    }
    fs.closeSync(fd);
    lat.sort((a, b) => a - b);
    const perSec = lat.length / SECONDS;
    return { case: label, entriesPerSec: NaN, fsyncsPerSec: perSec, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function batch(from: number, count: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) out.push({ index: from + i, term: 1, type: EntryType.Normal, data: PAYLOAD });
  return out;
}

async function sequential(size: number, syncMethod: SyncMethod): Promise<Row> {
  const dir = tempDir();
  let fsyncs = 0;
  const wal = await Wal.open(dir, { logger: quiet, onFsync: () => fsyncs++, syncMethod });
  try {
    let next = 1;
    const lat: number[] = [];
    // Warm up, then measure for SECONDS.
    for (let i = 0; i < 50; i++) {
      await wal.save({ term: 1, vote: 'n1', commit: next - 1 }, batch(next, size));
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
    const secs = (Date.now() - started) / 1000;
    lat.sort((a, b) => a - b);
    return {
      case: `sequential, batch of ${size}${syncMethod === 'dsync' ? '' : ' (fdatasync)'}`,
      entriesPerSec: (next - first) / secs,
      fsyncsPerSec: fsyncs / secs,
      p50: percentile(lat, 0.5),
      p99: percentile(lat, 0.99),
    };
  } finally {
    await wal.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function groupCommit(writers: number): Promise<Row> {
  const dir = tempDir();
  let fsyncs = 0;
  const wal = await Wal.open(dir, { logger: quiet, onFsync: () => fsyncs++ });
  try {
    let next = 1;
    let saves = 0;
    const lat: number[] = [];
    const started = Date.now();
    const deadline = started + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (Date.now() < deadline) {
          const t = process.hrtime.bigint();
          await wal.save(undefined, batch(next++, 1)); // the index is taken synchronously, so saves stay in order
          lat.push(Number(process.hrtime.bigint() - t) / 1e6);
          saves++;
        }
      }),
    );
    const secs = (Date.now() - started) / 1000;
    lat.sort((a, b) => a - b);
    return {
      case: `group commit, ${writers} writers × 1 entry`,
      entriesPerSec: saves / secs,
      fsyncsPerSec: fsyncs / secs,
      p50: percentile(lat, 0.5),
      p99: percentile(lat, 0.99),
      note: `${(saves / fsyncs).toFixed(1)} saves per fsync`,
    };
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
    `seconds per case: ${SECONDS}`,
  ].join('\n');
}

function fmt(n: number, digits = 0): string {
  return Number.isNaN(n) ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

async function main(): Promise<void> {
  console.log(machine());
  const rows: Row[] = [];
  rows.push(rawFsync('raw fs: write 4 KiB + fdatasync', 4096));
  rows.push(rawFsync('raw fs: write 8,320 B (64 entries framed) + fdatasync', 64 * 130));
  for (const size of [1, 16, 64, 256]) rows.push(await sequential(size, 'dsync'));
  for (const size of [1, 64]) rows.push(await sequential(size, 'fdatasync'));
  for (const writers of [8, 64]) rows.push(await groupCommit(writers));
  console.log('');
  console.log('| case | entries/s | fsyncs/s | p50 ms | p99 ms | note |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.case} | ${fmt(r.entriesPerSec)} | ${fmt(r.fsyncsPerSec)} | ${fmt(r.p50, 3)} | ${fmt(r.p99, 3)} | ${r.note ?? ''} |`,
    );
  }
  console.log('');
  console.log(await recovery(200_000));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

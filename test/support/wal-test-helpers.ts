import { Entry, EntryType, Storage } from '@app/consensus';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WalLogger } from '@app/storage';

/** Temporary directories for a test file, removed by cleanup() (call it in afterEach/afterAll). */
export class TempDirs {
  private readonly dirs: string[] = [];

  make(prefix = 'wal-'): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** A copy of `dir` as it is now: what a crash at this moment would leave (page cache = disk). */
  snapshot(dir: string): string {
    const copy = this.make('wal-copy-');
    cpSync(dir, copy, { recursive: true });
    return copy;
  }

  cleanup(): void {
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/** A logger that keeps what it is told, for assertions. */
export class MemoryLogger implements WalLogger {
  readonly logs: string[] = [];
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  log(message: string): void {
    this.logs.push(message);
  }
  warn(message: string): void {
    this.warnings.push(message);
  }
  error(message: string): void {
    this.errors.push(message);
  }
}

/** Entry `index` of term `term`; its data (`size` bytes) is derived from both, so it can be checked. */
export function entry(index: number, term: number, size = 100): Entry {
  return { index, term, type: EntryType.Normal, data: payloadFor(index, term, size) };
}

export function entries(from: number, to: number, term: number, size = 100): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, size));
  return out;
}

export function payloadFor(index: number, term: number, size = 100): Buffer {
  const buf = Buffer.alloc(size);
  for (let k = 0; k < size; k++) buf[k] = (index * 31 + term * 17 + k * 7) & 0xff;
  return buf;
}

/** Entries as comparable plain values. */
export function plain(ents: Entry[]): Array<{ index: number; term: number; type: number; data: string }> {
  return ents.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Buffer.from(e.data).toString('hex') }));
}

/** Everything the Raft core can read from a Wal, as plain values (to compare a log before and after reopening). */
export function dumpWal(wal: { storage: Storage }): unknown {
  const s = wal.storage;
  return {
    first: s.firstIndex(),
    last: s.lastIndex(),
    entries: plain(s.entries(s.firstIndex(), s.lastIndex() + 1)),
    prevTerm: s.term(s.firstIndex() - 1),
    state: s.initialState(),
    snapshot: s.snapshot().metadata,
  };
}

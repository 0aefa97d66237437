/**
 * The WAL under real crashes: a child process appends (see wal-crash-child.ts) and reports every save once
 * it is durable; it is killed with SIGKILL at random moments, over and over on the same directory. After
 * each kill the directory is recovered and checked: every entry reported durable is there and intact
 * (unless a later term legitimately overwrote it above the commit index), the hard state is at least what
 * was reported, and every entry's bytes are the ones written. Then the next child continues from there.
 *
 * Reproduce a run with WAL_CRASH_SEED=<seed> (printed on failure).
 */
import { Wal } from '@app/storage';
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { crashChildren } from '../support/crash-children';
import { CRASH_SEGMENT_SIZE, payloadByte } from './wal-crash-child';

jest.setTimeout(120_000);

const CHILD = join(__dirname, 'wal-crash-child.ts');
const REGISTER = join(__dirname, 'wal-crash-register.js');
/**
 * Each kill is a fresh process (~1 s to load on a busy CI machine, most of the test's time). 30 kills: 6 while
 * the child opens the WAL (every fifth), 24 while it appends, each a fresh start on what the previous ones left.
 */
const KILLS = 30;
const OPENING_EVERY = 5;

const crash = crashChildren('wal-crash-');
const { children, tempDir } = crash;

interface Child {
  process: ChildProcess;
  /** Complete stdout lines received so far. */
  lines: string[];
  stderr: () => string;
  /** Resolves with the `ready ...` line, rejects if the child exits first. */
  ready: Promise<string>;
  /** Lets the child open the WAL (it loads first, then waits for this). */
  go: () => void;
  /** Resolves once the child exited and its output is fully read. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startChild(dir: string, mode: 'append' | 'hold', seed: number): Child {
  const proc = spawn(process.execPath, ['-r', REGISTER, CHILD, dir, mode, String(seed)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, WAL_CRASH_CACHE: crash.compileCache },
  });
  children.add(proc);
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  let onReady!: (line: string) => void;
  let onFail!: (err: Error) => void;
  const ready = new Promise<string>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (line.startsWith('ready')) onReady(line);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('close', (code, signal) => {
      children.delete(proc);
      onFail(new Error(`child exited (${code ?? signal}) before it was ready: ${stderr}`));
      resolve({ code, signal });
    }),
  );
  ready.catch(() => undefined);
  const go = (): void => void proc.stdin!.write('go\n', () => undefined);
  proc.stdin!.on('error', () => undefined); // the child may be gone already
  return { process: proc, lines, stderr: () => stderr, ready, go, closed };
}

/** What the children reported durable, with the same overwrite rule as the log. */
class Model {
  terms = new Map<number, number>();
  last = 0;
  term = 0;
  vote = '';
  commit = 0;

  report(from: number, to: number, term: number, commit: number, vote: string): void {
    for (let i = from; i <= this.last; i++) this.terms.delete(i);
    for (let i = from; i <= to; i++) this.terms.set(i, term);
    this.last = to;
    this.term = term;
    this.commit = commit;
    this.vote = vote;
  }

  /** Restarts the model from what recovery found: the next child continues from there. */
  reset(wal: Wal): void {
    const { storage } = wal;
    this.terms.clear();
    for (let i = storage.firstIndex(); i <= storage.lastIndex(); i++) this.terms.set(i, storage.term(i));
    this.last = storage.lastIndex();
    const { hardState } = storage.initialState();
    this.term = hardState.term;
    this.commit = hardState.commit;
    this.vote = hardState.vote;
  }
}

/** Every promise the children made holds in the recovered WAL; returns the problems found. */
function verify(wal: Wal, model: Model, checkedUpTo: number): string[] {
  const problems: string[] = [];
  const { storage } = wal;
  const { hardState } = storage.initialState();
  const last = storage.lastIndex();
  if (hardState.term < model.term) problems.push(`term ${hardState.term} < reported ${model.term}`);
  if (hardState.term === model.term && hardState.vote !== model.vote) {
    problems.push(`vote ${hardState.vote} in term ${hardState.term}, reported ${model.vote}`);
  }
  if (hardState.commit < model.commit) problems.push(`commit ${hardState.commit} < reported ${model.commit}`);
  for (const [i, t] of model.terms) {
    if (i <= last && storage.term(i) === t) continue;
    // Not there as reported: only legal if a later term overwrote it, above the reported commit.
    const m = Math.min(i, last);
    if (i <= model.commit || m < 1 || storage.term(m) <= t) {
      problems.push(`entry ${i} of term ${t} reported durable, found ${i <= last ? `term ${storage.term(i)}` : `last index ${last}`}`);
      if (problems.length > 10) break;
    }
  }
  // Every byte of every entry not checked yet is the one written.
  for (let lo = Math.max(1, checkedUpTo + 1); lo <= last; lo += 1000) {
    for (const e of storage.entries(lo, Math.min(last, lo + 999) + 1)) {
      for (let k = 0; k < e.data.length; k++) {
        if (e.data[k] !== payloadByte(e.index, e.term, k)) {
          problems.push(`entry ${e.index} of term ${e.term}: byte ${k} is wrong`);
          break;
        }
      }
    }
  }
  return problems;
}

describe('write-ahead log under SIGKILL', () => {
  it(`keeps every save reported durable, across ${KILLS} kills at random moments`, async () => {
    const seed = Number(process.env.WAL_CRASH_SEED) || Date.now() % 1_000_000;
    let state = seed;
    const rand = (n: number): number => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state % n;
    };
    const dir = tempDir();
    const model = new Model();
    const warnings: string[] = [];
    const logger = { log: () => undefined, warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) };
    let checkedUpTo = 0;
    let reports = 0;
    let torn = 0;

    // Loading a child takes longer than running it, so the next two load while one runs (a child opens
    // the WAL only once told to).
    const loading: Child[] = [];
    let started = 0;
    const preload = (): void => {
      while (loading.length < 2 && started < KILLS) {
        loading.push(startChild(dir, 'append', rand(1 << 30)));
        started++;
      }
    };
    preload();
    for (let kill = 1; kill <= KILLS; kill++) {
      const child = loading.shift()!;
      child.go();
      if (kill % OPENING_EVERY === 0) {
        // While it opens (recovering, cutting a torn tail, creating a segment).
        await new Promise((r) => setTimeout(r, rand(30)));
      } else {
        await child.ready;
        await new Promise((r) => setTimeout(r, 5 + rand(150)));
      }
      preload();
      child.process.kill('SIGKILL');
      const { signal } = await child.closed;
      expect({ kill, signal, stderr: child.stderr().split('\n').filter((l) => !l.startsWith('warn:')).join('\n') }).toEqual({
        kill,
        signal: 'SIGKILL',
        stderr: '',
      });
      for (const line of child.lines) {
        const m = /^D (\d+) (\d+) (\d+) (\d+) (\S+)$/.exec(line);
        if (!m) continue;
        model.report(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), m[5]);
        reports++;
      }

      const before = warnings.length;
      const wal = await Wal.open(dir, { segmentSize: CRASH_SEGMENT_SIZE, logger });
      try {
        if (warnings.slice(before).some((w) => w.includes('torn write'))) torn++;
        const problems = verify(wal, model, Math.min(checkedUpTo, model.commit));
        expect({ seed, kill, problems }).toEqual({ seed, kill, problems: [] });
        model.reset(wal);
        checkedUpTo = wal.storage.initialState().hardState.commit; // committed entries never change again
      } finally {
        await wal.close();
      }
    }
    // The run did exercise something: many durable saves, and crashes that tore a write.
    expect(reports).toBeGreaterThan(KILLS * 10);
    process.stdout.write(
      `wal-crash: seed ${seed}, ${KILLS} kills, ${reports} durable saves reported and verified, ` +
        `${torn} recoveries cut a torn tail, final log of ${model.last} entries\n`,
    );
  });

  it('a second process on the same directory exits with a clear error; after the holder dies the lock is taken over', async () => {
    const dir = tempDir();
    const holder = startChild(dir, 'hold', 1);
    holder.go();
    await holder.ready;
    const second = startChild(dir, 'append', 2);
    second.go();
    const { code } = await second.closed;
    expect(code).toBe(2);
    expect(second.stderr()).toContain(
      `WalLockedError: WAL directory ${dir} is in use by another process (pid ${holder.process.pid} on host`,
    );
    holder.process.kill('SIGKILL');
    await holder.closed;
    const third = startChild(dir, 'hold', 3);
    third.go();
    await third.ready;
    third.process.kill('SIGKILL');
    await third.closed;
    expect(third.stderr()).toContain('took over the stale lock');
  });
});

import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { TempDirs } from '../../../test/support/wal-test-helpers';
import { checkProcess, DirLock, LOCK_FILE, readProcStat } from './dir-lock';
import { WalLockedError } from './errors';

const dirs = new TempDirs();
const locks: DirLock[] = [];
afterEach(async () => {
  for (const lock of locks.splice(0)) await lock.release();
  dirs.cleanup();
});

async function acquire(dir: string, warnings: string[] = [], staleAfterMs?: number): Promise<DirLock> {
  const lock = await DirLock.acquire(dir, { warn: (m) => warnings.push(m), staleAfterMs });
  locks.push(lock);
  return lock;
}

function writeLock(dir: string, holder: Record<string, unknown>): void {
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ nonce: 'other', startedAt: 'then', ...holder }) + '\n');
}

/** A pid that is certainly not running: above the kernel's pid_max. */
const DEAD_PID = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Complete stdout lines of a child, as they arrive. */
function lines(child: ChildProcess): string[] {
  const out: string[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    out.push(...parts);
  });
  return out;
}

/**
 * A `sleep` whose parent does not reap it: `sh` starts it in the background, prints its pid, and blocks
 * reading stdin (dash does not reap children meanwhile); killed, it stays a zombie until `reap()` lets sh
 * `wait`. `command` runs a copy of sleep under another name when given.
 */
async function unreapedChild(command = 'sleep'): Promise<{ pid: number; reap: () => Promise<void> }> {
  const sh = spawn('/bin/sh', ['-c', '"$0" 30 & echo $!; read _; wait', command], { stdio: ['pipe', 'pipe', 'inherit'] });
  const out = lines(sh);
  const exited = new Promise((r) => sh.once('exit', r));
  const pid = Number(await until('the child pid', () => out[0]));
  return {
    pid,
    reap: async () => {
      if (readProcStat(pid)?.state !== 'Z') process.kill(pid, 'SIGKILL');
      sh.stdin!.end('\n');
      await exited;
    },
  };
}

describe('DirLock', () => {
  it('writes LOCK with this pid and host, and removes it on release', async () => {
    const dir = dirs.make();
    const lock = await acquire(dir);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, hostname: hostname() });
    await lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("removes the temporary records of this host's contenders that died taking the lock, and only those", async () => {
    const dir = dirs.make();
    const record = (pid: number, host: string) => JSON.stringify({ pid, hostname: host, nonce: 'n', startedAt: 'then' }) + '\n';
    const dead = `${LOCK_FILE}.${DEAD_PID}.0123456789abcdef.tmp`;
    const live = `${LOCK_FILE}.${process.ppid}.fedcba9876543210.tmp`;
    const remote = `${LOCK_FILE}.${DEAD_PID}.00112233aabbccdd.tmp`;
    writeFileSync(join(dir, dead), record(DEAD_PID, hostname()));
    writeFileSync(join(dir, live), record(process.ppid, hostname()));
    writeFileSync(join(dir, remote), record(DEAD_PID, `not-${hostname()}`));
    const warnings: string[] = [];
    await acquire(dir, warnings);
    const left = readdirSync(dir).sort();
    expect(left).toEqual([LOCK_FILE, live, remote].sort());
    expect(warnings).toEqual([`removed ${dead}, left by process ${DEAD_PID} that was killed while taking the lock`]);
  });

  it('refuses a second acquisition in the same process', async () => {
    const dir = dirs.make();
    await acquire(dir);
    await expect(acquire(dir)).rejects.toThrow(WalLockedError);
    await expect(acquire(dir)).rejects.toThrow(`has it open already`);
  });

  it('refuses a lock held by a live process on this host, naming the directory and the holder', async () => {
    const dir = dirs.make();
    writeLock(dir, { pid: process.ppid, hostname: hostname() });
    const attempt = acquire(dir);
    await expect(attempt).rejects.toThrow(`WAL directory ${dir} is in use by another process (pid ${process.ppid} on host`);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true); // untouched
  });

  it.each([
    ['a pid that is not running', { pid: DEAD_PID, hostname: hostname() }, `no process ${DEAD_PID} is running`],
    ['this very pid (a restarted container reuses PID 1)', { pid: process.pid, hostname: hostname() }, 'is this process'],
    ['an earlier boot', { pid: process.ppid, hostname: hostname(), bootId: 'another-boot' }, 'before this machine last booted'],
  ])('takes over a stale lock naming %s, with a warning', async (_name, holder, reason) => {
    const dir = dirs.make();
    writeLock(dir, holder);
    const warnings: string[] = [];
    await acquire(dir, warnings);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(reason);
  });

  it('takes over at once the lock of a process that was killed and not yet reaped (a zombie)', async () => {
    const dir = dirs.make();
    const child = await unreapedChild();
    try {
      writeLock(dir, { pid: child.pid, hostname: hostname(), pidStartTime: readProcStat(child.pid)!.startTime });
      await expect(acquire(dir)).rejects.toThrow(`in use by another process (pid ${child.pid} on host`);

      process.kill(child.pid, 'SIGKILL');
      await until('the killed child to be a zombie', () => (readProcStat(child.pid)?.state === 'Z' ? true : undefined));
      expect(() => process.kill(child.pid, 0)).not.toThrow(); // kill(pid, 0) alone still sees it
      const warnings: string[] = [];
      await acquire(dir, warnings);
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
      expect(warnings).toEqual([expect.stringContaining(`process ${child.pid} has exited (a zombie its parent has not reaped yet)`)]);
    } finally {
      await child.reap();
    }
  });

  it('takes over a lock whose pid now belongs to a later process (another start time), and keeps one whose start time matches', async () => {
    const dir = dirs.make();
    const parent = readProcStat(process.ppid)!;
    writeLock(dir, { pid: process.ppid, hostname: hostname(), pidStartTime: parent.startTime });
    await expect(acquire(dir)).rejects.toThrow(`in use by another process (pid ${process.ppid} on host`);

    writeLock(dir, { pid: process.ppid, hostname: hostname(), pidStartTime: parent.startTime - 1 });
    const warnings: string[] = [];
    await acquire(dir, warnings);
    expect(warnings[0]).toContain(`pid ${process.ppid} now belongs to another process`);
  });

  it('records its own pid start time in the lock', async () => {
    const dir = dirs.make();
    await acquire(dir);
    const written = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
    expect(written.pidStartTime).toBe(readProcStat(process.pid)!.startTime);
    expect(written.pidStartTime).toBeGreaterThan(0);
  });

  it('takes over a lock naming pid 0 or a negative pid (kill(0) and kill(-1) would find processes)', async () => {
    for (const pid of [0, -1]) {
      const dir = dirs.make();
      writeLock(dir, { pid, hostname: hostname() });
      const warnings: string[] = [];
      const lock = await acquire(dir, warnings);
      expect(warnings[0]).toContain('unreadable');
      await lock.release();
    }
  });

  it('takes over a lock whose previous taker died mid-takeover (its claim names a dead process)', async () => {
    const dir = dirs.make();
    writeLock(dir, { pid: DEAD_PID, hostname: hostname() });
    const claim = `${LOCK_FILE}.takeover.${createHash('sha256').update(readFileSync(join(dir, LOCK_FILE), 'utf8')).digest('hex').slice(0, 16)}`;
    writeFileSync(join(dir, claim), JSON.stringify({ pid: DEAD_PID, hostname: hostname(), nonce: 'taker', startedAt: 'then' }) + '\n');
    const warnings: string[] = [];
    await acquire(dir, warnings);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    expect(warnings[0]).toContain(`no process ${DEAD_PID} is running`);
    expect(readdirSync(dir)).toEqual([LOCK_FILE]); // the dead claim was consumed, nothing left behind
  });

  it('leaves a stale lock alone while a live process holds the claim to replace it', async () => {
    const dir = dirs.make();
    writeLock(dir, { pid: DEAD_PID, hostname: hostname() });
    const before = readFileSync(join(dir, LOCK_FILE), 'utf8');
    const claim = `${LOCK_FILE}.takeover.${createHash('sha256').update(before).digest('hex').slice(0, 16)}`;
    writeFileSync(join(dir, claim), JSON.stringify({ pid: process.ppid, hostname: hostname(), nonce: 'taker', startedAt: 'then' }) + '\n');
    await expect(acquire(dir)).rejects.toThrow('several processes are contending for the lock');
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(before);
    expect(existsSync(join(dir, claim))).toBe(true);
  });

  it('takes over an unreadable lock file', async () => {
    const dir = dirs.make();
    writeFileSync(join(dir, LOCK_FILE), '');
    const warnings: string[] = [];
    await acquire(dir, warnings);
    expect(warnings[0]).toContain('unreadable');
  });

  it('trusts a lock from another host while it is refreshed, and takes it over once it is not', async () => {
    const dir = dirs.make();
    writeLock(dir, { pid: 1, hostname: 'some-other-host' });
    await expect(acquire(dir, [], 5000)).rejects.toThrow('refreshed 0 s ago');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, LOCK_FILE), old, old);
    const warnings: string[] = [];
    await acquire(dir, warnings, 5000);
    expect(warnings[0]).toContain('stopped refreshing it 60 s ago');
  });

  it('keeps its mtime fresh while held', async () => {
    const dir = dirs.make();
    await acquire(dir, [], 300); // refreshed every 100 ms
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, LOCK_FILE), old, old);
    await new Promise((r) => setTimeout(r, 250));
    const { mtimeMs } = statSync(join(dir, LOCK_FILE));
    expect(Date.now() - mtimeMs).toBeLessThan(1000);
  });

  it('does not remove a lock that is no longer its own', async () => {
    const dir = dirs.make();
    const lock = await acquire(dir);
    writeLock(dir, { pid: 4242, hostname: 'elsewhere' });
    await lock.release();
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).hostname).toBe('elsewhere');
  });
});

describe('checkProcess and readProcStat', () => {
  it('reads state and start time past a command name with spaces and parentheses', async () => {
    const dir = dirs.make();
    const odd = join(dir, 'a) b (c');
    copyFileSync('/bin/sleep', odd);
    chmodSync(odd, 0o755);
    const child = await unreapedChild(odd);
    try {
      // The shell prints the pid as it forks: the child runs the odd command once it has exec'd it.
      await until('the child to run the odd command', () => (readFileSync(`/proc/${child.pid}/stat`, 'utf8').includes('(a) b (c)') ? true : undefined));
      const stat = readProcStat(child.pid)!;
      expect(stat.state).toMatch(/^[RS]$/);
      expect(stat.startTime).toBeGreaterThanOrEqual(readProcStat(process.pid)!.startTime);
      expect(checkProcess(child.pid, stat.startTime)).toEqual({ running: true });
    } finally {
      await child.reap();
    }
  });

  it('calls a pid with no process not running', () => {
    expect(checkProcess(DEAD_PID)).toEqual({ running: false, reason: `no process ${DEAD_PID} is running` });
  });
});

describe('DirLock between processes', () => {
  const REGISTER = resolve(__dirname, '../../../test/e2e/wal-crash-register.js');
  const CONTENDER = resolve(__dirname, '../../../test/support/dir-lock-contender.ts');
  const CONTENDERS = 4;

  it('lets exactly one of several processes take over the same stale lock; the others refuse, naming it', async () => {
    const cache = dirs.make('dir-lock-cache-');
    for (let round = 0; round < 3; round++) {
      const dir = dirs.make();
      writeLock(dir, { pid: DEAD_PID, hostname: hostname() });
      const children = Array.from({ length: CONTENDERS }, () =>
        spawn(process.execPath, ['-r', REGISTER, CONTENDER, dir], {
          stdio: ['pipe', 'pipe', 'inherit'],
          env: { ...process.env, WAL_CRASH_CACHE: cache },
        }),
      );
      const outputs = children.map(lines);
      const exits = children.map((c) => new Promise((r) => c.once('exit', r)));
      try {
        await until('every contender to load', () => (outputs.every((o) => o[0] === 'loaded') ? true : undefined), 60_000);
        for (const child of children) child.stdin!.write('go\n');
        const results = await until('every contender to answer', () => (outputs.every((o) => o.length >= 2) ? outputs.map((o) => o[1]) : undefined), 30_000);
        const winners = results.filter((r) => r.startsWith('acquired '));
        expect(winners).toHaveLength(1);
        const winner = Number(winners[0].split(' ')[1]);
        for (const loser of results.filter((r) => !r.startsWith('acquired '))) {
          expect(loser).toMatch(new RegExp(`^refused WalLockedError: WAL directory .* is in use by another process \\((pid ${winner} on host|several processes are contending)`));
        }
        expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(winner);
        expect(readdirSync(dir)).toEqual([LOCK_FILE]);
      } finally {
        for (const child of children) child.stdin!.end();
        await Promise.all(exits);
      }
    }
  }, 120_000);
});

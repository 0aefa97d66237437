import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TempDirs } from '../../../test/support/wal-test-helpers';
import { DirLock, LOCK_FILE } from './dir-lock';
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

describe('DirLock', () => {
  it('writes LOCK with this pid and host, and removes it on release', async () => {
    const dir = dirs.make();
    const lock = await acquire(dir);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, hostname: hostname() });
    await lock.release();
    expect(readdirSync(dir)).toEqual([]);
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

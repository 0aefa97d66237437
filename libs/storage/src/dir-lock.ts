import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { WalLockedError } from './errors';
import { isErrno } from './durable-fs';

export const LOCK_FILE = 'LOCK';

/** What a lock file says about its holder (JSON, one line). */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** The kernel's boot id: a lock written before the machine last booted is stale whatever it says. */
  bootId?: string;
  /** Random per acquisition, so a takeover can tell the stale lock it judged from a fresh one. */
  nonce: string;
  startedAt: string;
}

export interface DirLockOptions {
  /**
   * A lock written on another host (another container, say) cannot be checked by pid. It is alive while its
   * holder refreshes its mtime (every staleAfterMs / 3) and stale once older than this. Default 10 s.
   */
  staleAfterMs?: number;
  /** Called when a stale lock is taken over. */
  warn?: (message: string) => void;
}

/**
 * An exclusive lock on a directory, so two nodes never write the same WAL.
 *
 * Node has no flock(2), so this is a lock file: `LOCK`, holding the holder's pid, host name and boot id.
 * It is written whole to a private temporary file and then hard-linked to `LOCK`, which fails if `LOCK`
 * exists: the file appears atomically and complete, and only one contender can create it.
 *
 * A `LOCK` left behind by a process that died without releasing it (SIGKILL, power loss) is stale and is
 * taken over when: it was written before the last boot; or it names this host and a pid that is not running
 * (or this very pid, which a restarted container's PID 1 reuses, since this process does not hold it); or
 * it names another host and its holder stopped refreshing its mtime for `staleAfterMs`.
 *
 * Limits (docs/storage.md): hosts sharing a host name but not a pid namespace (containers with host
 * networking) see each other's pids as dead; a shared network file system needs synchronised clocks for
 * the mtime rule, and link(2) atomicity, which NFSv3+ provides.
 */
export class DirLock {
  /** Directories (real paths) locked by this process: a second open in the same process fails too. */
  private static readonly held = new Set<string>();

  private heartbeat?: NodeJS.Timeout;
  private released = false;

  private constructor(
    readonly dir: string,
    private readonly key: string,
    private readonly nonce: string,
    refreshMs: number,
  ) {
    const path = join(dir, LOCK_FILE);
    this.heartbeat = setInterval(() => {
      const now = new Date();
      fs.utimes(path, now, now, () => undefined);
    }, refreshMs);
    this.heartbeat.unref();
  }

  /** Takes the lock on `dir` (which must exist) or throws WalLockedError naming the holder. */
  static async acquire(dir: string, options: DirLockOptions = {}): Promise<DirLock> {
    const staleAfterMs = options.staleAfterMs ?? 10_000;
    const key = await fs.promises.realpath(dir);
    if (DirLock.held.has(key)) {
      throw new WalLockedError(dir, `this process, pid ${process.pid}, has it open already`, 'close that Wal first');
    }
    DirLock.held.add(key); // reserved synchronously: a concurrent acquire in this process fails above
    try {
      const nonce = randomBytes(8).toString('hex');
      await DirLock.take(dir, nonce, staleAfterMs, options.warn ?? (() => undefined));
      return new DirLock(dir, key, nonce, Math.max(100, Math.floor(staleAfterMs / 3)));
    } catch (err) {
      DirLock.held.delete(key);
      throw err;
    }
  }

  /** Removes the lock file if it is still ours. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    const path = join(this.dir, LOCK_FILE);
    try {
      const holder = parseHolder(await fs.promises.readFile(path, 'utf8'));
      if (holder?.nonce === this.nonce) await fs.promises.unlink(path);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    } finally {
      DirLock.held.delete(this.key);
    }
  }

  private static async take(dir: string, nonce: string, staleAfterMs: number, warn: (m: string) => void): Promise<void> {
    const path = join(dir, LOCK_FILE);
    const me: LockHolder = {
      pid: process.pid,
      hostname: hostname(),
      bootId: bootId(),
      nonce,
      startedAt: new Date().toISOString(),
    };
    const tmp = join(dir, `${LOCK_FILE}.${process.pid}.${nonce}.tmp`);
    await fs.promises.writeFile(tmp, JSON.stringify(me) + '\n', { flag: 'wx' });
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await fs.promises.link(tmp, path);
          return;
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err;
        }
        let text: string;
        let mtimeMs: number;
        try {
          text = await fs.promises.readFile(path, 'utf8');
          mtimeMs = (await fs.promises.stat(path)).mtimeMs;
        } catch (err) {
          if (isErrno(err, 'ENOENT')) continue; // released meanwhile: try again
          throw err;
        }
        const holder = parseHolder(text);
        const verdict = judge(holder, mtimeMs, me, staleAfterMs);
        if (verdict.alive) throw new WalLockedError(dir, describe(holder), verdict.hint);
        // Stale: move it aside under a private name, then check we moved the lock we judged and not a
        // fresh one a faster contender put there in between (if so, put it back and give up).
        const aside = join(dir, `${LOCK_FILE}.stale.${process.pid}.${nonce}`);
        try {
          await fs.promises.rename(path, aside);
        } catch (err) {
          if (isErrno(err, 'ENOENT')) continue;
          throw err;
        }
        const movedText = await fs.promises.readFile(aside, 'utf8');
        if (movedText !== text) {
          await fs.promises.link(aside, path).catch(() => undefined);
          await fs.promises.unlink(aside);
          throw new WalLockedError(dir, describe(parseHolder(movedText)));
        }
        await fs.promises.unlink(aside);
        warn(`took over the stale lock ${path} (${describe(holder)}): ${verdict.reason}`);
      }
      throw new WalLockedError(dir, 'several processes are contending for the lock');
    } finally {
      await fs.promises.unlink(tmp).catch(() => undefined);
    }
  }
}

type Verdict = { alive: true; hint?: string } | { alive: false; reason: string };

function judge(holder: LockHolder | undefined, mtimeMs: number, me: LockHolder, staleAfterMs: number): Verdict {
  // A lock file is always complete when it appears (link of a finished file); an unreadable one was cut by
  // a power loss or written by hand.
  if (!holder) return { alive: false, reason: 'the lock file is unreadable' };
  if (holder.bootId && me.bootId && holder.bootId !== me.bootId) {
    return { alive: false, reason: 'it was written before this machine last booted' };
  }
  if (holder.hostname === me.hostname) {
    if (holder.pid === me.pid) return { alive: false, reason: `pid ${holder.pid} is this process, which does not hold it` };
    return pidAlive(holder.pid) ? { alive: true } : { alive: false, reason: `no process ${holder.pid} is running` };
  }
  const ageMs = Date.now() - mtimeMs;
  if (ageMs < staleAfterMs) {
    return {
      alive: true,
      hint:
        `it was refreshed ${Math.round(ageMs / 1000)} s ago; stop the other process or point WAL_DIR elsewhere ` +
        `(if that process is gone, the lock is taken over once it is ${Math.round(staleAfterMs / 1000)} s old)`,
    };
  }
  return { alive: false, reason: `its holder on another host stopped refreshing it ${Math.round(ageMs / 1000)} s ago` };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM'); // exists, owned by someone else
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.nonce === 'string') {
      return v as LockHolder;
    }
  } catch {
    // unreadable
  }
  return undefined;
}

function describe(holder: LockHolder | undefined): string {
  return holder ? `pid ${holder.pid} on host ${holder.hostname}, since ${holder.startedAt}` : 'unknown holder';
}

let cachedBootId: string | undefined | null = null;
function bootId(): string | undefined {
  if (cachedBootId === null) {
    try {
      cachedBootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBootId = undefined;
    }
  }
  return cachedBootId;
}

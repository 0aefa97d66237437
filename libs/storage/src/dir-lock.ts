import { createHash, randomBytes } from 'node:crypto';
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
  /**
   * The holder's start time in clock ticks after boot (`/proc/<pid>/stat` field 22; Linux only). A process
   * that later gets the same pid has another start time, so a recycled pid does not keep a stale lock alive.
   */
  pidStartTime?: number;
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
 * Node has no flock(2), so this is a lock file: `LOCK`, holding the holder's pid (and, on Linux, the pid's
 * start time), host name and boot id. It is written whole to a private temporary file and then hard-linked
 * to `LOCK`, which fails if `LOCK` exists: the file appears atomically and complete, and only one contender
 * can create it.
 *
 * A `LOCK` left behind by a process that died without releasing it (SIGKILL, power loss) is stale and is
 * taken over at once when: it was written before the last boot; or it names this host and a process that
 * is gone: not running, exited but not yet reaped by its parent (a zombie), or a pid now used by a later
 * process (another start time); or it names this very pid (which a restarted container's PID 1 reuses,
 * since this process does not hold it); or it names another host and its holder stopped refreshing its
 * mtime for `staleAfterMs`. How a takeover stays atomic between contenders: see replaceStale().
 *
 * Limits (docs/storage.md): hosts sharing a host name but not a pid namespace (containers with host
 * networking) see each other's pids as dead; a shared network file system needs synchronised clocks for
 * the mtime rule, and link(2) and rename(2) atomicity, which NFSv3+ provides.
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
      pidStartTime: readProcStat(process.pid)?.startTime,
      nonce,
      startedAt: new Date().toISOString(),
    };
    const tmp = join(dir, `${LOCK_FILE}.${process.pid}.${nonce}.tmp`);
    await fs.promises.writeFile(tmp, JSON.stringify(me) + '\n', { flag: 'wx' });
    const takeover: Takeover = { dir, tmp, me, staleAfterMs };
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        try {
          await fs.promises.link(tmp, path);
          await DirLock.sweep(dir, warn);
          return;
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err;
        }
        const found = await readLockFile(path);
        if (!found) continue; // released meanwhile: try again
        const holder = parseHolder(found.text);
        const verdict = judge(holder, found.mtimeMs, me, staleAfterMs);
        if (verdict.alive) throw new WalLockedError(dir, describe(holder), verdict.hint);
        if (await DirLock.replaceStale(takeover, path, found.text, 0)) {
          warn(`took over the stale lock ${path} (${describe(holder)}): ${verdict.reason}`);
          await DirLock.sweep(dir, warn);
          return;
        }
      }
      throw new WalLockedError(dir, 'several processes are contending for the lock');
    } finally {
      await fs.promises.unlink(tmp).catch(() => undefined);
    }
  }

  /**
   * Once the lock is ours: removes the temporary records (`LOCK.<pid>.<nonce>.tmp`) that contenders killed
   * while taking the lock left behind, those of this host whose process is gone. A live contender's is left
   * alone (it removes its own when it gives up). Failures are ignored: the files are only clutter.
   */
  private static async sweep(dir: string, warn: (m: string) => void): Promise<void> {
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch {
      return;
    }
    const here = hostname();
    for (const name of names) {
      const m = /^LOCK\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name);
      if (!m || Number(m[1]) === process.pid) continue;
      const found = await readLockFile(join(dir, name));
      const holder = found && parseHolder(found.text);
      if (!holder || holder.hostname !== here || checkProcess(holder.pid, holder.pidStartTime).running) continue;
      await fs.promises.unlink(join(dir, name)).then(
        () => warn(`removed ${name}, left by process ${holder.pid} that was killed while taking the lock`),
        () => undefined,
      );
    }
  }

  /**
   * Replaces `target`, a file judged stale whose content was `staleText`, by our record, atomically and only
   * if no other contender replaced it first. Returns true if `target` is now ours; false if another
   * contender is replacing it or did, or it changed or vanished: the caller looks again.
   *
   * Why claims: the only compare-and-swap a file system offers is "create if absent" (link, O_EXCL, mkdir).
   * Renaming the stale file aside (or unlinking it) and then linking a new one is two steps: a second
   * contender that judged the same stale file can remove the first one's fresh lock in between, and two
   * processes then both believe they hold it. So whoever wants to replace a stale file must first create
   * `LOCK.takeover.<fingerprint of the stale content>` (a hard link of its record: exclusive, atomic). One
   * contender wins that claim for that stale content; it re-reads `target` (still the stale content? only
   * a claim holder may replace it, so it stays so) and renames its claim over `target`: rename(2) replaces
   * atomically, so `target` is never absent and never anyone else's, and the claim name is consumed with it.
   * A loser finds the claim held by a live process and looks again shortly (by then the lock is the
   * winner's, alive: WalLockedError). A claim whose holder died between claiming and renaming is itself a
   * stale file and is replaced by the same rule, one level down (bounded by MAX_CLAIM_DEPTH).
   */
  private static async replaceStale(t: Takeover, target: string, staleText: string, depth: number): Promise<boolean> {
    const claim = join(t.dir, `${LOCK_FILE}.takeover.${fingerprint(staleText)}`);
    try {
      await fs.promises.link(t.tmp, claim);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      const other = await readLockFile(claim);
      if (!other) return false; // consumed or given up meanwhile
      const verdict = judge(parseHolder(other.text), other.mtimeMs, t.me, t.staleAfterMs);
      if (verdict.alive || depth >= MAX_CLAIM_DEPTH) {
        await sleep(CONTENTION_PAUSE_MS); // another contender is replacing it right now: let it finish
        return false;
      }
      // Its claimant died between claiming and replacing: take the claim over, by the same rule.
      if (!(await DirLock.replaceStale(t, claim, other.text, depth + 1))) return false;
    }
    // The claim is ours, so nobody else may replace `target` while it still has the stale content.
    if ((await readLockFile(target))?.text !== staleText) {
      await fs.promises.unlink(claim).catch(() => undefined);
      return false;
    }
    await fs.promises.rename(claim, target);
    return true;
  }
}

const MAX_ATTEMPTS = 10;
const MAX_CLAIM_DEPTH = 3;
const CONTENTION_PAUSE_MS = 20;

interface Takeover {
  dir: string;
  /** Our lock record, complete, under a private name. */
  tmp: string;
  me: LockHolder;
  staleAfterMs: number;
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
    const check = checkProcess(holder.pid, holder.pidStartTime);
    return check.running ? { alive: true } : { alive: false, reason: check.reason };
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

export type ProcessCheck = { running: true } | { running: false; reason: string };

/**
 * Whether `pid` on this host is a running process, and the same one that started at `startTime` (clock ticks
 * after boot) if given. On Linux from `/proc/<pid>/stat`: a zombie (state Z, or X: exited, not yet reaped by
 * its parent, which is the state a SIGKILLed node is in until its supervisor waits for it) is not running,
 * though kill(pid, 0) still succeeds on it. Where that file cannot be read (not Linux, or /proc mounted with
 * hidepid and another user's process) it falls back to kill(pid, 0), which cannot see zombies or pid reuse.
 */
export function checkProcess(pid: number, startTime?: number): ProcessCheck {
  const stat = readProcStat(pid);
  if (stat) {
    if (stat.state === 'Z' || stat.state === 'X') {
      return { running: false, reason: `process ${pid} has exited (a zombie its parent has not reaped yet)` };
    }
    if (startTime !== undefined && stat.startTime !== startTime) {
      return {
        running: false,
        reason: `pid ${pid} now belongs to another process (started at tick ${stat.startTime}, the holder at tick ${startTime})`,
      };
    }
    return { running: true };
  }
  try {
    process.kill(pid, 0);
    return { running: true };
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return isErrno(err, 'EPERM') ? { running: true } : { running: false, reason: `no process ${pid} is running` };
  }
}

/**
 * Fields 3 (state) and 22 (start time) of `/proc/<pid>/stat`, or undefined if it cannot be read. Field 2 is
 * the command name in parentheses, which may itself contain spaces and parentheses: fields are counted from
 * the last `)`.
 */
export function readProcStat(pid: number): { state: string; startTime: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3
  const startTime = Number(fields[19]);
  if (!fields[0] || !Number.isSafeInteger(startTime)) return undefined;
  return { state: fields[0], startTime };
}

/** A lock file's text and mtime, read through one descriptor; undefined if it does not exist. */
async function readLockFile(path: string): Promise<{ text: string; mtimeMs: number } | undefined> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  try {
    const { mtimeMs } = await handle.stat();
    return { text: await handle.readFile('utf8'), mtimeMs };
  } finally {
    await handle.close();
  }
}

/** Names a claim after the stale content it replaces (which includes the holder's random nonce). */
function fingerprint(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (Number.isSafeInteger(v.pid) && v.pid! > 0 && typeof v.hostname === 'string' && typeof v.nonce === 'string') {
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

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOCK = join(tmpdir(), 'raftkv-readme-ports.lock');

function holderAlive(): boolean {
  try {
    process.kill(Number(readFileSync(join(LOCK, 'pid'), 'utf8')), 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The README walkthroughs run on the README's own ports (3001...) when they are free, and `npm test` runs
 * several suites at once: a README suite holds this lock from picking its ports until its cluster is gone, so
 * two of them never pick the same free ports (or one's bare `kvctl` reach the other's cluster). A lock left by
 * a process that died is taken over.
 */
export async function claimReadmePorts(timeoutMs = 170_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      return () => rmSync(LOCK, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // Just made by its holder (no pid yet), or held by a live process: wait; a dead holder's lock goes.
      await new Promise((resolve) => setTimeout(resolve, 250));
      try {
        if (!holderAlive() && readFileSync(join(LOCK, 'pid'), 'utf8') !== '') rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // The pid file is not there yet, or the lock was just released.
      }
      if (Date.now() > deadline) throw new Error(`the README ports lock ${LOCK} was held for ${timeoutMs} ms`);
    }
  }
}

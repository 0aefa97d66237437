/**
 * Child process of dir-lock.spec.ts: `node -r test/e2e/wal-crash-register.js dir-lock-contender.ts <dir>`.
 * It loads, prints `loaded`, waits for a line on stdin, then tries to take the lock on <dir> and prints
 * `acquired <pid>` or `refused <error name>: <message>`. It keeps the lock until stdin closes, then releases
 * it and exits, so that contenders that lost see the winner alive.
 */
import { DirLock } from '../../libs/storage/src/dir-lock';

async function main(): Promise<void> {
  const dir = process.argv[2];
  process.stdout.write('loaded\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  let lock: DirLock | undefined;
  try {
    lock = await DirLock.acquire(dir, { warn: () => undefined });
    process.stdout.write(`acquired ${process.pid}\n`);
  } catch (err) {
    process.stdout.write(`refused ${(err as Error).name}: ${(err as Error).message}\n`);
  }
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
  await lock?.release();
}

void main();

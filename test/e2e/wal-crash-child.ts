/**
 * Child process of wal-crash.e2e-spec.ts: `node -r ./wal-crash-register.js wal-crash-child.ts <dir> <mode> <seed>`.
 * It loads, then waits for a line on stdin before it opens the WAL.
 *
 * mode `append`: opens the WAL, prints `ready <last> <term> <commit>`, then saves forever (up to 4 saves in
 * flight; now and then a new term that overwrites part of the uncommitted suffix) and prints, once each save
 * is durable, `D <from> <to> <term> <commit> <vote>`. The parent kills it with SIGKILL at a random moment.
 * Entry data is derived from index and term (see payloadByte), so the parent can check it byte by byte.
 *
 * mode `hold`: opens the WAL, prints `ready`, and waits (to test the directory lock).
 *
 * Errors opening the WAL go to stderr as one line: `<name>: <message>`; exit code 2.
 */
import { EntryType, HardState } from '@app/consensus';
import { Wal } from '@app/storage';

export function payloadByte(index: number, term: number, k: number): number {
  return (index * 31 + term * 17 + k * 7) & 0xff;
}

export const CRASH_SEGMENT_SIZE = 32 * 1024;

async function main(): Promise<void> {
  const [dir, mode, seedArg] = process.argv.slice(2);
  // Loaded: wait for the parent's go (it starts the next child while the current one runs).
  await new Promise((resolve) => process.stdin.once('data', resolve));
  let wal: Wal;
  try {
    wal = await Wal.open(dir, {
      segmentSize: CRASH_SEGMENT_SIZE,
      payloadCacheBytes: 256 * 1024,
      logger: { log: () => undefined, warn: (m) => process.stderr.write(`warn: ${m}\n`), error: (m) => process.stderr.write(`error: ${m}\n`) },
    });
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`${e.name}: ${e.message}\n`);
    process.exit(2);
  }
  const { hardState } = wal.storage.initialState();
  process.stdout.write(`ready ${wal.storage.lastIndex()} ${hardState.term} ${hardState.commit}\n`);
  if (mode === 'hold') {
    setInterval(() => undefined, 1000);
    return;
  }

  let seed = Number(seedArg) >>> 0 || 1;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  let last = wal.storage.lastIndex();
  let term = Math.max(1, hardState.term);
  let commit = hardState.commit;
  let inFlight = 0;

  const pump = (): void => {
    while (inFlight < 4) {
      let from = last + 1;
      if (last > commit && rand(8) === 0) {
        term++;
        from = commit + 1 + rand(last - commit);
      }
      const count = 1 + rand(8);
      const batch = [];
      for (let i = from; i < from + count; i++) {
        const data = Buffer.allocUnsafe(rand(64));
        for (let k = 0; k < data.length; k++) data[k] = payloadByte(i, term, k);
        batch.push({ index: i, term, type: EntryType.Normal, data });
      }
      const to = from + count - 1;
      last = to;
      commit = Math.min(last, commit + rand(count + 1));
      const hs: HardState = { term, vote: `n${term % 3}`, commit };
      inFlight++;
      wal.save(hs, batch).then(
        () => {
          process.stdout.write(`D ${from} ${to} ${hs.term} ${hs.commit} ${hs.vote}\n`);
          inFlight--;
          pump();
        },
        (err: Error) => {
          process.stderr.write(`save failed: ${err.message}\n`);
          process.exit(1);
        },
      );
    }
  };
  pump();
}

if (require.main === module) void main();

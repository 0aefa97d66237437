/**
 * Child process of snapshot-crash.e2e-spec.ts:
 * `node -r ./wal-crash-register.js snapshot-crash-child.ts <dir> <seed> <crash point> <overwrite>`.
 * It loads, then waits for a line on stdin before it opens the storage (openNodeStorage).
 *
 * It plays a node's storage side: it saves entries (up to 4 saves in flight) in a term one above the
 * recovered one, and moves the commit index; with <overwrite> `yes`, now and then a new term overwrites part
 * of the uncommitted suffix (as a follower does for a new leader), which may reach back into an earlier WAL
 * segment; it "applies" what is committed to a
 * toy state machine (a SHA-256 chain over the entries: see chainStep), and every SNAPSHOT_EVERY applied
 * entries it takes a snapshot through createSnapshot() with a view whose content encodes that state (see
 * snapshotChunk: SNAPSHOT_CHUNKS chunks, a few MiB, so that writing it takes a while), then compacts.
 * On start it restores the state from the recovered snapshot's content and replays the committed log after
 * it, as a node does.
 *
 * It prints on stdout, only once each thing is durable or just before a step starts:
 *   ready <first> <last> <snapshot index> <snapshot term> <commit>   storage opened and state restored
 *   D <from> <to> <term> <commit> <vote>   a save is durable
 *   W <index> <term>                       a snapshot is about to be written (createSnapshot called)
 *   S <index> <term>                       that snapshot is durable and recorded (its callback)
 *   C <index> <up to>                      compaction up to <up to> is about to start
 *   X <crash point>                        it kills itself now (below)
 *
 * Crash points: the child SIGKILLs itself at an exact step of the order of operations of docs/storage.md,
 * by wrapping fs.promises.rename / unlink (the storage's calls go through them):
 *   after-rename     right after a snapshot's temporary file is renamed to <index>-<term>.snap, before
 *                    the WAL records it
 *   before-prune     right before an old snapshot file is deleted: the newest is recorded, three are on disk
 *   mid-compaction:k right after the k-th WAL segment deleted by this process (more may be due)
 *   none             only the parent kills it
 *
 * Errors go to stderr as one line; exit code 2 when opening fails, 1 when a save or snapshot fails.
 */
import { EntryType, HardState } from '@app/consensus';
import type { StateMachineView } from '@app/consensus/ports';
import { NodeStorage, openNodeStorage } from '@app/storage';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

export const CRASH_SEGMENT_SIZE = 1024;
export const SNAPSHOT_EVERY = 60;
export const SNAPSHOT_CHUNKS = 40;
export const SNAPSHOT_CHUNK_BYTES = 64 * 1024;
/** Compaction keeps up to this many entries behind the snapshot (a random amount each time). */
export const COMPACT_SLACK = 20;

export function payloadByte(index: number, term: number, k: number): number {
  return (index * 31 + term * 17 + k * 7) & 0xff;
}

/** Entry (index, term)'s data: its length and bytes derive from both, so the parent can rebuild it. */
export function payload(index: number, term: number): Buffer {
  const data = Buffer.allocUnsafe((index * 13 + term * 7) % 48);
  for (let k = 0; k < data.length; k++) data[k] = payloadByte(index, term, k);
  return data;
}

/** The state after applying entry (index, term, data) to `state`: a hash chain, 32 zero bytes before entry 1. */
export function chainStep(state: Buffer, index: number, term: number, data: Uint8Array): Buffer {
  const head = Buffer.alloc(16);
  head.writeUIntLE(index, 0, 6);
  head.writeUIntLE(term, 8, 6);
  return createHash('sha256').update(state).update(head).update(data).digest();
}

export const EMPTY_STATE: Buffer = Buffer.alloc(32);

/**
 * Chunk k of the snapshot of `state` at `index`: u32 k, u64 index, the 32-byte state, then filler derived
 * from both (sha256(state, k) repeated), SNAPSHOT_CHUNK_BYTES in all.
 */
export function snapshotChunk(state: Buffer, index: number, k: number): Buffer {
  const chunk = Buffer.allocUnsafe(SNAPSHOT_CHUNK_BYTES);
  chunk.writeUInt32LE(k, 0);
  chunk.writeUIntLE(index, 4, 6);
  chunk.writeUInt16LE(0, 10);
  state.copy(chunk, 12);
  const seed = Buffer.alloc(4);
  seed.writeUInt32LE(k, 0);
  chunk.fill(createHash('sha256').update(state).update(seed).digest(), 44);
  return chunk;
}

/**
 * Reads a snapshot's content as snapshotChunk wrote it: the state and index it encodes, or a description of
 * what is wrong with it.
 */
export async function readSnapshotContent(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<{ index: number; state: Buffer } | string> {
  let k = 0;
  let state: Buffer | undefined;
  let index = 0;
  for await (const c of chunks) {
    const chunk = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    if (k === 0) {
      if (chunk.length < 44) return `chunk 0 is ${chunk.length} bytes`;
      index = chunk.readUIntLE(4, 6);
      state = Buffer.from(chunk.subarray(12, 44));
    }
    if (!chunk.equals(snapshotChunk(state!, index, k))) return `chunk ${k} of ${SNAPSHOT_CHUNKS} is not the one for state ${state!.toString('hex').slice(0, 16)} at ${index}`;
    k++;
  }
  if (k !== SNAPSHOT_CHUNKS) return `${k} chunks instead of ${SNAPSHOT_CHUNKS}`;
  return { index, state: state! };
}

function view(state: Buffer, index: number): StateMachineView {
  return {
    *chunks() {
      for (let k = 0; k < SNAPSHOT_CHUNKS; k++) yield snapshotChunk(state, index, k);
    },
    release() {},
  };
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);

function die(point: string): never {
  say(`X ${point}`);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

/** Wraps the storage's rename and unlink calls to die at the chosen crash point. */
function armCrashPoint(point: string): void {
  const fsp = fs.promises;
  const rename = fsp.rename;
  const unlink = fsp.unlink;
  const [kind, arg] = point.split(':');
  let walUnlinks = 0;
  fsp.rename = async (from: fs.PathLike, to: fs.PathLike) => {
    await rename(from, to);
    if (kind === 'after-rename' && String(from).endsWith('.tmp') && String(to).endsWith('.snap')) die(point);
  };
  fsp.unlink = async (path: fs.PathLike) => {
    if (kind === 'before-prune' && String(path).endsWith('.snap')) die(point);
    await unlink(path);
    if (kind === 'mid-compaction' && String(path).endsWith('.wal') && ++walUnlinks === Number(arg)) die(point);
  };
}

async function main(): Promise<void> {
  const [dir, seedArg, crashPoint, overwrite] = process.argv.slice(2);
  await new Promise((resolve) => process.stdin.once('data', resolve));
  let node: NodeStorage;
  try {
    node = await openNodeStorage(dir, {
      segmentSize: CRASH_SEGMENT_SIZE,
      payloadCacheBytes: 64 * 1024,
      logger: { log: () => undefined, warn: (m) => process.stderr.write(`warn: ${m}\n`), error: (m) => process.stderr.write(`error: ${m}\n`) },
    });
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`${e.name}: ${e.message}\n`);
    process.exit(2);
  }
  const storage = node.storage;
  const { hardState } = storage.initialState();
  const snapshot = storage.snapshot().metadata;

  // Restore the state machine from the snapshot, then replay the committed log after it.
  let state: Buffer = EMPTY_STATE;
  let applied = 0;
  if (snapshot.index > 0) {
    const content = await readSnapshotContent(node.snapshotContent());
    if (typeof content === 'string' || content.index !== snapshot.index) {
      process.stderr.write(`the snapshot at ${snapshot.index} does not restore: ${typeof content === 'string' ? content : `it encodes index ${content.index}`}\n`);
      process.exit(1);
    }
    state = content.state;
    applied = snapshot.index;
  }
  const apply = (upTo: number): void => {
    while (applied < upTo) {
      const batch = storage.entries(applied + 1, Math.min(upTo, applied + 256) + 1);
      for (const e of batch) state = chainStep(state, e.index, e.term, e.data);
      applied += batch.length;
    }
  };
  apply(hardState.commit);
  say(`ready ${storage.firstIndex()} ${storage.lastIndex()} ${snapshot.index} ${snapshot.term} ${hardState.commit}`);
  armCrashPoint(crashPoint);

  let seed = Number(seedArg) >>> 0 || 1;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  let last = storage.lastIndex();
  let term = hardState.term + 1;
  let commit = hardState.commit;
  let inFlight = 0;
  let snapshotting = false;
  let newestSnapshot = snapshot.index;
  const fail = (what: string, err: Error): never => {
    process.stderr.write(`${what} failed: ${err.message}\n`);
    process.exit(1);
  };

  const maybeSnapshot = (): void => {
    if (snapshotting || applied - newestSnapshot < SNAPSHOT_EVERY) return;
    const index = applied;
    const t = storage.term(index);
    snapshotting = true;
    say(`W ${index} ${t}`);
    node.createSnapshot({ index, term: t, confState: { voters: ['n1'] } }, view(state, index), (err) => {
      if (err) fail(`snapshot at ${index}`, err);
      snapshotting = false;
      newestSnapshot = index;
      say(`S ${index} ${t}`);
      const upTo = index - rand(COMPACT_SLACK);
      say(`C ${index} ${upTo}`);
      node.compact(upTo);
      maybeSnapshot();
      pump();
    });
  };

  const pump = (): void => {
    // Saves wait while a snapshot is being written and the state is far ahead of the newest one (a node would
    // go on; here it keeps the log, and the parent's work after each kill, to a few snapshots' worth).
    while (inFlight < 4 && applied - newestSnapshot < 2 * SNAPSHOT_EVERY) {
      let from = last + 1;
      if (overwrite === 'yes' && last > commit && rand(8) === 0) {
        term++;
        from = commit + 1 + rand(last - commit);
      }
      const count = 1 + rand(8);
      const batch = [];
      for (let i = from; i < from + count; i++) batch.push({ index: i, term, type: EntryType.Normal, data: payload(i, term) });
      const to = from + count - 1;
      last = to;
      // The commit index trails the last entry by a few (a leader waiting for its followers).
      commit = Math.max(commit, last - rand(12));
      const hs: HardState = { term, vote: `n${term % 3}`, commit };
      inFlight++;
      node.save(hs, batch, (err) => {
        if (err) fail('save', err);
        say(`D ${from} ${to} ${hs.term} ${hs.commit} ${hs.vote}`);
        inFlight--;
        // Saves resolve in order: everything up to this commit is durable now.
        apply(hs.commit);
        maybeSnapshot();
        pump();
      });
    }
  };
  maybeSnapshot();
  pump();
}

if (require.main === module) void main();

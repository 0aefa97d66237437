/**
 * Snapshots and compaction under real crashes: a child process (snapshot-crash-child.ts) runs a node's
 * storage (openNodeStorage) on one directory, saving entries, taking snapshots whose content encodes the
 * applied state, and compacting after each; it reports on stdout only what is durable. It is SIGKILLed over
 * and over, and restarted at once on the same directory. The kills are aimed at each step of the order of
 * operations in docs/storage.md ("Each crash point, and why it recovers"), one kind per cycle in a seeded
 * shuffled order:
 *
 *   random          at a random moment
 *   opening         while it opens (recovery, removing temporary files, recording a snapshot)
 *   writing         a random few ms after it announced a snapshot: writing the file, fsync, rename, record
 *   snapshotted     as soon as a snapshot is reported durable: pruning old files, or just before compacting
 *   compacting      as soon as it announced a compaction: deleting segments
 *   after-rename    (the child kills itself) the snapshot file renamed into place, not yet recorded
 *   before-prune    (the child kills itself) recorded, three files on disk, the oldest not yet deleted
 *   mid-compaction  (the child kills itself) after its first or second segment deletion
 *
 * After each kill the parent opens the directory itself and checks: no temporary file survived; at most two
 * snapshot files; the recovered snapshot is at least the newest one reported durable, and its content is the
 * state at its index as computed from the entries reported; every entry reported durable above it is in the
 * log (unless a later term overwrote it above the commit index) with its bytes; the log continues right
 * from the snapshot; the hard state is at least what was reported. Then the next child continues from there.
 *
 * Two workloads: appends only (4 kills of each kind, 32 in all; compaction must keep working through them), and
 * new terms that overwrite uncommitted entries, across segment starts (3 of each kind, 24): every crash point
 * is armed 7 times a run, and each kill costs a child's start (~1.5 s on a busy machine). The last test pins down a production
 * bug the second workload showed: one such overwrite stops the node's compaction for good.
 *
 * Reproduce a run with SNAPSHOT_CRASH_SEED=<seed> (printed on failure and at the end).
 */
import { EntryType } from '@app/consensus';
import { NodeStorage, openNodeStorage, SNAPSHOT_DIR } from '@app/storage';
import { ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { crashChildren } from '../support/crash-children';
import { chainStep, CRASH_SEGMENT_SIZE, EMPTY_STATE, payload, readSnapshotContent, SNAPSHOT_CHUNKS, snapshotChunk } from './snapshot-crash-child';

jest.setTimeout(240_000);

const CHILD = join(__dirname, 'snapshot-crash-child.ts');
const REGISTER = join(__dirname, 'wal-crash-register.js');
const KINDS = ['random', 'opening', 'writing', 'snapshotted', 'compacting', 'after-rename', 'before-prune', 'mid-compaction'] as const;
type Kind = (typeof KINDS)[number];
/** A kill waiting for a line that does not come (the child is slow) happens anyway after this. */
const FALLBACK_MS = 5000;

const crash = crashChildren('snapshot-crash-');
const { children, tempDir } = crash;

interface Child {
  process: ChildProcess;
  lines: string[];
  stderr: () => string;
  /** Called with each complete stdout line as it arrives. */
  onLine?: (line: string) => void;
  go: () => void;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startChild(dir: string, seed: number, crashPoint: string, overwrite: boolean): Child {
  const proc = spawn(process.execPath, ['-r', REGISTER, CHILD, dir, String(seed), crashPoint, overwrite ? 'yes' : 'no'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, WAL_CRASH_CACHE: crash.compileCache },
  });
  children.add(proc);
  let partial = '';
  let stderr = '';
  const child: Child = {
    process: proc,
    lines: [],
    stderr: () => stderr,
    go: () => void proc.stdin!.write('go\n', () => undefined),
    closed: new Promise((resolve) =>
      proc.on('close', (code, signal) => {
        children.delete(proc);
        resolve({ code, signal });
      }),
    ),
  };
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      child.lines.push(line);
      child.onLine?.(line);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  proc.stdin!.on('error', () => undefined);
  return child;
}

/** What the children reported durable, with the log's overwrite rule; and the applied state it implies. */
class Model {
  /** Term of each entry known: reported durable, or found by a recovery (compacted ones are kept). */
  readonly terms: number[] = [];
  last = 0;
  term = 0;
  vote = '';
  commit = 0;
  /** The newest snapshot reported durable. */
  snapshot = 0;
  /** states[i]: the state after applying entries 1..i (i at most commit: committed entries never change). */
  private readonly states: Buffer[] = [EMPTY_STATE];

  report(from: number, to: number, term: number, commit: number, vote: string): void {
    this.terms.length = Math.min(this.terms.length, from);
    for (let i = from; i <= to; i++) this.terms[i] = term;
    this.last = to;
    this.term = term;
    this.commit = commit;
    this.vote = vote;
  }

  /** The state after entries 1..index, from the terms known (payloads derive from index and term). */
  stateAt(index: number): Buffer | string {
    if (index > this.commit) return `index ${index} is beyond the commit index reported (${this.commit})`;
    for (let i = this.states.length; i <= index; i++) {
      const t = this.terms[i];
      if (t === undefined) return `the term of entry ${i} was never reported`;
      this.states[i] = chainStep(this.states[i - 1], i, t, payload(i, t));
    }
    return this.states[index];
  }

  /** Continues from what recovery found. */
  reset(node: NodeStorage): void {
    const s = node.storage;
    this.terms.length = Math.min(this.terms.length, s.lastIndex() + 1);
    for (let i = s.firstIndex(); i <= s.lastIndex(); i++) this.terms[i] = s.term(i);
    this.last = s.lastIndex();
    const { hardState } = s.initialState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.commit = hardState.commit;
  }
}

/** Every promise the children made holds in the recovered storage; returns the problems found. */
async function verify(dir: string, node: NodeStorage, model: Model, checkedUpTo: number): Promise<string[]> {
  const problems: string[] = [];
  const s = node.storage;
  const first = s.firstIndex();
  const last = s.lastIndex();
  const { hardState } = s.initialState();
  const snap = s.snapshot().metadata;

  const snapFiles = readdirSync(join(dir, SNAPSHOT_DIR));
  // (The directory lock's own LOCK.<pid>.<nonce>.tmp, left by a kill while the lock was being taken, is not
  // one that open() promises to remove: docs/storage.md lists it as transient.)
  const temporary = [...snapFiles.filter((f) => f.endsWith('.tmp')), ...readdirSync(dir).filter((f) => f === 'meta.json.tmp')];
  if (temporary.length > 0) problems.push(`temporary files survived recovery: ${temporary.join(', ')}`);
  const kept = snapFiles.filter((f) => f.endsWith('.snap'));
  if (kept.length > 2) problems.push(`${kept.length} snapshot files after recovery: ${kept.join(', ')}`);
  const damaged = snapFiles.filter((f) => f.endsWith('.damaged'));
  if (damaged.length > 0) problems.push(`snapshot files set aside as damaged: ${damaged.join(', ')}`);

  if (hardState.term < model.term) problems.push(`term ${hardState.term} < reported ${model.term}`);
  if (hardState.term === model.term && hardState.vote !== model.vote) problems.push(`vote ${hardState.vote} in term ${hardState.term}, reported ${model.vote}`);
  if (hardState.commit < model.commit) problems.push(`commit ${hardState.commit} < reported ${model.commit}`);

  // The snapshot: at least the newest reported, its content the state at its index.
  if (snap.index < model.snapshot) problems.push(`recovered snapshot ${snap.index} is older than the one reported durable (${model.snapshot})`);
  if (snap.index > 0) {
    const expected = model.stateAt(snap.index);
    const content = await readSnapshotContent(node.snapshotContent());
    if (typeof expected === 'string') problems.push(`snapshot ${snap.index}: ${expected}`);
    else if (typeof content === 'string') problems.push(`snapshot ${snap.index}: ${content}`);
    else if (content.index !== snap.index || !content.state.equals(expected)) {
      problems.push(`snapshot ${snap.index} encodes the state at ${content.index}, ${content.state.equals(expected) ? 'equal' : 'unlike'} the entries reported`);
    }
    if (model.terms[snap.index] !== snap.term) problems.push(`snapshot ${snap.index} has term ${snap.term}, the entry reported has ${model.terms[snap.index]}`);
  }
  // The log continues from the snapshot, with no gap.
  if (first > 1 && snap.index < first - 1) problems.push(`the log starts at ${first} but the snapshot covers only up to ${snap.index}`);
  if (snap.index >= first && snap.index <= last && s.term(snap.index) !== snap.term) problems.push(`entry ${snap.index} has term ${s.term(snap.index)}, its snapshot ${snap.term}`);

  // Every entry reported durable above the snapshot is there, unless a later term overwrote it above the commit.
  for (let i = snap.index + 1; i <= model.last; i++) {
    const t = model.terms[i];
    if (t === undefined) continue;
    if (i <= last && i >= first && s.term(i) === t) continue;
    const m = Math.min(i, last);
    if (i <= model.commit || m < first || s.term(m) <= t) {
      problems.push(`entry ${i} of term ${t} reported durable, found ${i <= last ? `term ${s.term(i)}` : `last index ${last}`} (log [${first}, ${last}], snapshot ${snap.index})`);
      if (problems.length > 10) break;
    }
  }
  // Every entry's bytes, those not checked yet.
  let expectIndex = Math.max(first, checkedUpTo + 1);
  for (let lo = expectIndex; lo <= last; lo += 1000) {
    for (const e of s.entries(lo, Math.min(last, lo + 999) + 1)) {
      if (e.index !== expectIndex++) problems.push(`entries() returned ${e.index} where ${expectIndex - 1} was due`);
      if (!Buffer.from(e.data).equals(payload(e.index, e.term))) problems.push(`entry ${e.index} of term ${e.term}: its bytes are wrong`);
    }
  }
  return problems;
}

interface RunOptions {
  seed: number;
  kinds: readonly Kind[];
  /** Cycles of each kind. */
  perKind: number;
  /** The child's `overwrite` argument: new terms overwrite uncommitted entries, across segment starts. */
  overwrite: boolean;
}

interface RunStats {
  seed: number;
  cycles: number;
  saves: number;
  snapshots: number;
  /** Crash points reached (the child killed itself there), by kind. */
  selfKills: Record<string, number>;
  /** Kills that came from the fallback timer: the awaited line never came. */
  fallbacks: number;
  /** Recoveries that removed a temporary snapshot file, recorded a snapshot renamed but not recorded, cut a torn tail. */
  tmpRemoved: number;
  recordedOnOpen: number;
  tornTails: number;
  /** The most WAL segments after any recovery. */
  maxSegments: number;
  final: { first: number; last: number; snapshot: number; segments: number };
  seconds: number;
  trace?: string[];
}

/**
 * Kills a child `perKind` times for each of `kinds` (in a seeded shuffled order), on one directory, checking
 * the directory after each kill (see verify). Fails the test at the first broken promise.
 */
async function crashCycles(o: RunOptions): Promise<{ stats: RunStats; dir: string; model: Model }> {
  const t0 = Date.now();
  let rngState = o.seed;
  const rand = (n: number): number => {
    rngState = (Math.imul(rngState, 1664525) + 1013904223) >>> 0;
    return rngState % n;
  };
  const shuffled = <T>(items: readonly T[]): T[] => {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = rand(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
  const cycles = o.perKind * o.kinds.length;
  const plan: Kind[] = [];
  while (plan.length < cycles) plan.push(...shuffled(o.kinds));

  const dir = tempDir();
  const model = new Model();
  const logs: string[] = [];
  const warnings: string[] = [];
  const logger = { log: (m: string) => logs.push(m), warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) };
  const stats: RunStats = {
    seed: o.seed,
    cycles,
    saves: 0,
    snapshots: 0,
    selfKills: {},
    fallbacks: 0,
    tmpRemoved: 0,
    recordedOnOpen: 0,
    tornTails: 0,
    maxSegments: 0,
    final: { first: 0, last: 0, snapshot: 0, segments: 0 },
    seconds: 0,
  };
  const segmentCount = () => readdirSync(dir).filter((f) => f.endsWith('.wal')).length;
  let checkedUpTo = 0;
  /** After each recovery: the cycle, its kind, the log and the snapshot (for a failure's message). */
  const trace: string[] = [];

  // Loading a child takes longer than running it: the next two load while one runs.
  const loading: { child: Child; kind: Kind; crashPoint: string }[] = [];
  let started = 0;
  const preload = (): void => {
    while (loading.length < 2 && started < cycles) {
      const kind = plan[started++];
      const crashPoint = kind === 'after-rename' || kind === 'before-prune' ? kind : kind === 'mid-compaction' ? `mid-compaction:${1 + rand(2)}` : 'none';
      loading.push({ child: startChild(dir, rand(1 << 30), crashPoint, o.overwrite), kind, crashPoint });
    }
  };
  preload();

  for (let cycle = 1; cycle <= cycles; cycle++) {
    const { child, kind, crashPoint } = loading.shift()!;
    const context = () => ({ seed: o.seed, overwrite: o.overwrite, cycle, kind, crashPoint, lines: child.lines.slice(-6), stderr: child.stderr().slice(-2000) });
    const kill = () => child.process.kill('SIGKILL');
    // The line-triggered kinds wait for the nth such line, n in 1..3.
    const nth = 1 + rand(3);
    const delay = rand(kind === 'writing' ? 40 : 250);
    let seen = 0;
    child.onLine = (line) => {
      const tag = line[0];
      if ((kind === 'writing' && tag === 'W') || (kind === 'snapshotted' && tag === 'S') || (kind === 'compacting' && tag === 'C')) {
        if (++seen === nth) {
          if (kind === 'writing') setTimeout(kill, delay);
          else kill();
        }
      }
      if (kind === 'random' && line.startsWith('ready')) setTimeout(kill, 5 + delay);
    };
    child.go();
    if (kind === 'opening') setTimeout(kill, rand(40));
    const fallback = setTimeout(() => {
      stats.fallbacks++;
      kill();
    }, FALLBACK_MS);
    preload();
    const { signal } = await child.closed;
    clearTimeout(fallback);
    const stderr = child.stderr().split('\n').filter((l) => l && !l.startsWith('warn:')).join('\n');
    expect({ ...context(), signal, stderr }).toEqual({ ...context(), signal: 'SIGKILL', stderr: '' });

    for (const line of child.lines) {
      const words = line.split(' ');
      if (words[0] === 'D') {
        model.report(Number(words[1]), Number(words[2]), Number(words[3]), Number(words[4]), words[5]);
        stats.saves++;
      } else if (words[0] === 'S') {
        model.snapshot = Math.max(model.snapshot, Number(words[1]));
        stats.snapshots++;
      } else if (words[0] === 'X') {
        stats.selfKills[kind] = (stats.selfKills[kind] ?? 0) + 1;
      }
    }

    const logsBefore = logs.length;
    const warningsBefore = warnings.length;
    const node = await openNodeStorage(dir, { segmentSize: CRASH_SEGMENT_SIZE, payloadCacheBytes: 64 * 1024, logger });
    try {
      const newLogs = logs.slice(logsBefore);
      if (newLogs.some((l) => l.includes('temporary file'))) stats.tmpRemoved++;
      if (newLogs.some((l) => l.includes('written before the node stopped'))) stats.recordedOnOpen++;
      const newWarnings = warnings.slice(warningsBefore);
      if (newWarnings.some((w) => w.includes('torn write'))) stats.tornTails++;
      // A crash of a node that installs nothing leaves only torn tails and a stale lock to report.
      // What recovery says about a kill: a torn tail cut off, a dead holder's lock taken over, the temporary lock
      // record of a process killed while taking it removed.
      const unexpected = newWarnings.filter(
        (w) => !w.includes('torn write') && !w.includes('stale lock') && !w.includes('killed while taking the lock'),
      );
      const problems = [...(await verify(dir, node, model, Math.min(checkedUpTo, model.commit))), ...unexpected.map((w) => `warning: ${w}`)];
      expect({ ...context(), problems }).toEqual({ ...context(), problems: [] });
      model.reset(node);
      checkedUpTo = node.storage.initialState().hardState.commit;
      stats.maxSegments = Math.max(stats.maxSegments, segmentCount());
      stats.final = { first: node.storage.firstIndex(), last: node.storage.lastIndex(), snapshot: node.snapshotIndex, segments: segmentCount() };
      trace.push(`${cycle} ${kind}: [${stats.final.first}, ${stats.final.last}] snapshot ${stats.final.snapshot}, ${stats.final.segments} segments`);
    } finally {
      await node.close();
    }
  }
  stats.seconds = Math.round((Date.now() - t0) / 100) / 10;
  process.stdout.write(`snapshot-crash (overwrite ${o.overwrite ? 'yes' : 'no'}): ${JSON.stringify(stats)}\n`);
  stats.trace = trace;
  return { stats, dir, model };
}

const baseSeed = Number(process.env.SNAPSHOT_CRASH_SEED) || Date.now() % 1_000_000;

/** Kills of each kind in the appends-only workload. */
const PER_KIND = 4;

describe(`snapshots and compaction under SIGKILL (SNAPSHOT_CRASH_SEED=${baseSeed})`, () => {
  it(`keep every durable entry and snapshot across ${PER_KIND * KINDS.length} kills aimed at each step; compaction works throughout`, async () => {
    const { stats, dir, model } = await crashCycles({ seed: baseSeed, kinds: KINDS, perKind: PER_KIND, overwrite: false });
    const { seed, trace } = stats;
    // The run did what it set out to: many saves and snapshots; every crash point was reached each time it
    // was armed; recovery found what those crashes leave (temporary files, a snapshot renamed but not recorded).
    expect({ seed, saves: stats.saves > stats.cycles * 10, snapshots: stats.snapshots >= stats.cycles / 2 }).toEqual({ seed, saves: true, snapshots: true });
    expect({ seed, selfKills: stats.selfKills }).toEqual({ seed, selfKills: { 'after-rename': PER_KIND, 'before-prune': PER_KIND, 'mid-compaction': PER_KIND } });
    expect({ seed, recordedOnOpen: stats.recordedOnOpen >= PER_KIND, tmpRemoved: stats.tmpRemoved > 0 }).toEqual({ seed, recordedOnOpen: true, tmpRemoved: true });
    // Compaction followed the snapshots through the crashes. It runs only after a snapshot, many incarnations
    // die before theirs completes, and a sixth of the kills land inside a compaction (each deletion of a 1 KiB
    // segment is an unlink and a directory fsync): the log lags behind, by up to about half of it over some
    // seeds (731728: [1661, 3744]); but its start moved well up (without compaction it would still be 1, in
    // hundreds of segments). What the crashes left is compacted to the tail below.
    const { final } = stats;
    expect({ seed, final, movedUp: final.first > final.last / 4, trace }).toEqual({ seed, final, movedUp: true, trace });

    // And what all those crashes left compacts down to the tail: every remaining segment is a valid start of
    // the log (a crash halfway through compaction broke nothing). A snapshot of the state at the commit
    // index, as the model computes it, then compaction up to it.
    const node = await openNodeStorage(dir, { segmentSize: CRASH_SEGMENT_SIZE, logger: { log: () => undefined, warn: () => undefined, error: () => undefined } });
    try {
      const commit = node.storage.initialState().hardState.commit;
      const state = model.stateAt(commit);
      if (typeof state === 'string') throw new Error(state);
      await new Promise<void>((resolve, reject) =>
        node.createSnapshot(
          { index: commit, term: node.storage.term(commit), confState: { voters: ['n1'] } },
          { chunks: () => Array.from({ length: SNAPSHOT_CHUNKS }, (_, k) => snapshotChunk(state, commit, k)), release: () => undefined },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
      await node.wal.compact(commit);
      const segments = readdirSync(dir).filter((f) => f.endsWith('.wal')).length;
      const log = { first: node.storage.firstIndex(), last: node.storage.lastIndex(), commit, segments };
      // The entries after the commit index (at most 11) and the one segment the commit index is in remain.
      expect({ seed, log, compacted: log.first > commit - 40 && segments <= 3 }).toEqual({ seed, log, compacted: true });
    } finally {
      await node.close();
    }
  });

  it(`keep every durable entry and snapshot across ${3 * KINDS.length} kills while new terms overwrite uncommitted entries`, async () => {
    const { stats } = await crashCycles({ seed: baseSeed + 1, kinds: KINDS, perKind: 3, overwrite: true });
    const { seed } = stats;
    expect({ seed, saves: stats.saves > stats.cycles * 10, snapshots: stats.snapshots >= stats.cycles / 2 }).toEqual({ seed, saves: true, snapshots: true });
    expect({ seed, selfKills: stats.selfKills }).toEqual({ seed, selfKills: { 'after-rename': 3, 'before-prune': 3, 'mid-compaction': 3 } });
  });

  // Found by this suite and the chaos runs: a deposed leader's uncommitted tail, overwritten by the new leader
  // below the start of its active segment, used to leave that node compacting nothing from then on (a Truncate
  // below its segment's start made every later segment unfit to start the log). The WAL now starts a new
  // segment at the overwrite instead (docs/storage.md).
  it('compaction goes on after a new term overwrote entries that had rolled into a later segment', async () => {
    // A follower's uncommitted entries 11..30 ran into later segments; a new leader's entries overwrite them
    // from 11 (the Truncate record lands in a segment that starts above 11). Then an ordinary life: 2,000 more
    // entries, a snapshot every 100 and compaction after each, as the node loop does.
    const dir = tempDir();
    const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
    const node = await openNodeStorage(dir, { segmentSize: CRASH_SEGMENT_SIZE, logger: quiet });
    const save = (commit: number, from: number, to: number, term: number) =>
      new Promise<void>((resolve, reject) =>
        node.save({ term, vote: 'n1', commit }, Array.from({ length: to - from + 1 }, (_, k) => ({ index: from + k, term, type: EntryType.Normal, data: payload(from + k, term) })), (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    const snapshot = (index: number, term: number) =>
      new Promise<void>((resolve, reject) =>
        node.createSnapshot({ index, term, confState: { voters: ['n1'] } }, { chunks: () => [Buffer.from(`state at ${index}`)], release: () => undefined }, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    try {
      for (let i = 1; i <= 30; i += 10) await save(10, i, i + 9, 1);
      await save(40, 11, 40, 2);
      for (let i = 41; i <= 2040; i += 10) {
        await save(i + 9, i, i + 9, 2);
        if ((i + 9) % 100 === 0) {
          await snapshot(i + 9, 2);
          node.compact(i + 9);
        }
      }
      await node.wal.compact(2000); // waits for the compactions queued before it
      const log = { first: node.storage.firstIndex(), last: node.storage.lastIndex(), snapshot: node.snapshotIndex, segments: readdirSync(dir).filter((f) => f.endsWith('.wal')).length };
      // Without the overwrite this ends at about [2001, 2040] in 5 segments.
      expect(log).toEqual({ first: expect.any(Number), last: 2040, snapshot: 2000, segments: expect.any(Number) });
      expect({ first: log.first > 1900, segments: log.segments <= 10, log }).toEqual({ first: true, segments: true, log });
    } finally {
      await node.close();
    }
  });
});

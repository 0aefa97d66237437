import { Entry, StateMachine, StateMachineView } from '@app/consensus';
import { chainHash, EMPTY_PREFIX_HASH, entryIdent, InvariantViolation } from './invariants';

/**
 * The state of the simulator's own state machine: the index of the last entry applied and a rolling hash
 * of the (term, identity) of every entry applied 1..index. The rolling hash is the checker's committed
 * prefix hash (chainHash), so a state is correct exactly when `hash` equals the checker's hash of the
 * committed prefix at `index`: a state restored from a snapshot can be checked in O(1).
 */
export interface SimState {
  index: number;
  hash: number;
}

/** What the simulator learns from a SimStateMachine: each apply, each restore (already validated here). */
export interface SimStateMachineHooks {
  onApply(entry: Entry): void;
  onRestore(state: SimState): void;
}

const STATE_MAGIC = 0x53494d53; // 'SIMS'
const STATE_BYTES = 16;

/** The first chunk of every simulator snapshot: magic, index (float64: beyond 2^32 on long runs), hash. */
export function encodeState(s: SimState): Uint8Array {
  const out = new Uint8Array(STATE_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, STATE_MAGIC);
  v.setFloat64(4, s.index);
  v.setUint32(12, s.hash);
  return out;
}

export function decodeState(chunk: Uint8Array): SimState {
  const v = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk.byteLength !== STATE_BYTES || v.getUint32(0) !== STATE_MAGIC) {
    throw new Error(`not a simulator snapshot header (${chunk.byteLength} bytes)`);
  }
  return { index: v.getFloat64(4), hash: v.getUint32(12) };
}

/**
 * A snapshot's chunks in one Uint8Array, as MemoryStorage keeps a snapshot's data and as MsgSnap carries it
 * in the simulator: count (u32), then each chunk as length (u32) and bytes. Chunk boundaries survive, since
 * StateMachine.restore() receives the chunks as the view produced them.
 */
export function encodeChunks(chunks: readonly Uint8Array[]): Uint8Array {
  let size = 4;
  for (const c of chunks) size += 4 + c.byteLength;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, chunks.length);
  let at = 4;
  for (const c of chunks) {
    v.setUint32(at, c.byteLength);
    out.set(c, at + 4);
    at += 4 + c.byteLength;
  }
  return out;
}

export function decodeChunks(data: Uint8Array): Uint8Array[] {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.byteLength < 4) throw new Error('snapshot data too short for its chunk count');
  const n = v.getUint32(0);
  const out: Uint8Array[] = [];
  let at = 4;
  for (let k = 0; k < n; k++) {
    if (at + 4 > data.byteLength) throw new Error(`snapshot data truncated at chunk ${k}`);
    const len = v.getUint32(at);
    if (at + 4 + len > data.byteLength) throw new Error(`snapshot data truncated in chunk ${k}`);
    out.push(data.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (at !== data.byteLength) throw new Error(`snapshot data has ${data.byteLength - at} bytes after its chunks`);
  return out;
}

/**
 * The state machine of one node incarnation in the simulator: its own checkable state (SimState) around
 * an optional inner state machine (the KV map in the linearizability runs). A snapshot's content is the
 * encoded SimState, then the inner view's chunks; restore() takes the state from the first chunk and hands
 * the rest to the inner machine. Restores must be synchronous (the simulator's storage hands a synchronous
 * iterable), so that a restore completes inside the event that starts it.
 */
export class SimStateMachine implements StateMachine {
  private index = 0;
  private hash = EMPTY_PREFIX_HASH;

  constructor(
    private readonly hooks: SimStateMachineHooks,
    readonly inner?: StateMachine,
  ) {}

  get state(): SimState {
    return { index: this.index, hash: this.hash };
  }

  apply(e: Entry): unknown {
    this.hooks.onApply(e);
    if (e.index !== this.index + 1) throw new InvariantViolation(`state machine at ${this.index} was handed entry ${e.index}`);
    const ident = entryIdent(e);
    this.index = e.index;
    this.hash = chainHash(this.hash, e.term, ident);
    return this.inner ? this.inner.apply(e) : ident;
  }

  snapshot(): StateMachineView {
    const state = this.state;
    const innerView = this.inner?.snapshot();
    let released = false;
    return {
      // Read lazily (the simulated disk reads it when the write completes, after more entries were applied):
      // a view that is not point-in-time shows up as a snapshot whose state is not the committed prefix's.
      *chunks() {
        if (released) throw new InvariantViolation(`snapshot view at ${state.index} read after release()`);
        yield encodeState(state);
        if (innerView) yield* innerView.chunks();
      },
      release() {
        if (released) throw new InvariantViolation(`snapshot view at ${state.index} released twice`);
        released = true;
        innerView?.release();
      },
    };
  }

  restore(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, done: (error?: Error) => void): void {
    if (!(Symbol.iterator in chunks)) {
      done(new Error('the simulator restores from synchronous iterables only'));
      return;
    }
    const it = chunks[Symbol.iterator]();
    let state: SimState;
    try {
      const head = it.next();
      if (head.done) throw new Error('empty snapshot content');
      state = decodeState(head.value);
    } catch (error) {
      done(error as Error);
      return;
    }
    const finish = (error?: Error): void => {
      if (error) {
        done(error);
        return;
      }
      this.index = state.index;
      this.hash = state.hash;
      this.hooks.onRestore(state);
      done();
    };
    const rest: Iterable<Uint8Array> = { [Symbol.iterator]: () => it };
    if (this.inner) {
      this.inner.restore(rest, finish);
      return;
    }
    if (!it.next().done) {
      done(new Error('snapshot content has chunks after the state, and no inner state machine takes them'));
      return;
    }
    finish();
  }
}

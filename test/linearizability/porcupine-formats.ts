import { HistoryOp } from './history';
import { Model, Operation, StepResult } from './model';

/**
 * Readers for the test histories of Porcupine (testdata/, see its SOURCE.md), used to validate the checker
 * against verdicts another implementation agrees on. Event order stands in for time: the n-th line of a
 * file is time n.
 */

const ETCD_LINE = /^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*?)\s*$/;

/**
 * Jepsen's etcd test log: one register, read/write/cas by numbered processes. `:info` (a timeout) is an
 * unknown outcome, and so is an invocation the log never completes; `:fail :cas` is a compare that failed
 * (an observation: outcome ok, not swapped); `:fail :read` did not happen. All operations use key "r".
 */
export function parseJepsenEtcdLog(text: string): HistoryOp[] {
  const ops: HistoryOp[] = [];
  const open = new Map<number, HistoryOp>();
  const lines = text.split('\n');
  for (let time = 0; time < lines.length; time++) {
    const line = lines[time];
    if (line.trim() === '') continue;
    const m = ETCD_LINE.exec(line);
    if (!m) throw new Error(`etcd log line ${time + 1} not understood: ${line}`);
    const [, proc, type, f, arg] = m;
    const client = Number(proc);
    if (type === 'invoke') {
      if (open.has(client)) throw new Error(`etcd log line ${time + 1}: process ${client} invokes twice`);
      const op: HistoryOp = { id: ops.length, client, op: 'get', key: 'r', start: time, outcome: 'unknown' };
      if (f === 'write') Object.assign(op, { op: 'put', value: arg });
      if (f === 'cas') {
        const cas = /^\[(\d+)\s+(\d+)\]$/.exec(arg);
        if (!cas) throw new Error(`etcd log line ${time + 1}: bad cas argument ${arg}`);
        Object.assign(op, { op: 'cas', expected: cas[1], value: cas[2] });
      }
      ops.push(op);
      open.set(client, op);
      continue;
    }
    const op = open.get(client);
    if (!op) throw new Error(`etcd log line ${time + 1}: process ${client} completes nothing`);
    open.delete(client);
    if (type === 'info') continue; // outcome unknown, end +infinity
    op.end = time;
    if (type === 'fail' && f !== 'cas') {
      op.outcome = 'fail';
    } else {
      op.outcome = 'ok';
      if (f === 'read') op.result = arg === 'nil' ? { found: false } : { found: true, value: arg };
      if (f === 'cas') op.result = { swapped: type === 'ok' };
    }
  }
  return ops;
}

/** An operation of Porcupine's kv test data. */
export interface AppendKvInput {
  f: 'get' | 'put' | 'append';
  key: string;
  value: string;
}

/** A string (missing keys read as "") and its FNV-1a hash, extended incrementally on append. */
export interface AppendKvState {
  value: string;
  hash: number;
}

const KV_LINE = /^\{:process (\d+), :type :(invoke|ok), :f :(get|put|append), :key "(.*)", :value (nil|"(.*)")\}$/;

/**
 * Porcupine's kv format (`kv/cNN-{ok,bad}.txt`): get/put/append on string keys by numbered processes.
 * The output is the value a get returned ("" for the others). An invocation that never completes has an
 * unknown outcome (none do in the data).
 */
export function parsePorcupineKv(text: string): Operation<AppendKvInput, string>[] {
  const ops: Operation<AppendKvInput, string>[] = [];
  const open = new Map<number, Operation<AppendKvInput, string>>();
  const lines = text.split('\n');
  for (let time = 0; time < lines.length; time++) {
    const line = lines[time];
    if (line.trim() === '') continue;
    const m = KV_LINE.exec(line);
    if (!m) throw new Error(`kv line ${time + 1} not understood: ${line}`);
    const [, proc, type, f, key, , value] = m;
    const client = Number(proc);
    if (type === 'invoke') {
      const op = { input: { f: f as AppendKvInput['f'], key, value: value ?? '' }, output: '', call: time, ret: Infinity, ref: ops.length };
      ops.push(op);
      open.set(client, op);
    } else {
      const op = open.get(client);
      if (!op) throw new Error(`kv line ${time + 1}: process ${client} completes nothing`);
      open.delete(client);
      op.ret = time;
      if (f === 'get') op.output = value ?? '';
    }
  }
  // A get of unknown outcome has no effect.
  return ops.filter((op) => op.ret !== Infinity || op.input.f !== 'get');
}

// A module binding rather than a global lookup in the hot loop (globals are slow inside jest's sandbox).
const imul = Math.imul;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function fnv(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) h = imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h;
}

/** Porcupine's kv model: per key, a string that put replaces and append extends; get reads it. */
export const appendKvModel: Model<AppendKvState, AppendKvInput, string> = {
  partition(ops) {
    const byKey = new Map<string, Operation<AppendKvInput, string>[]>();
    for (const op of ops) {
      const part = byKey.get(op.input.key) ?? [];
      part.push(op);
      byKey.set(op.input.key, part);
    }
    return [...byKey.values()];
  },
  init: () => ({ value: '', hash: FNV_OFFSET }),
  step(state, input, output): StepResult<AppendKvState> {
    switch (input.f) {
      case 'get':
        return [output === state.value, state];
      case 'put':
        return [true, { value: input.value, hash: fnv(FNV_OFFSET, input.value) }];
      case 'append':
        return [true, { value: state.value + input.value, hash: fnv(state.hash, input.value) }];
    }
  },
  equal: (a, b) => a === b || (a.hash === b.hash && a.value === b.value),
  hash: (state) => state.hash,
  isReadOnly: (input) => input.f === 'get',
  isBlindWrite: (input) => input.f === 'put',
  symmetryKey: (input) => `${input.f}:${JSON.stringify(input.key)}:${input.value}`,
  describeOperation: (input, output) =>
    input.f === 'get' ? `get(${JSON.stringify(input.key)}) -> ${JSON.stringify(output)}` : `${input.f}(${JSON.stringify(input.key)}, ${JSON.stringify(input.value)})`,
  describeState: (state) => JSON.stringify(state.value),
};

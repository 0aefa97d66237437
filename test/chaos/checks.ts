/**
 * The checks a run makes besides linearizability, all on what the harness observed: the replicas' final
 * contents agree, and no acknowledged write is lost. The linearizability checker covers the second too
 * (the final reads are in the history); this check says it in plain words and costs nothing.
 */
import { HistoryOp } from '../linearizability/history';

/** A key's value, or null for absent. */
export type Value = string | null;

/**
 * The values a key may hold once every operation has ended, from that key's operations: the value of every
 * acknowledged write that no other acknowledged write certainly followed (started after it returned), and
 * of every write whose outcome is unknown (it may have taken effect at any time, or never). Absent if no
 * write was acknowledged. A failed write's value is never possible. Writes are puts, deletes and
 * compare-and-sets; a cas is acknowledged when it swapped (one that did not swap changed nothing).
 */
export function possibleFinalValues(ops: readonly HistoryOp[], key: string): { values: Set<Value>; lastAcknowledged: HistoryOp[] } {
  const writes = ops.filter((op) => op.key === key && (op.op === 'put' || op.op === 'delete' || op.op === 'cas'));
  const acknowledged = writes.filter((op) => op.outcome === 'ok' && (op.op !== 'cas' || op.result?.swapped === true));
  const values = new Set<Value>();
  const lastAcknowledged = acknowledged.filter((w) => !acknowledged.some((later) => later.start > w.end!));
  const written = (w: HistoryOp): Value => (w.op === 'delete' ? null : w.value!);
  for (const w of lastAcknowledged) values.add(written(w));
  for (const w of writes) if (w.outcome === 'unknown') values.add(written(w));
  if (acknowledged.length === 0) values.add(null);
  return { values, lastAcknowledged };
}

export interface LostWrite {
  key: string;
  final: Value;
  /** The acknowledged writes of which one should have survived. */
  expected: HistoryOp[];
  /** The write that put the final value there, if any: overwritten (ok) or failed. */
  writer?: HistoryOp;
}

/**
 * Keys whose final value no acknowledged (or possibly applied) write explains: an acknowledged write was
 * lost, a failed write took effect, or a value nobody wrote appeared.
 */
export function findLostWrites(history: readonly HistoryOp[], finalValues: ReadonlyMap<string, Value>): LostWrite[] {
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of history) {
    if (!finalValues.has(op.key)) continue;
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  const lost: LostWrite[] = [];
  for (const [key, final] of finalValues) {
    const ops = byKey.get(key) ?? [];
    const { values, lastAcknowledged } = possibleFinalValues(ops, key);
    if (values.has(final)) continue;
    const writer = final === null ? undefined : ops.find((op) => (op.op === 'put' || op.op === 'cas') && op.value === final);
    lost.push({ key, final, expected: lastAcknowledged, writer });
  }
  return lost;
}

export interface Divergence {
  key: string;
  /** node name -> value it holds */
  values: Record<string, Value>;
}

/** Keys on which the replicas (and the final linearizable read) do not all hold the same value. */
export function findDivergence(replicas: Record<string, ReadonlyMap<string, Value>>, keys: readonly string[]): Divergence[] {
  const out: Divergence[] = [];
  for (const key of keys) {
    const values: Record<string, Value> = {};
    for (const [node, data] of Object.entries(replicas)) values[node] = data.has(key) ? data.get(key)! : null;
    if (new Set(Object.values(values)).size > 1) out.push({ key, values });
  }
  return out;
}

export interface OpCounts {
  total: number;
  ok: number;
  fail: number;
  unknown: number;
  byKind: Record<string, { ok: number; fail: number; unknown: number }>;
}

export function countOps(history: readonly HistoryOp[]): OpCounts {
  const counts: OpCounts = { total: 0, ok: 0, fail: 0, unknown: 0, byKind: {} };
  for (const op of history) {
    counts.total++;
    counts[op.outcome]++;
    const k = (counts.byKind[op.op] ??= { ok: 0, fail: 0, unknown: 0 });
    k[op.outcome]++;
  }
  return counts;
}

/** The compare-and-sets of a history by what came of them: `notSwapped` are the 412s (the version had moved on). */
export interface CasCounts {
  swapped: number;
  notSwapped: number;
  fail: number;
  unknown: number;
}

export function countCas(history: readonly HistoryOp[]): CasCounts {
  const counts: CasCounts = { swapped: 0, notSwapped: 0, fail: 0, unknown: 0 };
  for (const op of history) {
    if (op.op !== 'cas') continue;
    if (op.outcome === 'ok') counts[op.result?.swapped ? 'swapped' : 'notSwapped']++;
    else counts[op.outcome]++;
  }
  return counts;
}

/**
 * The checks a run makes besides linearizability, all on what the harness observed: the replicas' final
 * contents agree, and no acknowledged write is lost. The linearizability checker covers the second too
 * (the final reads are in the history); this check says it in plain words and costs nothing.
 */
import { HistoryOp } from '../linearizability/history';

/** A key's value, or null for absent. */
export type Value = string | null;

/**
 * The values `key` may hold once every operation has ended: the value of every acknowledged write that no
 * other acknowledged write certainly followed (started after it returned), and of every write whose
 * outcome is unknown (it may have taken effect at any time, or never). Absent if nothing was acknowledged.
 */
export function possibleFinalValues(history: readonly HistoryOp[], key: string): { values: Set<Value>; lastAcknowledged: HistoryOp[] } {
  const writes = history.filter((op) => op.key === key && (op.op === 'put' || op.op === 'delete'));
  const acknowledged = writes.filter((op) => op.outcome === 'ok');
  const values = new Set<Value>();
  const lastAcknowledged = acknowledged.filter((w) => !acknowledged.some((later) => later.start > w.end!));
  for (const w of lastAcknowledged) values.add(w.op === 'put' ? w.value! : null);
  for (const w of writes) if (w.outcome === 'unknown') values.add(w.op === 'put' ? w.value! : null);
  if (acknowledged.length === 0) values.add(null);
  return { values, lastAcknowledged };
}

export interface LostWrite {
  key: string;
  final: Value;
  /** The acknowledged writes of which one should have survived. */
  expected: HistoryOp[];
}

/** Keys whose final value no acknowledged (or possibly applied) write explains. */
export function findLostWrites(history: readonly HistoryOp[], finalValues: ReadonlyMap<string, Value>): LostWrite[] {
  const lost: LostWrite[] = [];
  for (const [key, final] of finalValues) {
    const { values, lastAcknowledged } = possibleFinalValues(history, key);
    if (!values.has(final)) lost.push({ key, final, expected: lastAcknowledged });
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

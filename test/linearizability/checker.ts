import { describeOp, HistoryOp } from './history';
import { Model, Operation } from './model';
import { RegisterKvModel } from './register-model';
import { searchPartition } from './search';

/**
 * Linearizability checking of a whole history: split it into independent partitions (per key for the
 * KV store), search each (search.ts), and combine. The verdict is 'violation' if any partition has
 * one, else 'unknown' if any partition ran out of budget, else 'linearizable': running out of budget
 * never yields 'linearizable'.
 */

export type Verdict = 'linearizable' | 'violation' | 'unknown';

export interface CheckOptions {
  /** Wall-clock budget for the whole history (default 60 s); when it runs out, unfinished partitions are 'unknown'. */
  timeBudgetMs?: number;
  /** Memo size per partition after which it is 'unknown' (default 1024 MiB). */
  memoryBudgetMb?: number;
  /** The search's pruning rules (default true); false runs plain Wing-Gong/Lowe, for cross-checks. */
  prune?: boolean;
  /**
   * Keep checking the other partitions after a violation (default false: they are reported 'unknown',
   * "skipped", since one violation decides the verdict and a violating search can be the slowest kind).
   */
  allPartitions?: boolean;
}

/** The result of one partition; operations are named by their `ref`. */
export interface PartitionResult<S> {
  verdict: Verdict;
  /** The partition's operations. */
  refs: number[];
  /** Operations checked. */
  size: number;
  elapsedMs: number;
  configurations: number;
  steps: number;
  /** linearizable: a linearization; otherwise the longest linearizable prefix found. */
  sequence: number[];
  /** The model state after `sequence`. */
  state: S;
  /** violation: an operation that completed but cannot be linearized after `sequence`. */
  blocked?: number;
  /** violation: the operations that were pending with it; none of them can go next either. */
  candidates?: number[];
  /** unknown: the budget that ran out. */
  reason?: string;
}

export interface OperationsResult<S> {
  verdict: Verdict;
  /** In the order they were checked (smallest first). */
  partitions: PartitionResult<S>[];
  elapsedMs: number;
}

const DEFAULT_TIME_BUDGET_MS = 60_000;
const DEFAULT_MEMORY_BUDGET_MB = 1024;

/** Checks operations against any model. */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  options: CheckOptions = {},
): OperationsResult<S> {
  const started = performance.now();
  const deadline = started + (options.timeBudgetMs ?? DEFAULT_TIME_BUDGET_MS);
  const maxCacheBytes = (options.memoryBudgetMb ?? DEFAULT_MEMORY_BUDGET_MB) * 1024 * 1024;
  // Small partitions first: a violation anywhere is a verdict, so find the cheap ones before the budget goes.
  const parts = (model.partition ? model.partition(ops) : [ops.slice()]).filter((p) => p.length > 0);
  parts.sort((a, b) => a.length - b.length);

  let violated = false;
  const partitions: PartitionResult<S>[] = parts.map((part) => {
    const refs = part.map((op) => op.ref);
    if (violated && !options.allPartitions) {
      const reason = 'skipped: another partition is not linearizable';
      return { verdict: 'unknown', refs, size: part.length, elapsedMs: 0, configurations: 0, steps: 0, sequence: [], state: model.init(), reason };
    }
    const t0 = performance.now();
    const r = searchPartition(model, part, { deadline, maxCacheBytes, prune: options.prune });
    const ref = (i: number) => part[i].ref;
    if (r.verdict === 'violation') violated = true;
    return {
      verdict: r.verdict,
      refs,
      size: part.length,
      elapsedMs: performance.now() - t0,
      configurations: r.configurations,
      steps: r.steps,
      sequence: r.sequence.map(ref),
      state: r.state,
      blocked: r.blocked === undefined ? undefined : ref(r.blocked),
      candidates: r.candidates?.map(ref),
      reason: r.reason,
    };
  });
  return { verdict: combine(partitions.map((p) => p.verdict)), partitions, elapsedMs: performance.now() - started };
}

function combine(verdicts: Verdict[]): Verdict {
  if (verdicts.includes('violation')) return 'violation';
  if (verdicts.includes('unknown')) return 'unknown';
  return 'linearizable';
}

export interface KeyResult {
  verdict: Verdict;
  /** Operations checked on this key (after dropping failed ones and unknown reads). */
  ops: number;
  elapsedMs: number;
  /** Configurations the search memoized: a measure of its work. */
  configurations: number;
  reason?: string;
}

export interface Violation {
  key: string;
  /** The longest linearizable prefix found, in linearization order. */
  prefix: HistoryOp[];
  /** The register after `prefix`: a JSON string or `absent`. */
  stateAfterPrefix: string;
  /** A completed operation that cannot take effect after `prefix`. */
  blocked: HistoryOp;
  /** Every operation that could have gone next (the blocked one among them), and why it cannot. */
  candidates: { op: HistoryOp; why: string }[];
  /** All of the above as text for a human. */
  explanation: string;
}

export interface CheckResult {
  verdict: Verdict;
  /** Every key with operations left to check (keys with only failed operations or unknown reads are absent). */
  perKey: Record<string, KeyResult>;
  /** The first violation found (on the smallest violating key), if any. */
  violation?: Violation;
  /** Operations not checked: outcome `fail`, and reads of unknown outcome. */
  dropped: { failed: number; unknownReads: number };
  elapsedMs: number;
}

/** Checks a KV history (see history.ts) against the per-key register model. */
export function checkHistory(history: readonly HistoryOp[], options: CheckOptions = {}): CheckResult {
  const started = performance.now();
  const model = new RegisterKvModel({ mergeUnobserved: options.prune ?? true });
  const { ops, dropped } = model.convert(history);
  const result = checkOperations(model, ops, options);

  const perKey: Record<string, KeyResult> = Object.create(null);
  let violation: Violation | undefined;
  for (const p of result.partitions) {
    const key = history[p.refs[0]].key;
    perKey[key] = { verdict: p.verdict, ops: p.size, elapsedMs: p.elapsedMs, configurations: p.configurations, reason: p.reason };
    if (p.verdict === 'violation' && !violation) violation = explainViolation(model, history, ops, key, p);
  }
  return { verdict: result.verdict, perKey, violation, dropped, elapsedMs: performance.now() - started };
}

const PREFIX_SHOWN = 10;

function explainViolation(
  model: RegisterKvModel,
  history: readonly HistoryOp[],
  ops: readonly Operation<unknown, unknown>[],
  key: string,
  p: PartitionResult<number>,
): Violation {
  const byRef = new Map(ops.map((op) => [op.ref, op]));
  const prefix = p.sequence.map((ref) => history[ref]);
  // Replay the prefix on real values (the model may have merged unobserved ones) to show them.
  const states: (string | undefined)[] = [];
  let value: string | undefined;
  for (const op of prefix) {
    if (op.op === 'put') value = op.value;
    if (op.op === 'delete') value = undefined;
    if (op.op === 'cas' && (op.outcome === 'ok' ? op.result?.swapped : value === (op.expected ?? undefined))) value = op.value;
    states.push(value);
  }
  const show = (v: string | undefined) => (v === undefined ? 'absent' : JSON.stringify(v));
  const stateAfterPrefix = show(value);
  const blocked = history[p.blocked as number];
  const candidates = (p.candidates ?? []).map((ref) => {
    const op = byRef.get(ref) as Operation<never, never>;
    const [ok, after] = model.step(p.state, op.input, op.output);
    const why = !ok
      ? `cannot take effect when the register is ${stateAfterPrefix}`
      : after === p.state && history[ref].outcome === 'unknown'
        ? 'taking effect here would change nothing'
        : 'taking effect here leads only to dead ends';
    return { op: history[ref], why };
  });
  const line = (op: HistoryOp) =>
    `  #${op.id} client ${op.client} [${op.start}, ${op.outcome === 'unknown' ? '…' : op.end}] ${describeOp(op)}`;
  const from = Math.max(0, prefix.length - PREFIX_SHOWN);
  const shown = prefix.slice(from).map((op, j) => `${line(op)}  => ${show(states[from + j])}`);
  const text = [
    `Key ${JSON.stringify(key)} is not linearizable (${p.size} operations checked).`,
    `The longest linearizable prefix found has ${prefix.length} operations` +
      (prefix.length === 0 ? '.' : from > 0 ? `; the last ${shown.length}, with the register after each:` : ', with the register after each:'),
    ...shown,
    `After it the register is ${stateAfterPrefix}.`,
    `Then #${blocked.id} ${describeOp(blocked)} (client ${blocked.client}, returned at ${blocked.end}) must take effect,`,
    'but neither it nor any operation pending with it can go next:',
    ...candidates.map((c) => `${line(c.op)}: ${c.why}`),
  ].join('\n');
  return { key, prefix, stateAfterPrefix, blocked, candidates, explanation: text };
}

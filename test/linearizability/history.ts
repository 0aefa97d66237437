/**
 * The history of a fault-injection run: one record per client operation, written by the harness as JSON
 * Lines (one `HistoryOp` per line) and read back by the linearizability checker.
 *
 * The model: every key is an independent register that holds a string or is absent (the initial state).
 * - `get`    reads the register: `result.found` says whether the key existed, `result.value` what it held.
 * - `put`    writes `value`.
 * - `delete` writes "absent". If the API reports whether the key existed, the harness may record it as
 *            `result.found`; the checker then checks it too.
 * - `cas`    compare-and-set: if the register holds `expected` (`null`: the key is absent), write `value`;
 *            `result.swapped` says whether it did. A compare that failed is an observation, not a failure:
 *            record it as outcome `ok` with `swapped: false`.
 *
 * Outcomes: what the client learned.
 * - `ok`      the operation took effect once, at some instant in [start, end]; `result` is what it returned
 *             (for the KV API: 200, or 404 for a get of a missing key: `found: false`; a delete's
 *             `existed` is `found`).
 * - `fail`    it certainly did not take effect: a 4xx, a 307 "not leader", a 503 whose body says
 *             `outcome: "failed"` (no leader, leadership lost before commit, shutting down). Dropped.
 * - `unknown` the client never learned the outcome: a timeout, a connection reset, a 503 with
 *             `outcome: "unknown"`, any other 5xx. It took effect at most once, at any instant after
 *             `start` (even after the client gave up), or never: its end is +infinity and `end`, if
 *             present, is only informative. An unknown `get` has no effect and is dropped.
 * Only linearizable reads belong in a history: a `?consistency=stale` read may legitimately be behind.
 *
 * Time: `start` is read just before the request is sent and `end` just after the response is received,
 * both from one monotonic clock of the harness process (never from the nodes' clocks), in one unit for
 * the whole file (milliseconds, or nanoseconds relative to the run's start so they stay exact doubles).
 * Intervals are closed: an operation that ends at t is concurrent with one that starts at t.
 */

export type OpKind = 'get' | 'put' | 'delete' | 'cas';
export type Outcome = 'ok' | 'fail' | 'unknown';

export interface HistoryOp {
  /** Unique in the history; used in reports. */
  id: number | string;
  /** The client (a sequential process) that issued it; used in reports only. */
  client: number | string;
  op: OpKind;
  key: string;
  /** put: the value written; cas: the value written if the compare succeeds. */
  value?: string;
  /** cas: the value the register must hold; `null` for "the key must be absent". */
  expected?: string | null;
  start: number;
  /** Required for `ok` and `fail`; ignored for `unknown`. */
  end?: number;
  outcome: Outcome;
  /** get (`ok`): found/value; delete (`ok`, optional): found; cas (`ok`): swapped. */
  result?: OpResult;
}

export interface OpResult {
  found?: boolean;
  value?: string;
  swapped?: boolean;
}

/** A history record that breaks the format; `where` names it ("line 3", "record 3"). */
export class HistoryFormatError extends Error {
  constructor(message: string, where?: string) {
    super(where === undefined ? message : `${where}: ${message}`);
    this.name = 'HistoryFormatError';
  }
}

const KINDS: readonly string[] = ['get', 'put', 'delete', 'cas'];
const OUTCOMES: readonly string[] = ['ok', 'fail', 'unknown'];

/**
 * Checks one record against the format above. Throws HistoryFormatError naming the first problem;
 * `where` is only used in the message.
 */
export function validateHistoryOp(raw: unknown, where?: string): HistoryOp {
  const fail = (message: string): never => {
    throw new HistoryFormatError(message, where);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('not an object');
  const op = raw as Record<string, unknown>;
  if (typeof op.id !== 'number' && typeof op.id !== 'string') fail('id must be a number or a string');
  if (typeof op.client !== 'number' && typeof op.client !== 'string') fail('client must be a number or a string');
  if (typeof op.op !== 'string' || !KINDS.includes(op.op)) fail(`op must be one of ${KINDS.join(', ')}`);
  if (typeof op.key !== 'string') fail('key must be a string');
  if (typeof op.outcome !== 'string' || !OUTCOMES.includes(op.outcome)) fail(`outcome must be one of ${OUTCOMES.join(', ')}`);
  if (typeof op.start !== 'number' || !Number.isFinite(op.start)) fail('start must be a finite number');
  if (op.end !== undefined && op.end !== null && (typeof op.end !== 'number' || !Number.isFinite(op.end))) {
    fail('end must be a finite number');
  }
  const end = op.end as number | undefined | null;
  if (op.outcome !== 'unknown') {
    if (end === undefined || end === null) fail(`end is required for outcome ${op.outcome as string}`);
    if ((end as number) < (op.start as number)) fail('end is before start');
  }
  if ((op.op === 'put' || op.op === 'cas') && typeof op.value !== 'string') fail(`${op.op} needs a string value`);
  if (op.op === 'cas' && op.expected !== null && typeof op.expected !== 'string') {
    fail('cas needs expected: a string, or null for "absent"');
  }
  const result = op.result as OpResult | undefined | null;
  if (result !== undefined && result !== null && (typeof result !== 'object' || Array.isArray(result))) fail('result must be an object');
  if (op.outcome === 'ok') {
    if (op.op === 'get') {
      if (!result || typeof result.found !== 'boolean') fail('an ok get needs result.found');
      if (result!.found && typeof result!.value !== 'string') fail('an ok get that found the key needs result.value');
    }
    if (op.op === 'cas' && (!result || typeof result.swapped !== 'boolean')) fail('an ok cas needs result.swapped');
    if (op.op === 'delete' && result && result.found !== undefined && typeof result.found !== 'boolean') {
      fail('result.found of a delete must be a boolean');
    }
  }
  return op as unknown as HistoryOp;
}

/** Checks a whole history: every record, and that ids are unique. Returns the same array. */
export function validateHistory(ops: readonly unknown[]): HistoryOp[] {
  const seen = new Set<number | string>();
  ops.forEach((raw, i) => {
    const op = validateHistoryOp(raw, `record ${i + 1}`);
    if (seen.has(op.id)) throw new HistoryFormatError(`duplicate id ${JSON.stringify(op.id)}`, `record ${i + 1}`);
    seen.add(op.id);
  });
  return ops as HistoryOp[];
}

/** Parses JSON Lines (blank lines allowed) and validates every record. */
export function parseHistory(jsonl: string): HistoryOp[] {
  const ops: HistoryOp[] = [];
  const seen = new Set<number | string>();
  const lines = jsonl.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i].trim();
    if (text === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new HistoryFormatError(`not JSON: ${(err as Error).message}`, `line ${i + 1}`);
    }
    const op = validateHistoryOp(raw, `line ${i + 1}`);
    if (seen.has(op.id)) throw new HistoryFormatError(`duplicate id ${JSON.stringify(op.id)}`, `line ${i + 1}`);
    seen.add(op.id);
    ops.push(op);
  }
  return ops;
}

/** One record per line, in the order given. */
export function formatHistory(ops: readonly HistoryOp[]): string {
  return ops.map((op) => JSON.stringify(op)).join('\n') + (ops.length ? '\n' : '');
}

/** A short human description, e.g. `get("x") -> "1"`, `cas("x", "1" -> "2") -> swapped`, `put("x", "3") -> ?`. */
export function describeOp(op: HistoryOp): string {
  const q = (s: string | null | undefined) => (s === null || s === undefined ? 'absent' : JSON.stringify(s));
  const k = JSON.stringify(op.key);
  const r = op.result;
  const pending = op.outcome === 'unknown' ? ' -> ?' : op.outcome === 'fail' ? ' -> failed' : '';
  switch (op.op) {
    case 'get':
      return `get(${k})` + (pending || ` -> ${r?.found ? q(r.value) : 'absent'}`);
    case 'put':
      return `put(${k}, ${q(op.value)})` + pending;
    case 'delete':
      return `delete(${k})` + (pending || (r?.found === undefined ? '' : r.found ? ' -> existed' : ' -> was absent'));
    case 'cas':
      return `cas(${k}, ${q(op.expected)} -> ${q(op.value)})` + (pending || (r?.swapped ? ' -> swapped' : ' -> not swapped'));
  }
}

/**
 * The watch check and the apply-once check of a chaos run (docs/chaos.md, "Watchers" and "Retries"), on what
 * the watchers recorded and what the clients were answered. Pure functions: watchers.ts records, this judges.
 *
 * A watcher's record is a list of segments. A segment is a stretch of the log it claims to have seen whole: it
 * was opened at `from` (the first watch, or a re-watch from `oldestIndex` after a 410 that no node could serve:
 * a reset), and every later connection resumed it with `Last-Event-ID` = `to`, the last index it had seen. So
 * within [from, to] the segment must hold every change to the keys its filter follows, each once, in log order.
 *
 * What no single stream can show, several can: the reference sequence is the union of every watcher's events by
 * index, and
 * - a segment's events are strictly increasing (a repeat is a duplicate), inside [from, to], on keys it follows;
 * - two watchers never disagree on the change at an index (type, key, value);
 * - a segment covering an index where another watcher saw a change to a key it follows holds it too (no gap);
 * - an acknowledged write whose answer named its index (put, swapped cas, delete of a key that existed) is that
 *   change at that index, wherever a watcher covered it;
 * - every put's value is one a client sent to that key, and not one it was told certainly failed or did not
 *   swap;
 * - each value is put at most once (values are unique per write; a retry resends the same value with the same
 *   Idempotency-Key, so a value put twice is a write applied twice).
 */
import { HistoryOp } from '../linearizability/history';

export interface WatchEvent {
  index: number;
  type: 'put' | 'delete';
  key: string;
  value?: string;
}

export type WatchFilter = { prefix: string } | { key: string };

export interface WatchSegment {
  /** The first index the segment covers. */
  from: number;
  /** The last index it covers: the last event id the watcher holds (from - 1 before any). */
  to: number;
  events: WatchEvent[];
}

export interface WatcherLog {
  name: string;
  filter: WatchFilter;
  segments: WatchSegment[];
}

/** A write the store answered with the index of the entry that applied it (a replay: the first entry's). */
export interface IndexedWrite {
  op: HistoryOp;
  index: number;
}

export type WatchFindingKind =
  | 'duplicate'
  | 'out of order'
  | 'outside its segment'
  | 'key not followed'
  | 'disagreement'
  | 'gap'
  | 'acknowledged write missing'
  | 'acknowledged write differs'
  | 'value nobody wrote'
  | 'failed write applied'
  | 'applied twice';

export interface WatchFinding {
  kind: WatchFindingKind;
  index: number;
  watcher?: string;
  detail: string;
}

export interface WatchCheck {
  findings: WatchFinding[];
  /** Events recorded by all watchers together, and the distinct indexes they make. */
  events: number;
  indexes: number;
  /** Acknowledged writes with an index: seen by a watcher covering it, or at an index no watcher covered. */
  acknowledged: { checked: number; uncovered: number };
  /** Values put more than once (the apply-once check). */
  appliedTwice: number;
}

export function matches(filter: WatchFilter, key: string): boolean {
  return 'key' in filter ? filter.key === key : key.startsWith(filter.prefix);
}

const describe = (e: WatchEvent | undefined) =>
  e === undefined ? 'nothing' : e.type === 'put' ? `put ${e.key}=${JSON.stringify(e.value)}` : `delete ${e.key}`;
const same = (a: WatchEvent, b: WatchEvent) => a.type === b.type && a.key === b.key && a.value === b.value;

/** Checks the watchers' records against each other and against the clients' history and answers. */
export function checkWatches(logs: readonly WatcherLog[], history: readonly HistoryOp[], indexed: readonly IndexedWrite[]): WatchCheck {
  const findings: WatchFinding[] = [];
  const reference = new Map<number, { event: WatchEvent; watcher: string }>();
  let events = 0;

  for (const log of logs) {
    for (const segment of log.segments) {
      let previous = segment.from - 1;
      for (const event of segment.events) {
        events++;
        if (event.index === previous) findings.push({ kind: 'duplicate', index: event.index, watcher: log.name, detail: `${describe(event)} delivered twice` });
        else if (event.index < previous) findings.push({ kind: 'out of order', index: event.index, watcher: log.name, detail: `${describe(event)} after index ${previous}` });
        if (event.index < segment.from || event.index > segment.to) {
          findings.push({ kind: 'outside its segment', index: event.index, watcher: log.name, detail: `${describe(event)} outside [${segment.from}, ${segment.to}]` });
        }
        if (!matches(log.filter, event.key)) findings.push({ kind: 'key not followed', index: event.index, watcher: log.name, detail: `${describe(event)} for a watch of ${JSON.stringify(log.filter)}` });
        previous = Math.max(previous, event.index);
        const seen = reference.get(event.index);
        if (!seen) reference.set(event.index, { event, watcher: log.name });
        else if (!same(seen.event, event)) {
          findings.push({ kind: 'disagreement', index: event.index, watcher: log.name, detail: `${describe(event)}, but ${seen.watcher} saw ${describe(seen.event)}` });
        }
      }
    }
  }

  const indexes = [...reference.keys()].sort((a, b) => a - b);
  for (const log of logs) {
    for (const segment of log.segments) {
      const own = new Set(segment.events.map((e) => e.index));
      for (let i = lowerBound(indexes, segment.from); i < indexes.length && indexes[i] <= segment.to; i++) {
        const { event, watcher } = reference.get(indexes[i])!;
        if (matches(log.filter, event.key) && !own.has(indexes[i])) {
          findings.push({ kind: 'gap', index: indexes[i], watcher: log.name, detail: `missed ${describe(event)} (seen by ${watcher}) inside [${segment.from}, ${segment.to}]` });
        }
      }
    }
  }

  let checked = 0;
  let uncovered = 0;
  for (const { op, index } of indexed) {
    const expected: WatchEvent | undefined =
      op.op === 'delete' ? (op.result?.found ? { index, type: 'delete', key: op.key } : undefined) : op.op === 'put' || op.result?.swapped ? { index, type: 'put', key: op.key, value: op.value } : undefined;
    if (!expected || op.outcome !== 'ok') continue;
    const covering = logs.filter((log) => matches(log.filter, op.key) && log.segments.some((s) => s.from <= index && index <= s.to));
    if (covering.length === 0) {
      uncovered++;
      continue;
    }
    checked++;
    const seen = reference.get(index)?.event;
    if (seen === undefined) findings.push({ kind: 'acknowledged write missing', index, detail: `${describe(expected)} (op #${op.id}, client ${op.client}) acknowledged at index ${index}; no watcher covering it saw it (${covering.map((l) => l.name).join(', ')})` });
    else if (!same(seen, expected)) findings.push({ kind: 'acknowledged write differs', index, detail: `op #${op.id} was acknowledged as ${describe(expected)} at index ${index}; the watchers saw ${describe(seen)}` });
  }

  // Who sent each value: values are unique per write, so one op per value (a retry is the same op).
  const writers = new Map<string, HistoryOp>();
  for (const op of history) if ((op.op === 'put' || op.op === 'cas') && op.value !== undefined) writers.set(op.value, op);
  const putAt = new Map<string, number[]>();
  for (const index of indexes) {
    const { event } = reference.get(index)!;
    if (event.type !== 'put') continue;
    const writer = writers.get(event.value!);
    if (!writer || writer.key !== event.key) findings.push({ kind: 'value nobody wrote', index, detail: `${describe(event)}: no client sent that value to that key` });
    else if (writer.outcome === 'fail' || (writer.op === 'cas' && writer.outcome === 'ok' && writer.result?.swapped === false)) {
      findings.push({ kind: 'failed write applied', index, detail: `${describe(event)}, but op #${writer.id} (${writer.op}) was answered ${writer.outcome === 'fail' ? 'failed' : 'not swapped (412)'}` });
    }
    const at = putAt.get(event.value!);
    if (at) at.push(index);
    else putAt.set(event.value!, [index]);
  }
  let appliedTwice = 0;
  for (const [value, at] of putAt) {
    if (at.length < 2) continue;
    appliedTwice++;
    findings.push({ kind: 'applied twice', index: at[1], detail: `value ${JSON.stringify(value)} put at indexes ${at.join(', ')} (op #${writers.get(value)?.id ?? '?'})` });
  }
  return { findings, events, indexes: indexes.length, acknowledged: { checked, uncovered }, appliedTwice };
}

/** The first position in the sorted `xs` whose value is >= x. */
function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `3 gaps (w2 at 118), 1 duplicate (w1 at 40)`: the findings by kind, with the first of each. */
export function summarizeFindings(findings: readonly WatchFinding[]): string {
  const byKind = new Map<string, WatchFinding[]>();
  for (const f of findings) {
    const list = byKind.get(f.kind);
    if (list) list.push(f);
    else byKind.set(f.kind, [f]);
  }
  return [...byKind].map(([kind, list]) => `${list.length} × ${kind} (first: ${list[0].watcher ? `${list[0].watcher} ` : ''}index ${list[0].index}: ${list[0].detail})`).join('; ');
}

import { HistoryOp } from './history';
import { Model, Operation, StepResult } from './model';

/**
 * The production model: every key is an independent register holding a string or "absent" (see
 * history.ts for the operations and outcomes). Values are interned to small integers when the history is
 * converted, so a state is an integer (0 = absent) that hashes and compares for free.
 *
 * Unobserved values: a value that no operation ever compares the register with (no get returned it, no
 * cas expected it) can only matter as "some value other than the observed ones", so all such values are
 * interned as one, UNOBSERVED. Every step accepts or rejects exactly as it would with the real values (it
 * only ever compares the state with observed values or absent), so verdicts are unchanged; but writes
 * whose value nobody saw (typically timed-out writes that never took effect) become interchangeable,
 * which the search's symmetry rule exploits. `mergeUnobserved: false` keeps every value distinct.
 */

export const GET = 0;
export const PUT = 1;
export const DELETE = 2;
export const CAS = 3;

/** `value` and `expected` are interned values (0 = absent). */
export interface RegisterInput {
  kind: typeof GET | typeof PUT | typeof DELETE | typeof CAS;
  key: string;
  value: number;
  expected: number;
}

/**
 * get: the interned value read (0 = absent). cas: 1 swapped, 0 not swapped. delete: 1 the key existed,
 * 0 it did not. NOT_OBSERVED: nothing was observed (put; delete without `found`; outcome unknown).
 */
export type RegisterOutput = number;
export const NOT_OBSERVED = -1;

const ABSENT = 0;
const UNOBSERVED = 1;

export interface ConvertedHistory {
  ops: Operation<RegisterInput, RegisterOutput>[];
  /** Operations left out: outcome `fail`, and `get`s of unknown outcome (they have no effect). */
  dropped: { failed: number; unknownReads: number };
}

export class RegisterKvModel implements Model<number, RegisterInput, RegisterOutput> {
  /** Interned values: index 0 is "absent", 1 stands for every unobserved value. */
  private readonly values: string[] = ['', ''];
  private readonly ids = new Map<string, number>();
  private observed: Set<string> | undefined;

  constructor(private readonly options: { mergeUnobserved?: boolean } = {}) {}

  /**
   * Converts a history to the checker's operations (each `ref` indexes `history`), interning values.
   * Call once: a model instance belongs to one history.
   */
  convert(history: readonly HistoryOp[]): ConvertedHistory {
    const ops: Operation<RegisterInput, RegisterOutput>[] = [];
    const dropped = { failed: 0, unknownReads: 0 };
    if (this.options.mergeUnobserved ?? true) {
      const observed = (this.observed ??= new Set());
      for (const h of history) {
        if (h.outcome === 'fail') continue;
        if (h.op === 'get' && h.outcome === 'ok' && h.result?.found) observed.add(h.result.value as string);
        if (h.op === 'cas' && typeof h.expected === 'string') observed.add(h.expected);
      }
    }
    history.forEach((h, ref) => {
      if (h.outcome === 'fail') {
        dropped.failed++;
        return;
      }
      const known = h.outcome === 'ok';
      if (h.op === 'get' && !known) {
        dropped.unknownReads++;
        return;
      }
      const call = h.start;
      const ret = known ? (h.end as number) : Infinity;
      let input: RegisterInput;
      let output: RegisterOutput = NOT_OBSERVED;
      switch (h.op) {
        case 'get':
          input = { kind: GET, key: h.key, value: ABSENT, expected: ABSENT };
          output = h.result?.found ? this.intern(h.result.value as string) : ABSENT;
          break;
        case 'put':
          input = { kind: PUT, key: h.key, value: this.intern(h.value as string), expected: ABSENT };
          break;
        case 'delete':
          input = { kind: DELETE, key: h.key, value: ABSENT, expected: ABSENT };
          if (known && typeof h.result?.found === 'boolean') output = h.result.found ? 1 : 0;
          break;
        case 'cas':
          input = {
            kind: CAS,
            key: h.key,
            value: this.intern(h.value as string),
            expected: h.expected === null || h.expected === undefined ? ABSENT : this.intern(h.expected),
          };
          if (known) output = h.result?.swapped ? 1 : 0;
          break;
      }
      ops.push({ input, output, call, ret, ref });
    });
    return { ops, dropped };
  }

  partition(ops: readonly Operation<RegisterInput, RegisterOutput>[]): Operation<RegisterInput, RegisterOutput>[][] {
    const byKey = new Map<string, Operation<RegisterInput, RegisterOutput>[]>();
    for (const op of ops) {
      let part = byKey.get(op.input.key);
      if (!part) byKey.set(op.input.key, (part = []));
      part.push(op);
    }
    return [...byKey.values()];
  }

  init(): number {
    return ABSENT;
  }

  step(state: number, input: RegisterInput, output: RegisterOutput): StepResult<number> {
    switch (input.kind) {
      case GET:
        return output === state ? [true, state] : [false, state];
      case PUT:
        return [true, input.value];
      case DELETE:
        if (output !== NOT_OBSERVED && (output === 1) !== (state !== ABSENT)) return [false, state];
        return [true, ABSENT];
      case CAS: {
        const match = state === input.expected;
        if (output === NOT_OBSERVED) return [true, match ? input.value : state];
        if ((output === 1) !== match) return [false, state];
        return [true, match ? input.value : state];
      }
    }
    return [false, state];
  }

  equal(a: number, b: number): boolean {
    return a === b;
  }

  hash(state: number): number {
    return state;
  }

  isReadOnly(input: RegisterInput, output: RegisterOutput): boolean {
    // A delete that found nothing is only accepted on an absent key, and leaves it absent.
    return input.kind === GET || (input.kind === CAS && output === 0) || (input.kind === DELETE && output === 0);
  }

  isBlindWrite(input: RegisterInput, output: RegisterOutput): boolean {
    return input.kind === PUT || (input.kind === DELETE && output === NOT_OBSERVED);
  }

  symmetryKey(input: RegisterInput, output: RegisterOutput): string {
    return `${input.kind}:${input.value}:${input.expected}:${output}:${input.key}`;
  }

  describeState(state: number): string {
    if (state === ABSENT) return 'absent';
    if (state === UNOBSERVED) return 'a value no operation observed';
    return JSON.stringify(this.values[state]);
  }

  describeOperation(input: RegisterInput, output: RegisterOutput): string {
    const k = JSON.stringify(input.key);
    const v = (id: number) => this.describeState(id);
    const unknown = output === NOT_OBSERVED ? ' -> ?' : '';
    switch (input.kind) {
      case GET:
        return `get(${k}) -> ${v(output)}`;
      case PUT:
        return `put(${k}, ${v(input.value)})`;
      case DELETE:
        return `delete(${k})` + (output === NOT_OBSERVED ? '' : output === 1 ? ' -> existed' : ' -> was absent');
      case CAS:
        return `cas(${k}, ${v(input.expected)} -> ${v(input.value)})` + (unknown || (output === 1 ? ' -> swapped' : ' -> not swapped'));
    }
    return '<invalid>';
  }

  private intern(value: string): number {
    if (this.observed && !this.observed.has(value)) return UNOBSERVED;
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(value);
      this.ids.set(value, id);
    }
    return id;
  }
}

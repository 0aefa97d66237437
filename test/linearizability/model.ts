/**
 * The sequential specification the checker tests a history against, and the operations it checks.
 * The production model is the per-key register of register-model.ts; porcupine-formats.ts has an
 * append model for porcupine's test data. Any object of this shape can be checked.
 */

/** One operation as the checker sees it. */
export interface Operation<I, O> {
  input: I;
  /** What the client observed; a model must accept any state's step for an unknown outcome. */
  output: O;
  /** Invocation time. */
  call: number;
  /** Response time; `Infinity` when the outcome is unknown: the operation then takes effect at most once,
   * at any instant after `call`, or never. */
  ret: number;
  /** Index of the operation in the caller's history, for reports. */
  ref: number;
}

/** `[true, next]` if `output` is what the operation returns from `state` (then `next` is the state after
 * it), `[false, state]` if it cannot be. */
export type StepResult<S> = readonly [ok: boolean, next: S];

export interface Model<S, I, O> {
  /**
   * Splits a history into independent sub-histories (P-compositionality: the history is linearizable
   * iff each part is). Each part gets its own `init()` state. Omit to check the history whole.
   */
  partition?(ops: readonly Operation<I, O>[]): Operation<I, O>[][];
  init(): S;
  /** Must not mutate `state`. */
  step(state: S, input: I, output: O): StepResult<S>;
  equal(a: S, b: S): boolean;
  /** A 32-bit integer; equal states must hash equal. */
  hash(state: S): number;
  /**
   * Optional. True if the operation never changes the state: in every state where `step` accepts it, it
   * returns that same state (a read; a compare-and-set whose compare failed). The search linearizes such
   * an operation as soon as it can, without trying alternatives. Omit, or return false, when unsure.
   */
  isReadOnly?(input: I, output: O): boolean;
  /**
   * Optional. True if the operation is accepted in every state and the state after it does not depend on
   * the state before (a put; a delete that reports nothing). Omit, or return false, when unsure.
   */
  isBlindWrite?(input: I, output: O): boolean;
  /**
   * Optional. Operations with the same symmetry key must have the same input and output, hence the same
   * effect on every state: the search then tries only one of each group at a time (search.ts, rule 3),
   * which prunes orders that cannot lead anywhere new. Return undefined for "no symmetry".
   */
  symmetryKey?(input: I, output: O): string | undefined;
  describeOperation(input: I, output: O): string;
  describeState(state: S): string;
}

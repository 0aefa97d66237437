/**
 * kvctl's exit codes. Scripts branch on them; keep them stable.
 * - 0 `Ok`: done.
 * - 1 `Failed`: the request did not succeed: no node reachable, no leader, a server error, a membership
 *   change the leader refused. Nothing was written (a write that may have been is `OutcomeUnknown`).
 * - 2 `Usage`: invalid arguments, whether kvctl or the node refused them (400, 413, 415).
 * - 3 `NotFound`: `get` of a key that does not exist; a member that does not exist.
 * - 4 `OutcomeUnknown`: a write or membership change was proposed but not confirmed in time; it may still
 *   take effect. A put or delete is first retried with the same Idempotency-Key until the budget is spent
 *   (it applies at most once): 4 means the budget ran out with the outcome still unknown.
 * - 5 `ConditionFailed`: a conditional write (`put --if-index`, `put --create`, `delete --if-index`) whose
 *   condition did not hold (412): nothing was written.
 */
export enum ExitCode {
  Ok = 0,
  Failed = 1,
  Usage = 2,
  NotFound = 3,
  OutcomeUnknown = 4,
  ConditionFailed = 5,
}

/** An error with a message fit for the user and the exit code it maps to. */
export class KvctlError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'KvctlError';
  }
}

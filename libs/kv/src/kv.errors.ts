/** The key is empty or longer than MAX_KEY_BYTES. */
export class InvalidKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidKeyError';
  }
}

/** The value is longer than MAX_VALUE_BYTES. */
export class ValueTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`value is ${bytes} bytes; the limit is ${limit} (MAX_VALUE_BYTES)`);
    this.name = 'ValueTooLargeError';
  }
}

/** GET of a key that does not exist. */
export class KeyNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`key not found: ${key}`);
    this.name = 'KeyNotFoundError';
  }
}

/**
 * A PUT refused on the leader, before it was proposed: it would grow the map past MAX_DATA_BYTES. Nothing
 * was written; deletes, and puts that do not grow the data, are still accepted.
 */
export class DataQuotaExceededError extends Error {
  constructor(
    /** The map's size (KvStateMachine.dataBytes) when the write was refused. */
    readonly dataBytes: number,
    /** MAX_DATA_BYTES. */
    readonly quotaBytes: number,
  ) {
    super(`Data quota exceeded: the store holds ${dataBytes} of MAX_DATA_BYTES ${quotaBytes} bytes; delete keys to make room`);
    this.name = 'DataQuotaExceededError';
  }
}

/**
 * A write's condition (If-Match, If-None-Match) did not hold when its entry was applied: nothing changed.
 * `modIndex` is the key's current one (null: the key does not exist).
 */
export class PreconditionFailedError extends Error {
  constructor(
    readonly key: string,
    readonly modIndex: number | null,
    reason: string,
    /** The answer of an earlier write with the same Idempotency-Key (said by the Idempotent-Replayed header). */
    readonly replayed = false,
  ) {
    super(reason);
    this.name = 'PreconditionFailedError';
  }
}

/** An If-Match or If-None-Match header that is not one of the forms the API accepts. */
export class InvalidConditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidConditionError';
  }
}

/** A `?ttl=` or an Idempotency-Key that is not one of the forms the API accepts (400). */
export class InvalidWriteOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidWriteOptionError';
  }
}

/** An Idempotency-Key already used (within the window) for a different request: nothing was applied (422). */
export class IdempotencyKeyReusedError extends Error {
  constructor(readonly token: string) {
    super(`Idempotency-Key ${JSON.stringify(token)} was used for a different request; use a new key for a new request`);
    this.name = 'IdempotencyKeyReusedError';
  }
}

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
 * A write's condition (If-Match, If-None-Match) did not hold when its entry was applied: nothing changed.
 * `modIndex` is the key's current one (null: the key does not exist).
 */
export class PreconditionFailedError extends Error {
  constructor(
    readonly key: string,
    readonly modIndex: number | null,
    reason: string,
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

import { KvCondition } from './kv-command';
import { InvalidConditionError } from './kv.errors';

/**
 * The conditions a write may carry, from its HTTP headers (RFC 9110 §13.1, restricted to what a key's single
 * version can mean):
 * - `If-Match: "N"` (or `N` unquoted, as curl users type it): the key exists and its modIndex is N;
 * - `If-Match: *`: the key exists;
 * - `If-None-Match: *`: the key does not exist (create only).
 * Neither header: undefined (an unconditional write). Anything else throws InvalidConditionError (400): a
 * list of ETags, a weak one (W/"N": a key has one version, compared strongly), another If-None-Match, or
 * both headers at once. A condition the API cannot express is refused rather than ignored, since ignoring
 * it would write without the guard the client asked for.
 */
export function parseConditionHeaders(ifMatch: string | undefined, ifNoneMatch: string | undefined): KvCondition | undefined {
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new InvalidConditionError('give If-Match or If-None-Match, not both');
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') {
      throw new InvalidConditionError(`If-None-Match must be * (create only), got ${JSON.stringify(ifNoneMatch)}`);
    }
    return { kind: 'absent' };
  }
  if (ifMatch === undefined) return undefined;
  const text = ifMatch.trim();
  if (text === '*') return { kind: 'exists' };
  const digits = /^"(\d{1,16})"$/.exec(text)?.[1] ?? /^(\d{1,16})$/.exec(text)?.[1];
  const modIndex = digits === undefined ? NaN : Number(digits);
  if (!Number.isSafeInteger(modIndex)) {
    throw new InvalidConditionError(
      `If-Match must be one modIndex as an ETag ("42", or 42) or *, got ${JSON.stringify(ifMatch)}`,
    );
  }
  return { kind: 'modIndex', modIndex };
}

/** A key's ETag: its modIndex, quoted (a strong ETag). */
export function etag(modIndex: number): string {
  return `"${modIndex}"`;
}

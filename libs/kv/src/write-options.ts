import { createHash } from 'node:crypto';
import { FINGERPRINT_BYTES, KvCondition, MAX_IDEMPOTENCY_TOKEN_BYTES } from './kv-command';
import { InvalidWriteOptionError } from './kv.errors';

/** The longest TTL a PUT accepts, in seconds (10 years: longer is no expiry worth the name, and it fits a u32). */
export const MAX_TTL_SECONDS = 315_360_000;

/**
 * A PUT's `?ttl=` query value: whole seconds, 1 to MAX_TTL_SECONDS, digits only. Undefined when absent. Anything
 * else throws InvalidWriteOptionError (400): a TTL the store cannot honour is refused rather than ignored.
 */
export function parseTtl(raw: unknown): number | undefined {
  if (raw === undefined) return undefined;
  const ttl = typeof raw === 'string' && /^[1-9]\d{0,9}$/.test(raw) ? Number(raw) : NaN;
  if (!(ttl <= MAX_TTL_SECONDS)) {
    throw new InvalidWriteOptionError(`ttl must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}, got ${JSON.stringify(raw)}`);
  }
  return ttl;
}

/**
 * An Idempotency-Key header: 1 to 128 visible ASCII characters (0x21-0x7e), as sent (no trimming beyond
 * what HTTP already does). Undefined when absent; anything else throws InvalidWriteOptionError (400).
 */
export function parseIdempotencyKey(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !new RegExp(`^[\\x21-\\x7e]{1,${MAX_IDEMPOTENCY_TOKEN_BYTES}}$`).test(raw)) {
    throw new InvalidWriteOptionError(
      `Idempotency-Key must be one token of 1 to ${MAX_IDEMPOTENCY_TOKEN_BYTES} visible ASCII characters (a UUID, say), got ${JSON.stringify(raw)}`,
    );
  }
  return raw;
}

/** What a write asks for, as its fingerprint covers it. */
export interface WriteRequest {
  method: 'PUT' | 'DELETE';
  key: string;
  value?: string;
  condition?: KvCondition;
  ttl?: number;
}

/**
 * The fingerprint of a write request: the first FINGERPRINT_BYTES bytes of a SHA-256 over its method, key,
 * value, condition and TTL, each length-prefixed (so no two requests share an encoding). A retry sends the
 * same request, hence the same fingerprint; a token reused for another request is told apart by it.
 */
export function requestFingerprint({ method, key, value, condition, ttl }: WriteRequest): Buffer {
  const hash = createHash('sha256');
  const part = (text: string) => {
    const bytes = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.length);
    hash.update(length).update(bytes);
  };
  part(method);
  part(key);
  part(value === undefined ? '' : `=${value}`);
  part(condition === undefined ? '' : condition.kind === 'modIndex' ? `modIndex ${condition.modIndex}` : condition.kind);
  part(ttl === undefined ? '' : String(ttl));
  return hash.digest().subarray(0, FINGERPRINT_BYTES);
}

import { FINGERPRINT_BYTES } from './kv-command';
import { InvalidWriteOptionError } from './kv.errors';
import { MAX_TTL_SECONDS, parseIdempotencyKey, parseTtl, requestFingerprint } from './write-options';

describe('parseTtl', () => {
  it('takes whole seconds from 1 to MAX_TTL_SECONDS; undefined when absent', () => {
    expect(parseTtl(undefined)).toBeUndefined();
    expect(parseTtl('1')).toBe(1);
    expect(parseTtl(String(MAX_TTL_SECONDS))).toBe(MAX_TTL_SECONDS);
  });

  it.each<unknown>(['0', '01', '-1', '1.0', '1e2', '', 'x', String(MAX_TTL_SECONDS + 1), ['1', '2'], 5])('refuses %j', (raw) => {
    expect(() => parseTtl(raw)).toThrow(InvalidWriteOptionError);
  });
});

describe('parseIdempotencyKey', () => {
  it('takes 1 to 128 visible ASCII characters as they are', () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
    expect(parseIdempotencyKey('3f2b8c1e-6a4d-4f0a-9d2e-8b7c6a5d4e3f')).toBe('3f2b8c1e-6a4d-4f0a-9d2e-8b7c6a5d4e3f');
    expect(parseIdempotencyKey('!~')).toBe('!~');
    expect(parseIdempotencyKey('k'.repeat(128))).toBe('k'.repeat(128));
  });

  it.each<[string, string | string[]]>([
    ['empty', ''],
    ['too long', 'k'.repeat(129)],
    ['with a space', 'a b'],
    ['with a control character', 'a\tb'],
    ['not ASCII', 'clé'],
    ['repeated', ['a', 'b']],
  ])('refuses a key %s with 400, naming the rule', (_name, raw) => {
    expect(() => parseIdempotencyKey(raw)).toThrow(/Idempotency-Key must be one token of 1 to 128 visible ASCII characters/);
  });
});

describe('requestFingerprint', () => {
  const base = { method: 'PUT', key: 'k', value: 'v' } as const;

  it('is FINGERPRINT_BYTES bytes, the same for the same request', () => {
    expect(requestFingerprint(base)).toHaveLength(FINGERPRINT_BYTES);
    expect(requestFingerprint({ ...base })).toEqual(requestFingerprint(base));
  });

  it('differs when any part of the request differs, boundaries included', () => {
    const variants = [
      requestFingerprint(base),
      requestFingerprint({ ...base, method: 'DELETE' }),
      requestFingerprint({ ...base, key: 'k2' }),
      requestFingerprint({ ...base, value: 'v2' }),
      requestFingerprint({ ...base, value: '' }),
      requestFingerprint({ method: 'PUT', key: 'k' }),
      requestFingerprint({ ...base, ttl: 5 }),
      requestFingerprint({ ...base, condition: { kind: 'absent' } }),
      requestFingerprint({ ...base, condition: { kind: 'exists' } }),
      requestFingerprint({ ...base, condition: { kind: 'modIndex', modIndex: 4 } }),
      requestFingerprint({ ...base, key: 'kv', value: '' }),
    ].map((b) => b.toString('hex'));
    expect(new Set(variants).size).toBe(variants.length);
  });
});

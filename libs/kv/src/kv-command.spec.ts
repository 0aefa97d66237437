import { decodeCommand, encodeCommand, KvCommand } from './kv-command';

const hex = (command: KvCommand) => encodeCommand(command).toString('hex');

describe('KV command encoding', () => {
  it('writes an unconditional command as version 1, byte for byte as before conditions existed', () => {
    expect(hex({ op: 'put', key: 'k', value: 'vé' })).toBe(['01', '01', '01000000', '6b', '76c3a9'].join(''));
    expect(hex({ op: 'delete', key: 'k' })).toBe(['01', '02', '01000000', '6b'].join(''));
  });

  it('writes a condition after the op, in version 2: exists, absent, or a u64 modIndex', () => {
    expect(hex({ op: 'put', key: 'k', value: 'v', condition: { kind: 'exists' } })).toBe(['02', '01', '01', '01000000', '6b', '76'].join(''));
    expect(hex({ op: 'delete', key: 'k', condition: { kind: 'absent' } })).toBe(['02', '02', '02', '01000000', '6b'].join(''));
    expect(hex({ op: 'put', key: 'k', value: '', condition: { kind: 'modIndex', modIndex: 2 ** 32 + 5 } })).toBe(
      ['02', '01', '03', '0500000001000000', '01000000', '6b'].join(''),
    );
  });

  it('writes version 3 only for a command with a TTL, an Idempotency-Key or an expiry: flags, then the leader\'s at', () => {
    const at = '0050c0ffee010000';
    const time = 0x01eeffc05000;
    expect(hex({ op: 'put', key: 'k', value: 'v', ttl: 30, at: time })).toBe(['03', '01', '02', at, '1e000000', '01000000', '6b', '76'].join(''));
    expect(hex({ op: 'delete', key: 'k', at: time, idempotency: { token: 'ab', fingerprint: Buffer.alloc(16, 0xee) } })).toBe(
      ['03', '02', '04', at, '02', '6162', 'ee'.repeat(16), '01000000', '6b'].join(''),
    );
    expect(hex({ op: 'put', key: 'k', value: '', condition: { kind: 'absent' }, ttl: 1, at: time })).toBe(
      ['03', '01', '03', at, '02', '01000000', '01000000', '6b'].join(''),
    );
    expect(hex({ op: 'expire', at: time, keys: [{ key: 'a', modIndex: 7 }, { key: 'bc', modIndex: 2 ** 32 }] })).toBe(
      ['03', '03', '00', at, '02000000', '0700000000000000', '01000000', '61', '0000000001000000', '02000000', '6263'].join(''),
    );
  });

  it('refuses to write a TTL or a token without the leader\'s time, or a TTL that is not a positive u32', () => {
    expect(() => encodeCommand({ op: 'put', key: 'k', value: 'v', ttl: 5 })).toThrow(/needs the leader's time/);
    expect(() => encodeCommand({ op: 'put', key: 'k', value: 'v', ttl: 0, at: 1 })).toThrow(RangeError);
    expect(() => encodeCommand({ op: 'put', key: 'k', value: 'v', ttl: 1.5, at: 1 })).toThrow(RangeError);
  });

  it.each<[string, KvCommand]>([
    ['a put with a TTL', { op: 'put', key: 'ключ', value: 'v', ttl: 4_000_000_000, at: 1_800_000_000_000 }],
    ['a conditional put with a TTL and a token', { op: 'put', key: 'k', value: 'v', condition: { kind: 'modIndex', modIndex: 9 }, ttl: 2, at: 5, idempotency: { token: 'x'.repeat(128), fingerprint: Buffer.alloc(16, 1) } }],
    ['a delete with a token', { op: 'delete', key: 'k', at: 5, idempotency: { token: '~!', fingerprint: Buffer.alloc(16, 2) } }],
    ['a put with only at', { op: 'put', key: 'k', value: 'v', at: 5 }],
    ['an expiry of many keys', { op: 'expire', at: 5, keys: [{ key: 'a', modIndex: 1 }, { key: '', modIndex: Number.MAX_SAFE_INTEGER }] }],
    ['an expiry of no key', { op: 'expire', at: 5, keys: [] }],
  ])('round-trips %s in version 3', (_name, command) => {
    const bytes = encodeCommand(command);
    expect(bytes[0]).toBe(3);
    expect(decodeCommand(bytes)).toEqual(command);
  });

  it.each<[string, KvCommand]>([
    ['a plain put', { op: 'put', key: 'ключ', value: 'значение 🎉' }],
    ['a plain delete', { op: 'delete', key: 'k' }],
    ['a put with an empty value', { op: 'put', key: 'k', value: '' }],
    ['If-Match', { op: 'put', key: 'k', value: 'v', condition: { kind: 'modIndex', modIndex: 42 } }],
    ['If-Match with the largest index', { op: 'delete', key: 'k', condition: { kind: 'modIndex', modIndex: Number.MAX_SAFE_INTEGER } }],
    ['If-Match: *', { op: 'delete', key: 'k', condition: { kind: 'exists' } }],
    ['If-None-Match: *', { op: 'put', key: 'lock', value: 'me', condition: { kind: 'absent' } }],
  ])('round-trips %s', (_name, command) => {
    expect(decodeCommand(encodeCommand(command))).toEqual(command);
  });

  it.each<[string, number[]]>([
    ['an unknown version', [4, 1, 0, 0, 0, 0]],
    ['a version 3 unknown op', [3, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
    ['a version 3 unknown flag', [3, 1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
    ['a version 3 delete with a TTL', [3, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]],
    ['a version 3 TTL of 0', [3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
    ['a version 3 header cut short', [3, 1, 0, 0, 0, 0]],
    ['a version 3 token cut short', [3, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x61, 0x62]],
    ['an expiry whose key runs past the end', [3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0x61]],
    ['an expiry with trailing bytes', [3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]],
    ['an unknown op', [1, 9, 0, 0, 0, 0]],
    ['an unknown condition', [2, 1, 9, 0, 0, 0, 0]],
    ['a condition cut short', [2, 1, 3, 1, 0, 0]],
    ['a modIndex past 2^53', [2, 2, 3, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0]],
    ['a key running past the end', [2, 2, 1, 5, 0, 0, 0, 0x6b]],
    ['a delete with trailing bytes', [2, 2, 1, 1, 0, 0, 0, 0x6b, 0x6b]],
    ['a header cut short', [1, 1, 0]],
  ])('refuses %s', (_name, bytes) => {
    expect(decodeCommand(Uint8Array.from(bytes))).toBeUndefined();
  });
});

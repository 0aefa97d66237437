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
    ['an unknown version', [3, 1, 0, 0, 0, 0]],
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

import { KvCondition } from './kv-command';
import { etag, parseConditionHeaders } from './conditional-headers';
import { InvalidConditionError } from './kv.errors';

describe('parseConditionHeaders', () => {
  it.each<[string | undefined, string | undefined, KvCondition | undefined]>([
    [undefined, undefined, undefined],
    ['"42"', undefined, { kind: 'modIndex', modIndex: 42 }],
    ['42', undefined, { kind: 'modIndex', modIndex: 42 }],
    [' "7" ', undefined, { kind: 'modIndex', modIndex: 7 }],
    ['"9007199254740991"', undefined, { kind: 'modIndex', modIndex: Number.MAX_SAFE_INTEGER }],
    ['*', undefined, { kind: 'exists' }],
    [undefined, '*', { kind: 'absent' }],
    [undefined, ' * ', { kind: 'absent' }],
  ])('If-Match %j, If-None-Match %j', (ifMatch, ifNoneMatch, expected) => {
    expect(parseConditionHeaders(ifMatch, ifNoneMatch)).toEqual(expected);
  });

  it.each<[string | undefined, string | undefined, RegExp]>([
    ['', undefined, /If-Match must be one modIndex/],
    ['"abc"', undefined, /If-Match must be one modIndex/],
    ['-1', undefined, /If-Match must be one modIndex/],
    ['4.2', undefined, /If-Match must be one modIndex/],
    ['"42', undefined, /If-Match must be one modIndex/],
    ['W/"42"', undefined, /If-Match must be one modIndex/],
    ['"1", "2"', undefined, /If-Match must be one modIndex/],
    ['"9007199254740992"', undefined, /If-Match must be one modIndex/],
    ['"12345678901234567"', undefined, /If-Match must be one modIndex/],
    [undefined, '"42"', /If-None-Match must be \*/],
    ['"1"', '*', /not both/],
  ])('refuses If-Match %j, If-None-Match %j', (ifMatch, ifNoneMatch, message) => {
    let thrown: unknown;
    try {
      parseConditionHeaders(ifMatch, ifNoneMatch);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidConditionError);
    expect((thrown as Error).message).toMatch(message);
  });

  it('an ETag is the modIndex quoted, which If-Match reads back', () => {
    expect(etag(42)).toBe('"42"');
    expect(parseConditionHeaders(etag(42), undefined)).toEqual({ kind: 'modIndex', modIndex: 42 });
  });
});

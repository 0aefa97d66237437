import fc from 'fast-check';
import { KeyIndex, utf8SortKey } from './key-index';

/** The order the index keeps: the sort keys' UTF-16 order. */
function compareUtf8(a: string, b: string): number {
  const x = utf8SortKey(a);
  const y = utf8SortKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

function indexOf(...keys: string[]): KeyIndex {
  const index = new KeyIndex();
  for (const key of keys) index.add(key);
  return index;
}

describe('utf8SortKey: UTF-16 order of sort keys is UTF-8 byte order', () => {
  it.each([
    ['a', 'b', -1],
    ['b', 'a', 1],
    ['a', 'a', 0],
    ['a', 'ab', -1],
    ['', 'a', -1],
    ['Z', 'a', -1],
    // The cases where UTF-16 code unit order (`<`) is wrong: a character above U+FFFF against U+E000-U+FFFF.
    ['\u{1F511}', '\uFFFD', 1],
    ['\uE000', '\u{10000}', -1],
    ['x\u{1F511}', 'x\uFF5E', 1],
    // Two characters above U+FFFF: the lead surrogates, then the trail ones, keep their order.
    ['\u{1F511}', '\u{1F512}', -1],
    ['\u{10000}', '\u{1F511}', -1],
    ['é', 'z', 1],
  ])('compare(%j, %j) has the sign %d', (a, b, sign) => {
    expect(Math.sign(compareUtf8(a, b))).toBe(sign);
    expect(Math.sign(utf8Order(a, b))).toBe(sign);
  });

  it('leaves keys without a unit from U+D800 up as they are (the same string, no copy)', () => {
    expect(utf8SortKey('user/ключ/é')).toBe('user/ключ/é');
    expect(utf8SortKey('a\uFFFD')).not.toBe('a\uFFFD');
  });

  it('agrees with Buffer.compare of the UTF-8 bytes on any strings of valid characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(Math.sign(compareUtf8(a, b))).toBe(Math.sign(utf8Order(a, b)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('KeyIndex', () => {
  it('keeps keys in UTF-8 byte order, once each, and forgets deleted ones', () => {
    const index = indexOf('b', 'a', '\uFFFD', '\u{1F511}', 'é', 'a', 'c');
    index.delete('c');
    index.delete('missing');
    expect([...index.keys()]).toEqual(['a', 'b', 'é', '\uFFFD', '\u{1F511}']);
    expect(index.size).toBe(5);
    expect(index.has('c')).toBe(false);
  });

  describe('range', () => {
    const index = indexOf('user/1', 'user/2', 'user/10', 'user', 'users', 'usen', 'user/ключ', 'user/🔑', 'user/\uFFFD', 'v');

    it.each<[string, { prefix: string; after?: string; limit: number }, string[], boolean]>([
      ['a prefix: its keys only, in byte order', { prefix: 'user/', limit: 10 }, ['user/1', 'user/10', 'user/2', 'user/ключ', 'user/\uFFFD', 'user/🔑'], false],
      ['the prefix itself is a key of it', { prefix: 'user', limit: 3 }, ['user', 'user/1', 'user/10'], true],
      ['an empty prefix: everything', { prefix: '', limit: 100 }, ['usen', 'user', 'user/1', 'user/10', 'user/2', 'user/ключ', 'user/\uFFFD', 'user/🔑', 'users', 'v'], false],
      ['a limit cuts the page and says more', { prefix: 'user/', limit: 2 }, ['user/1', 'user/10'], true],
      ['a page exactly as long as the rest: no more', { prefix: 'user/', limit: 6 }, ['user/1', 'user/10', 'user/2', 'user/ключ', 'user/\uFFFD', 'user/🔑'], false],
      ['after a key: the keys that follow it', { prefix: 'user/', after: 'user/10', limit: 2 }, ['user/2', 'user/ключ'], true],
      ['after a key that is not there', { prefix: 'user/', after: 'user/11', limit: 10 }, ['user/2', 'user/ключ', 'user/\uFFFD', 'user/🔑'], false],
      ['after a multi-byte key', { prefix: 'user/', after: 'user/\uFFFD', limit: 10 }, ['user/🔑'], false],
      ['after the last key: nothing', { prefix: 'user/', after: 'user/🔑', limit: 10 }, [], false],
      ['after a cursor before the prefix: from the prefix', { prefix: 'user/', after: 'a', limit: 1 }, ['user/1'], true],
      ['after a cursor beyond the prefix: nothing', { prefix: 'user/', after: 'w', limit: 10 }, [], false],
      ['an empty cursor: from the start', { prefix: 'user/', after: '', limit: 1 }, ['user/1'], true],
      ['a prefix no key has', { prefix: 'x', limit: 10 }, [], false],
      ['a prefix above every key', { prefix: '\u{10FFFF}', limit: 10 }, [], false],
      ['a multi-byte prefix', { prefix: 'user/к', limit: 10 }, ['user/ключ'], false],
    ])('%s', (_name, range, keys, more) => {
      expect(index.range(range)).toEqual({ keys, more });
    });

    it('following the cursor page by page yields every key of the prefix once, in order', () => {
      fc.assert(
        fc.property(fc.uniqueArray(fc.string({ unit: 'grapheme', maxLength: 4 }), { maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 1 }), fc.integer({ min: 1, max: 7 }), (keys, prefix, limit) => {
          const index = indexOf(...keys);
          const seen: string[] = [];
          let after: string | undefined;
          for (let pages = 0; ; pages++) {
            const page = index.range({ prefix, after, limit });
            expect(page.keys.length).toBeLessThanOrEqual(limit);
            seen.push(...page.keys);
            if (!page.more) break;
            expect(page.keys.length).toBe(limit);
            after = page.keys[page.keys.length - 1];
          }
          expect(seen).toEqual(keys.filter((k) => k.startsWith(prefix)).sort(utf8Order));
        }),
        { numRuns: 300 },
      );
    });
  });

  it('rebuild replaces the content with the given keys, in order, and stays editable', () => {
    const index = indexOf('old');
    index.rebuild(new Map([['b', 1], ['\u{1F511}', 2], ['a', 3], ['\uFFFD', 4]]).keys());
    expect([...index.keys()]).toEqual(['a', 'b', '\uFFFD', '\u{1F511}']);
    index.add('c');
    index.delete('a');
    expect([...index.keys()]).toEqual(['b', 'c', '\uFFFD', '\u{1F511}']);
    index.rebuild([]);
    expect(index.size).toBe(0);
    expect(index.range({ prefix: '', limit: 5 })).toEqual({ keys: [], more: false });
  });

  it('rebuilds a large map as if each key had been added', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `k/${(i * 7919) % 5000}/${i % 3 === 0 ? 'é' : ''}`);
    const built = new KeyIndex();
    built.rebuild(keys);
    expect([...built.keys()]).toEqual([...indexOf(...keys).keys()]);
    expect(built.range({ prefix: 'k/42', limit: 1000 }).keys).toEqual(keys.filter((k) => k.startsWith('k/42')).sort(utf8Order));
  });
});

import {
  decodeKvSnapshot,
  encodeKvSnapshot,
  KV_SNAPSHOT_CHUNK_BYTES,
  KvSnapshotDecoder,
  MalformedKvSnapshotError,
} from './kv-snapshot-format';

const encode = (pairs: Array<[string, string]>, target?: number) => [...encodeKvSnapshot(pairs, target)];
const concat = (chunks: Uint8Array[]) => Buffer.concat(chunks);

describe('KV snapshot format', () => {
  it('lays a chunk out as version, flags, index, pair count, then length-prefixed utf-8 pairs', () => {
    const [chunk] = encode([['k', 'vé']]);
    expect(Buffer.from(chunk).toString('hex')).toBe(
      ['01', '01', '00000000', '01000000', '01000000', '6b', '03000000', '76c3a9'].join(''),
    );
  });

  it('encodes an empty map as one last chunk without pairs', () => {
    const chunks = encode([]);
    expect(chunks.map((c) => Buffer.from(c).toString('hex'))).toEqual(['01010000000000000000']);
    expect(decodeKvSnapshot(chunks)).toEqual(new Map());
  });

  it('fills chunks up to the target with whole pairs, and gives a pair larger than the target a chunk of its own', () => {
    const big = 'x'.repeat(100);
    // Each small pair is 8 + 1 + 9 = 18 bytes; a 10-byte header plus 3 of them is 64, the target.
    const small = (i: number): [string, string] => [String.fromCharCode(97 + i), 'v'.repeat(9)];
    const chunks = encode([small(0), small(1), small(2), small(3), ['B', big], small(4)], 64);
    expect(chunks.map((c) => c.length)).toEqual([64, 10 + 18, 10 + 8 + 1 + 100, 10 + 18]);
    expect(chunks.map((c) => c[1])).toEqual([0, 0, 0, 1]);
    expect(chunks.map((c) => Buffer.from(c).readUInt32LE(2))).toEqual([0, 1, 2, 3]);
    expect(decodeKvSnapshot(chunks).get('B')).toBe(big);
  });

  it('is lazy: a chunk pulls only the pairs it holds, and one more', () => {
    let pulled = 0;
    function* pairs(): Generator<[string, string]> {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield [`key-${i}`, 'v'.repeat(1000)];
      }
    }
    const chunks = encodeKvSnapshot(pairs());
    expect(pulled).toBe(0);
    const first = chunks.next().value as Uint8Array;
    const held = Buffer.from(first).readUInt32LE(6);
    expect(held).toBeGreaterThan(100);
    expect(pulled).toBe(held + 1);
    expect(first.length).toBeLessThanOrEqual(KV_SNAPSHOT_CHUNK_BYTES);
  });

  it('decodes several whole chunks concatenated in one piece', () => {
    const pairs: Array<[string, string]> = Array.from({ length: 50 }, (_, i) => [`k${i}`, `v${i}`]);
    const chunks = encode(pairs, 100);
    expect(chunks.length).toBeGreaterThan(5);
    expect(decodeKvSnapshot([concat(chunks)])).toEqual(new Map(pairs));
    expect(decodeKvSnapshot([concat(chunks.slice(0, 3)), concat(chunks.slice(3))])).toEqual(new Map(pairs));
  });

  it('decodes chunks that are views into a larger buffer', () => {
    const [chunk] = encode([['a', 'b']]);
    const padded = new Uint8Array(chunk.length + 7);
    padded.set(chunk, 3);
    expect(decodeKvSnapshot([padded.subarray(3, 3 + chunk.length)])).toEqual(new Map([['a', 'b']]));
  });

  describe('refuses what a view did not write, saying why', () => {
    const pairs: Array<[string, string]> = [
      ['alpha', 'one'],
      ['beta', 'two'],
      ['gamma', 'three'],
    ];
    const chunks = encode(pairs, 30);
    const modified = (i: number, edit: (b: Buffer) => void) =>
      chunks.map((c, j) => {
        const copy = Buffer.from(c);
        if (j === i) edit(copy);
        return copy;
      });

    it.each<[string, () => Uint8Array[], RegExp]>([
      ['a chunk cut inside a value', () => [...chunks.slice(0, 2), chunks[2].subarray(0, chunks[2].length - 1)], /chunk 2 at byte 0: pair 0 of 1: the value runs past the end/],
      ['a chunk cut inside a length', () => [chunks[0].subarray(0, 12)], /chunk 0 .*pair 0 of 1: the key runs past the end/],
      ['a chunk cut inside its header', () => [chunks[0].subarray(0, 5)], /5 bytes, shorter than a chunk header/],
      ['an unknown version', () => modified(1, (b) => (b[0] = 2)), /chunk 1 at byte 0: version 2, expected 1/],
      ['an unknown flag', () => modified(0, (b) => (b[1] = 4)), /unknown flags 4/],
      ['a missing chunk', () => [chunks[0], chunks[2]], /chunk index 2, expected 1/],
      ['a repeated chunk', () => [chunks[0], chunks[0]], /chunk index 0, expected 1/],
      ['a key length pointing past the end', () => modified(0, (b) => b.writeUInt32LE(0xffffffff, 10)), /the key runs past the end/],
      ['bytes after the last chunk', () => [...chunks, Buffer.from([1])], /1 bytes after the last chunk/],
      ['bytes after the last chunk, in its piece', () => [...chunks.slice(0, 2), Buffer.concat([chunks[2], Buffer.from([9, 9])])], /2 bytes after the last chunk/],
      ['bytes after a chunk, in its piece', () => [Buffer.concat([chunks[0], Buffer.from([1, 0, 1])]), ...chunks.slice(1)], /piece 0, chunk 1 at byte 26: 3 bytes, shorter than a chunk header/],
      ['an empty piece', () => [chunks[0], new Uint8Array(0)], /piece 1 is empty/],
      ['no chunks', () => [], /no chunks/],
      ['no last chunk', () => chunks.slice(0, 2), /ends after chunk 1, which is not the last/],
      ['a key twice', () => encode([['a', '1'], ['a', '2']]), /key "a" seen twice/],
    ])('%s', (_name, input, message) => {
      let thrown: unknown;
      try {
        decodeKvSnapshot(input());
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(MalformedKvSnapshotError);
      expect((thrown as Error).message).toMatch(/^malformed KV snapshot: /);
      expect((thrown as Error).message).toMatch(message);
    });

    it('accepts the same chunks unmodified', () => {
      expect(chunks.length).toBe(3);
      expect(decodeKvSnapshot(modified(-1, () => undefined))).toEqual(new Map(pairs));
    });
  });

  it('round-trips keys and values of every shape', () => {
    const pairs: Array<[string, string]> = [
      ['', ''],
      ['empty value', ''],
      ['日本語のキー', 'значение 🎉'],
      ['\u0000nul\u0000', 'line\nbreak\ttab'],
      ['𝄞', 'x'.repeat(KV_SNAPSHOT_CHUNK_BYTES + 1)],
    ];
    const decoder = new KvSnapshotDecoder();
    for (const chunk of encodeKvSnapshot(pairs)) decoder.push(chunk);
    expect(decoder.finish()).toEqual(new Map(pairs));
  });
});

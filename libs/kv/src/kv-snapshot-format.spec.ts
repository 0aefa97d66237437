import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeKvSnapshot,
  decodeKvSnapshotRecords,
  encodeKvSnapshot,
  KV_SNAPSHOT_CHUNK_BYTES,
  KvRecord,
  KvSnapshotDecoder,
  MalformedKvSnapshotError,
} from './kv-snapshot-format';

/** Pairs with indexes that depend on nothing but the pair's position, for the tests that look at values. */
const records = (pairs: Iterable<[string, string]>): Array<[string, KvRecord]> =>
  [...pairs].map(([key, value], i) => [key, { value, createIndex: i + 1, modIndex: i + 2 }]);
const encode = (pairs: Array<[string, string]>, target?: number) => [...encodeKvSnapshot(records(pairs), target)];
const concat = (chunks: Uint8Array[]) => Buffer.concat(chunks);
/** Written by the format 1 encoder (main at 5c1bd1c, before keys had indexes), 64-byte chunks: 4 of them. */
const FORMAT_1 = readFileSync(join(__dirname, 'testdata', 'snapshot-format-1.bin'));
const FORMAT_1_PAIRS = new Map([
  ['config/mode', 'primary'],
  ['日本語', 'значение'],
  ['empty', ''],
  ['lock', 'owner-1'],
  ['big', 'x'.repeat(100)],
]);

describe('KV snapshot format', () => {
  it('lays a chunk out as version, flags, index, pair count, then length-prefixed utf-8 pairs with their u64 indexes', () => {
    const [chunk] = encodeKvSnapshot([['k', { value: 'vé', createIndex: 7, modIndex: 2 ** 32 + 9 }]]);
    expect(Buffer.from(chunk).toString('hex')).toBe(
      ['02', '01', '00000000', '01000000', '01000000', '6b', '03000000', '76c3a9', '0700000000000000', '0900000001000000'].join(''),
    );
  });

  it('round-trips indexes up to 2^53 - 1', () => {
    const pairs: Array<[string, KvRecord]> = [
      ['a', { value: '1', createIndex: 1, modIndex: 1 }],
      ['b', { value: '2', createIndex: 2 ** 32, modIndex: Number.MAX_SAFE_INTEGER }],
    ];
    expect(decodeKvSnapshotRecords(encodeKvSnapshot(pairs))).toEqual(new Map(pairs));
  });

  it('encodes an empty map as one last chunk without pairs', () => {
    const chunks = encode([]);
    expect(chunks.map((c) => Buffer.from(c).toString('hex'))).toEqual(['02010000000000000000']);
    expect(decodeKvSnapshot(chunks)).toEqual(new Map());
  });

  it('fills chunks up to the target with whole pairs, and gives a pair larger than the target a chunk of its own', () => {
    const big = 'x'.repeat(100);
    // Each small pair is 8 + 1 + 9 + 16 = 34 bytes; a 10-byte header plus 3 of them is 112, the target.
    const small = (i: number): [string, string] => [String.fromCharCode(97 + i), 'v'.repeat(9)];
    const chunks = encode([small(0), small(1), small(2), small(3), ['B', big], small(4)], 112);
    expect(chunks.map((c) => c.length)).toEqual([112, 10 + 34, 10 + 24 + 1 + 100, 10 + 34]);
    expect(chunks.map((c) => c[1])).toEqual([0, 0, 0, 1]);
    expect(chunks.map((c) => Buffer.from(c).readUInt32LE(2))).toEqual([0, 1, 2, 3]);
    expect(decodeKvSnapshot(chunks).get('B')).toBe(big);
  });

  it('is lazy: a chunk pulls only the pairs it holds, and one more', () => {
    let pulled = 0;
    function* pairs(): Generator<[string, KvRecord]> {
      for (let i = 0; i < 1000; i++) {
        pulled++;
        yield [`key-${i}`, { value: 'v'.repeat(1000), createIndex: i + 1, modIndex: i + 1 }];
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
      ['a chunk cut inside a value', () => [...chunks.slice(0, 2), chunks[2].subarray(0, chunks[2].length - 17)], /chunk 2 at byte 0: pair 0 of 1: the value runs past the end/],
      ['a chunk cut inside the indexes', () => [...chunks.slice(0, 2), chunks[2].subarray(0, chunks[2].length - 1)], /chunk 2 at byte 0: pair 0 of 1: the indexes run past the end/],
      ['an index past 2^53', () => modified(0, (b) => b.writeUInt32LE(2 ** 21, b.length - 4)), /chunk 0 .*pair 0 of 1: an index past 2\^53/],
      ['a chunk cut inside a length', () => [chunks[0].subarray(0, 12)], /chunk 0 .*pair 0 of 1: the key runs past the end/],
      ['a chunk cut inside its header', () => [chunks[0].subarray(0, 5)], /5 bytes, shorter than a chunk header/],
      ['an unknown version', () => modified(0, (b) => (b[0] = 3)), /chunk 0 at byte 0: version 3, expected 2 \(or 1\)/],
      ['a version that changes midway', () => modified(1, (b) => (b[0] = 1)), /chunk 1 at byte 0: version 1, expected 2 as in the chunks before/],
      ['an unknown flag', () => modified(0, (b) => (b[1] = 4)), /unknown flags 4/],
      ['a missing chunk', () => [chunks[0], chunks[2]], /chunk index 2, expected 1/],
      ['a repeated chunk', () => [chunks[0], chunks[0]], /chunk index 0, expected 1/],
      ['a key length pointing past the end', () => modified(0, (b) => b.writeUInt32LE(0xffffffff, 10)), /the key runs past the end/],
      ['bytes after the last chunk', () => [...chunks, Buffer.from([1])], /1 bytes after the last chunk/],
      ['bytes after the last chunk, in its piece', () => [...chunks.slice(0, 2), Buffer.concat([chunks[2], Buffer.from([9, 9])])], /2 bytes after the last chunk/],
      ['bytes after a chunk, in its piece', () => [Buffer.concat([chunks[0], Buffer.from([1, 0, 1])]), ...chunks.slice(1)], /piece 0, chunk 1 at byte 42: 3 bytes, shorter than a chunk header/],
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
    for (const chunk of encodeKvSnapshot(records(pairs))) decoder.push(chunk);
    expect(decoder.finish()).toEqual(new Map(records(pairs)));
  });
});

describe('KV snapshot format 1 (keys without indexes), as the previous version wrote it', () => {
  it("decodes a committed fixture, giving every key the snapshot's index (asked once) as createIndex and modIndex", () => {
    let asked = 0;
    const map = decodeKvSnapshotRecords([FORMAT_1], () => {
      asked++;
      return 7340;
    });
    expect(asked).toBe(1);
    expect(new Map([...map].map(([key, r]) => [key, r.value]))).toEqual(FORMAT_1_PAIRS);
    for (const record of map.values()) expect(record).toMatchObject({ createIndex: 7340, modIndex: 7340 });
  });

  it('refuses it when the snapshot index is not known', () => {
    expect(() => decodeKvSnapshotRecords([FORMAT_1])).toThrow(/version 1 \(keys without indexes\), and the snapshot's index is not known here/);
  });

  it('decodeKvSnapshot (values only) reads either version', () => {
    expect(decodeKvSnapshot([FORMAT_1])).toEqual(FORMAT_1_PAIRS);
    expect(decodeKvSnapshot(encode([...FORMAT_1_PAIRS]))).toEqual(FORMAT_1_PAIRS);
  });
});

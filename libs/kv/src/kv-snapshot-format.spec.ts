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
import { IdempotencySnapshot } from './idempotency-table';

/** Pairs with indexes that depend on nothing but the pair's position, for the tests that look at values. */
const records = (pairs: Iterable<[string, string]>): Array<[string, KvRecord]> =>
  [...pairs].map(([key, value], i) => [key, { value, createIndex: i + 1, modIndex: i + 2 }]);
const encode = (pairs: Array<[string, string]>, target?: number) => [...encodeKvSnapshot(records(pairs), target)];
const concat = (chunks: Uint8Array[]) => Buffer.concat(chunks);
/** Written by the format 1 encoder (main at 5c1bd1c, before keys had indexes), 64-byte chunks: 4 of them. */
const FORMAT_1 = readFileSync(join(__dirname, 'testdata', 'snapshot-format-1.bin'));
/** Written by the format 2 encoder (main at 254391f, before expiry and the idempotency table): one chunk. */
const FORMAT_2 = readFileSync(join(__dirname, 'testdata', 'snapshot-format-2.bin'));
const FORMAT_2_RECORDS = new Map<string, KvRecord>([
  ['alpha', { value: 'one', createIndex: 3, modIndex: 7 }],
  ['ключ', { value: 'значение', createIndex: 5, modIndex: 5 }],
  ['empty', { value: '', createIndex: 9, modIndex: 12 }],
]);
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b.toString('hex');
};
const fingerprint = (byte: number) => Buffer.alloc(16, byte);
const TABLE: IdempotencySnapshot = {
  clock: 1_800_000_000_123,
  records: [
    ['retry-1', { fingerprint: fingerprint(1), at: 1_800_000_000_000, outcome: { index: 9, existed: false, conditionHeld: true, createIndex: 9, modIndex: 9 } }],
    ['x'.repeat(128), { fingerprint: fingerprint(2), at: 1_800_000_000_100, outcome: { index: 12, existed: true, conditionHeld: false, createIndex: null, modIndex: null } }],
  ],
};
const FORMAT_1_PAIRS = new Map([
  ['config/mode', 'primary'],
  ['日本語', 'значение'],
  ['empty', ''],
  ['lock', 'owner-1'],
  ['big', 'x'.repeat(100)],
]);

describe('KV snapshot format', () => {
  it('lays a chunk out as version, flags, index, pair count, then length-prefixed utf-8 pairs with their u64 indexes and expiresAt', () => {
    const [chunk, table] = encodeKvSnapshot([['k', { value: 'vé', createIndex: 7, modIndex: 2 ** 32 + 9 }]]);
    expect(Buffer.from(chunk).toString('hex')).toBe(
      ['03', '00', '00000000', '01000000', '01000000', '6b', '03000000', '76c3a9', '0700000000000000', '0900000001000000', '0000000000000000'].join(''),
    );
    // The table follows, even when empty: it carries the table's clock.
    expect(Buffer.from(table).toString('hex')).toBe(['03', '03', '01000000', '00000000', '0000000000000000'].join(''));
    const [withExpiry] = encodeKvSnapshot([['k', { value: '', createIndex: 1, modIndex: 1, expiresAt: 1_800_000_000_000 }]]);
    expect(Buffer.from(withExpiry).subarray(-8).readBigUInt64LE()).toBe(1_800_000_000_000n);
  });

  it('lays the idempotency table out after the pairs: clock, then each token with its fingerprint, at and outcome', () => {
    const chunks = [...encodeKvSnapshot([], KV_SNAPSHOT_CHUNK_BYTES, { clock: 5, records: [TABLE.records[0]] })];
    expect(chunks).toHaveLength(2);
    expect(Buffer.from(chunks[1]).toString('hex')).toBe(
      [
        '03', '03', '01000000', '01000000', '0500000000000000',
        '07', Buffer.from('retry-1').toString('hex'), '01'.repeat(16), u64(1_800_000_000_000),
        '0900000000000000', '02', '0900000000000000', '0900000000000000',
      ].join(''),
    );
  });

  it('round-trips expiresAt and the idempotency table, nulls and 128-byte tokens included', () => {
    const pairs: Array<[string, KvRecord]> = [
      ['a', { value: '1', createIndex: 1, modIndex: 1, expiresAt: 1_800_000_000_000 }],
      ['b', { value: '2', createIndex: 2, modIndex: 3 }],
    ];
    const decoder = new KvSnapshotDecoder();
    for (const chunk of encodeKvSnapshot(pairs, 64, TABLE)) decoder.push(chunk);
    expect(decoder.finish()).toEqual(new Map(pairs));
    expect(decoder.idempotency).toEqual(TABLE);
    expect(decoder.expiringKeys).toBe(1);
  });

  it('splits a large table into chunks of about the target size, in order', () => {
    const records = Array.from({ length: 40 }, (_, i) => [`token-${i}`, TABLE.records[0][1]] as const);
    const chunks = [...encodeKvSnapshot([], 200, { clock: 1, records })];
    expect(chunks.length).toBeGreaterThan(5);
    for (const chunk of chunks.slice(1)) expect(chunk.length).toBeLessThanOrEqual(200);
    const decoder = new KvSnapshotDecoder();
    decoder.push(Buffer.concat(chunks));
    decoder.finish();
    expect(decoder.idempotency.records.map(([token]) => token)).toEqual(records.map(([token]) => token));
  });

  it('round-trips indexes up to 2^53 - 1', () => {
    const pairs: Array<[string, KvRecord]> = [
      ['a', { value: '1', createIndex: 1, modIndex: 1 }],
      ['b', { value: '2', createIndex: 2 ** 32, modIndex: Number.MAX_SAFE_INTEGER }],
    ];
    expect(decodeKvSnapshotRecords(encodeKvSnapshot(pairs))).toEqual(new Map(pairs));
  });

  it('encodes an empty map as one chunk without pairs, then the (empty) table', () => {
    const chunks = encode([]);
    expect(chunks.map((c) => Buffer.from(c).toString('hex'))).toEqual(['03000000000000000000', '030301000000000000000000000000000000']);
    expect(decodeKvSnapshot(chunks)).toEqual(new Map());
  });

  it('fills chunks up to the target with whole pairs, and gives a pair larger than the target a chunk of its own', () => {
    const big = 'x'.repeat(100);
    // Each small pair is 8 + 1 + 9 + 24 = 42 bytes; a 10-byte header plus 3 of them is 136, the target.
    const small = (i: number): [string, string] => [String.fromCharCode(97 + i), 'v'.repeat(9)];
    const chunks = encode([small(0), small(1), small(2), small(3), ['B', big], small(4)], 136);
    expect(chunks.map((c) => c.length)).toEqual([136, 10 + 42, 10 + 32 + 1 + 100, 10 + 42, 18]);
    expect(chunks.map((c) => c[1])).toEqual([0, 0, 0, 0, 3]);
    expect(chunks.map((c) => Buffer.from(c).readUInt32LE(2))).toEqual([0, 1, 2, 3, 4]);
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
    const [chunk, table] = encode([['a', 'b']]);
    const padded = new Uint8Array(chunk.length + 7);
    padded.set(chunk, 3);
    expect(decodeKvSnapshot([padded.subarray(3, 3 + chunk.length), table])).toEqual(new Map([['a', 'b']]));
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
      ['a chunk cut inside a value', () => [...chunks.slice(0, 2), chunks[2].subarray(0, chunks[2].length - 27)], /chunk 2 at byte 0: pair 0 of 1: the value runs past the end/],
      ['a chunk cut inside the indexes', () => [...chunks.slice(0, 2), chunks[2].subarray(0, chunks[2].length - 1)], /chunk 2 at byte 0: pair 0 of 1: the indexes run past the end/],
      ['an index past 2^53', () => modified(0, (b) => b.writeUInt32LE(2 ** 21, b.length - 4)), /chunk 0 .*pair 0 of 1: an index past 2\^53/],
      ['a chunk cut inside a length', () => [chunks[0].subarray(0, 12)], /chunk 0 .*pair 0 of 1: the key runs past the end/],
      ['a chunk cut inside its header', () => [chunks[0].subarray(0, 5)], /5 bytes, shorter than a chunk header/],
      ['an unknown version', () => modified(0, (b) => (b[0] = 4)), /chunk 0 at byte 0: version 4, expected 3 \(or 2, 1\)/],
      ['a version that changes midway', () => modified(1, (b) => (b[0] = 1)), /chunk 1 at byte 0: version 1, expected 3 as in the chunks before/],
      ['an unknown flag', () => modified(0, (b) => (b[1] = 4)), /unknown flags 4/],
      ['a missing chunk', () => [chunks[0], chunks[2]], /chunk index 2, expected 1/],
      ['a repeated chunk', () => [chunks[0], chunks[0]], /chunk index 0, expected 1/],
      ['a key length pointing past the end', () => modified(0, (b) => b.writeUInt32LE(0xffffffff, 10)), /the key runs past the end/],
      ['bytes after the last chunk', () => [...chunks, Buffer.from([1])], /1 bytes after the last chunk/],
      ['bytes after the last chunk, in its piece', () => [...chunks.slice(0, 3), Buffer.concat([chunks[3], Buffer.from([9, 9])])], /2 bytes after the last chunk/],
      ['bytes after a chunk, in its piece', () => [Buffer.concat([chunks[0], Buffer.from([1, 0, 1])]), ...chunks.slice(1)], /piece 0, chunk 1 at byte 50: 3 bytes, shorter than a chunk header/],
      ['no table chunk', () => [...chunks.slice(0, 2), Buffer.from([...chunks[2].subarray(0, 1), 1, ...chunks[2].subarray(2)])], /chunk 2 .*the last chunk is not a table chunk/],
      ['a pair chunk after a table chunk', () => [chunks[0], Buffer.from([...chunks[3].subarray(0, 1), 2, 1, ...chunks[3].subarray(3)]), chunks[2]], /chunk 2 .*a pair chunk after a table chunk/],
      [
        'a table chunk cut inside a token',
        () => {
          const [pairs, table] = encodeKvSnapshot([], 1024, TABLE);
          return [pairs, table.subarray(0, table.length - 1)];
        },
        /chunk 1 at byte 0: token 1 of 2: runs past the end/,
      ],
      ['a token twice', () => [...encodeKvSnapshot([], 1024, { clock: 1, records: [TABLE.records[0], TABLE.records[0]] })], /token 1 of 2: "retry-1" seen twice/],
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
      expect(chunks.length).toBe(4);
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

describe('KV snapshot format 2 (no expiry, no idempotency table), as the previous version wrote it', () => {
  it('decodes a committed fixture: the indexes as written, no key expires, an empty table', () => {
    const decoder = new KvSnapshotDecoder();
    decoder.push(FORMAT_2);
    expect(decoder.finish()).toEqual(FORMAT_2_RECORDS);
    expect(decoder.idempotency).toEqual({ clock: 0, records: [] });
    expect(decoder.expiringKeys).toBe(0);
  });

  it('refuses a table flag in a version 2 chunk', () => {
    const copy = Buffer.from(FORMAT_2);
    copy[1] = 3;
    expect(() => decodeKvSnapshot([copy])).toThrow(/unknown flags 3/);
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

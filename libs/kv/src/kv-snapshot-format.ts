import { FINGERPRINT_BYTES, readIndex, writeIndex } from './kv-command';
import { IdempotencyRecord, IdempotencySnapshot } from './idempotency-table';

/**
 * The bytes of a snapshot of the KV map: a sequence of chunks, each holding whole key/value pairs, then (from
 * version 3) the chunks of the idempotency table.
 *
 *   chunk  := version u8 (3) | flags u8 (bit 0: last chunk; bit 1: table chunk; other bits 0) | index u32 LE
 *             | count u32 LE | pair * count                                  (a pair chunk)
 *             | clock u64 LE | token * count                                 (a table chunk)
 *   pair   := keyLength u32 LE | key (utf-8) | valueLength u32 LE | value (utf-8) | createIndex u64 LE
 *             | modIndex u64 LE | expiresAt u64 LE (ms since the epoch; 0: the key does not expire)
 *   token  := tokenLength u8 | token (ASCII) | fingerprint (16 bytes) | at u64 LE | index u64 LE
 *             | outcome u8 (bit 0 existed, bit 1 conditionHeld) | createIndex u64 LE | modIndex u64 LE (0: null)
 *
 * Version 3 writes the pair chunks first (at least one: an empty map is one chunk without pairs), then at
 * least one table chunk (every one repeats the table's clock, the largest `at` applied), the final one
 * flagged last. Version 2 (keys with indexes, no expiry, no table) is the pair chunks alone, each pair without
 * expiresAt; version 1 (written before keys had indexes) is the same without the two indexes. Both are still
 * read: every chunk of a snapshot has the same version; their keys do not expire and their table is empty.
 * The keys of a version 1 snapshot get createIndex = modIndex = the index of the snapshot itself (which the
 * decoder is told, as the chunks do not hold it): the oldest change that index can stand for, so an If-Match
 * with it still guards against every later change.
 *
 * Chunks have indexes 0, 1, 2, … in order; exactly the final one has the last flag. Each chunk is
 * self-contained (no pair spans two) and about KV_SNAPSHOT_CHUNK_BYTES long: pairs are added until the next
 * one would cross that size; a pair larger than it gets a chunk of its own. A key appears once in the whole
 * snapshot, and so does a token; the order of pairs means nothing, the order of tokens is the table's (oldest
 * first, which decides which one is evicted first).
 *
 * The index and the last flag make a dropped, repeated or reordered chunk, and a snapshot cut short at a
 * chunk boundary, an error on restore rather than a silently smaller map. The decoder also accepts several
 * whole chunks concatenated in one buffer (a store that keeps the content as one blob hands it over as one
 * piece). Checksums are the storage's business: it verifies the file before anything is decoded.
 */

export const KV_SNAPSHOT_VERSION = 3;
/** The previous version, without expiry and the idempotency table: decoded, never written. */
export const KV_SNAPSHOT_VERSION_WITHOUT_EXPIRY = 2;
/** The version before, without indexes: decoded, never written. */
export const KV_SNAPSHOT_VERSION_WITHOUT_INDEXES = 1;
/** Target size of a chunk: small enough to write between other work, large enough to amortize each write. */
export const KV_SNAPSHOT_CHUNK_BYTES = 256 * 1024;

const LAST = 1;
const TABLE = 2;
const HEADER = 10;
const PAIR_OVERHEAD = 32;
/** A token's bytes besides the token itself. */
const TOKEN_OVERHEAD = 1 + FINGERPRINT_BYTES + 8 + 8 + 1 + 8 + 8;
const EXISTED = 1;
const CONDITION_HELD = 2;
const EMPTY_TABLE: IdempotencySnapshot = { clock: 0, records: [] };

/** A key's value and the log indexes of the entries that created it and that last changed it. */
export interface KvRecord {
  value: string;
  /** The entry that created the key since it last did not exist. */
  createIndex: number;
  /** The entry that last changed it (its ETag); createIndex ≤ modIndex. */
  modIndex: number;
  /**
   * When the key expires (ms since the epoch, on the leader's clock): the `at` of the put that set a TTL, plus
   * the TTL. Absent: the key does not expire. The leader deletes it once due (see kv-expiry.ts).
   */
  expiresAt?: number;
}

/** The snapshot bytes are not a snapshot this version can read; says which chunk, where, and why. */
export class MalformedKvSnapshotError extends Error {
  constructor(message: string) {
    super(`malformed KV snapshot: ${message}`);
    this.name = 'MalformedKvSnapshotError';
  }
}

/**
 * Encodes keys and their records, then the idempotency table, as snapshot chunks, lazily: a chunk is built
 * when it is pulled, from the pairs pulled from `entries` for it (and at most one more, kept for the next
 * chunk). Always yields at least one pair chunk and one table chunk. Each chunk owns its ArrayBuffer, so a
 * consumer may keep or transfer it.
 */
export function* encodeKvSnapshot(
  entries: Iterable<readonly [string, KvRecord]>,
  targetChunkBytes: number = KV_SNAPSHOT_CHUNK_BYTES,
  table: IdempotencySnapshot = EMPTY_TABLE,
): Generator<Uint8Array, void, undefined> {
  // Lengths are measured once here and reused by writeChunk: Buffer.byteLength walks the whole string.
  let keys: string[] = [];
  let values: KvRecord[] = [];
  let lengths: number[] = [];
  let bytes = HEADER;
  let index = 0;
  for (const [key, value] of entries) {
    const keyLength = Buffer.byteLength(key, 'utf8');
    const valueLength = Buffer.byteLength(value.value, 'utf8');
    const pairBytes = PAIR_OVERHEAD + keyLength + valueLength;
    if (keys.length > 0 && bytes + pairBytes > targetChunkBytes) {
      yield writeChunk(index++, false, keys, values, lengths, bytes);
      keys = [];
      values = [];
      lengths = [];
      bytes = HEADER;
    }
    keys.push(key);
    values.push(value);
    lengths.push(keyLength, valueLength);
    bytes += pairBytes;
  }
  yield writeChunk(index++, false, keys, values, lengths, bytes);
  yield* encodeTable(table, index, targetChunkBytes);
}

function* encodeTable(table: IdempotencySnapshot, first: number, targetChunkBytes: number): Generator<Uint8Array, void, undefined> {
  let index = first;
  let start = 0;
  do {
    let bytes = HEADER + 8;
    let end = start;
    while (end < table.records.length) {
      const tokenBytes = TOKEN_OVERHEAD + table.records[end][0].length;
      if (end > start && bytes + tokenBytes > targetChunkBytes) break;
      bytes += tokenBytes;
      end++;
    }
    yield writeTableChunk(index++, end === table.records.length, table, start, end, bytes);
    start = end;
  } while (start < table.records.length);
}

function writeTableChunk(index: number, last: boolean, table: IdempotencySnapshot, start: number, end: number, bytes: number): Uint8Array {
  const buf = Buffer.allocUnsafeSlow(bytes);
  buf[0] = KV_SNAPSHOT_VERSION;
  buf[1] = TABLE | (last ? LAST : 0);
  buf.writeUInt32LE(index, 2);
  buf.writeUInt32LE(end - start, 6);
  writeIndex(buf, HEADER, table.clock);
  let at = HEADER + 8;
  for (let i = start; i < end; i++) {
    const [token, { fingerprint, at: time, outcome }] = table.records[i];
    buf[at] = token.length;
    at += 1 + buf.write(token, at + 1, 'latin1');
    at += fingerprint.copy(buf, at);
    writeIndex(buf, at, time);
    writeIndex(buf, at + 8, outcome.index);
    buf[at + 16] = (outcome.existed ? EXISTED : 0) | (outcome.conditionHeld ? CONDITION_HELD : 0);
    writeIndex(buf, at + 17, outcome.createIndex ?? 0);
    writeIndex(buf, at + 25, outcome.modIndex ?? 0);
    at += 33;
  }
  if (at !== bytes) throw new Error(`KV snapshot encoder wrote ${at} bytes of a ${bytes}-byte table chunk`);
  return buf;
}

function writeChunk(
  index: number,
  last: boolean,
  keys: string[],
  values: KvRecord[],
  lengths: number[],
  bytes: number,
): Uint8Array {
  const buf = Buffer.allocUnsafeSlow(bytes);
  buf[0] = KV_SNAPSHOT_VERSION;
  buf[1] = last ? LAST : 0;
  buf.writeUInt32LE(index, 2);
  buf.writeUInt32LE(keys.length, 6);
  let at = HEADER;
  for (let i = 0; i < keys.length; i++) {
    const keyLength = lengths[2 * i];
    const valueLength = lengths[2 * i + 1];
    buf.writeUInt32LE(keyLength, at);
    at = buf.write(keys[i], at + 4, keyLength, 'utf8') + at + 4;
    buf.writeUInt32LE(valueLength, at);
    at = buf.write(values[i].value, at + 4, valueLength, 'utf8') + at + 4;
    writeIndex(buf, at, values[i].createIndex);
    writeIndex(buf, at + 8, values[i].modIndex);
    writeIndex(buf, at + 16, values[i].expiresAt ?? 0);
    at += 24;
  }
  // Every byte of the unzeroed buffer must have been written; a miscount here would ship uninitialized memory.
  if (at !== bytes) throw new Error(`KV snapshot encoder wrote ${at} bytes of a ${bytes}-byte chunk`);
  return buf;
}

/**
 * Decodes a snapshot pushed a piece at a time (each piece one or more whole chunks, in order) into a new map.
 * `legacyIndex` gives the snapshot's own index, for a version 1 snapshot (see the format); it is called once,
 * at its first chunk, and without it such a snapshot is refused. push() and finish() throw
 * MalformedKvSnapshotError on anything that a view did not write: an unknown version or flag, a chunk whose
 * version differs from the first one's, an index past 2^53, a length running past the end of the piece, a chunk out of order or after the last one,
 * a key or a token seen twice, a pair chunk after a table chunk, an empty piece, or (finish) no last chunk, or
 * a version 3 snapshot without a table chunk. After an error the decoder is spent.
 */
export class KvSnapshotDecoder {
  private readonly map = new Map<string, KvRecord>();
  private readonly tokens = new Map<string, IdempotencyRecord>();
  private clock = 0;
  private inTable = false;
  private expiring = 0;
  private bytes = 0;
  private version: number | undefined;
  /** The indexes of every key of a version 1 snapshot. */
  private legacy: number | undefined;
  private nextIndex = 0;
  private ended = false;
  private pieces = 0;

  constructor(private readonly legacyIndex?: () => number) {}

  push(piece: Uint8Array): void {
    const buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    const where = `piece ${this.pieces++}`;
    if (buf.length === 0) throw new MalformedKvSnapshotError(`${where} is empty`);
    let at = 0;
    while (at < buf.length) at = this.decodeChunk(buf, at, where);
  }

  /**
   * The UTF-8 bytes of the keys and values decoded so far, counted from the length fields. Equal to
   * Buffer.byteLength of the decoded strings because an encoder only writes well-formed UTF-8 (the strings
   * of a map always are: they were themselves decoded from UTF-8).
   */
  get dataBytes(): number {
    return this.bytes;
  }

  /** The decoded map; throws if the last chunk has not been pushed. */
  finish(): Map<string, KvRecord> {
    if (this.nextIndex === 0) throw new MalformedKvSnapshotError('no chunks');
    if (!this.ended) {
      throw new MalformedKvSnapshotError(`it ends after chunk ${this.nextIndex - 1}, which is not the last`);
    }
    if (this.version === KV_SNAPSHOT_VERSION && !this.inTable) throw new MalformedKvSnapshotError('no idempotency table chunk');
    return this.map;
  }

  /** How many of the keys decoded expire. */
  get expiringKeys(): number {
    return this.expiring;
  }

  /** The idempotency table decoded (empty for versions 1 and 2); read after finish(). */
  get idempotency(): IdempotencySnapshot {
    return { clock: this.clock, records: [...this.tokens] };
  }

  private decodeChunk(buf: Buffer, start: number, where: string): number {
    const fail = (what: string): never => {
      throw new MalformedKvSnapshotError(`${where}, chunk ${this.nextIndex} at byte ${start}: ${what}`);
    };
    if (this.ended) fail(`${buf.length - start} bytes after the last chunk`);
    if (buf.length - start < HEADER) fail(`${buf.length - start} bytes, shorter than a chunk header (${HEADER})`);
    const version = buf[start];
    if (this.version === undefined) {
      if (version !== KV_SNAPSHOT_VERSION && version !== KV_SNAPSHOT_VERSION_WITHOUT_EXPIRY && version !== KV_SNAPSHOT_VERSION_WITHOUT_INDEXES) {
        fail(
          `version ${version}, expected ${KV_SNAPSHOT_VERSION} (or ${KV_SNAPSHOT_VERSION_WITHOUT_EXPIRY}, ${KV_SNAPSHOT_VERSION_WITHOUT_INDEXES})`,
        );
      }
      if (version === KV_SNAPSHOT_VERSION_WITHOUT_INDEXES) {
        if (!this.legacyIndex) fail(`version ${version} (keys without indexes), and the snapshot's index is not known here`);
        this.legacy = this.legacyIndex!();
      }
      this.version = version;
    } else if (version !== this.version) {
      fail(`version ${version}, expected ${this.version} as in the chunks before`);
    }
    const flags = buf[start + 1];
    if ((flags & ~(version === KV_SNAPSHOT_VERSION ? LAST | TABLE : LAST)) !== 0) fail(`unknown flags ${flags}`);
    const index = buf.readUInt32LE(start + 2);
    if (index !== this.nextIndex) fail(`chunk index ${index}, expected ${this.nextIndex}`);
    const count = buf.readUInt32LE(start + 6);
    if ((flags & TABLE) !== 0) return this.decodeTableChunk(buf, start, count, flags, fail);
    if (this.inTable) fail('a pair chunk after a table chunk');
    if (version === KV_SNAPSHOT_VERSION && (flags & LAST) !== 0) fail('the last chunk is not a table chunk');
    const indexBytes = version === KV_SNAPSHOT_VERSION ? 24 : 16;
    let at = start + HEADER;
    for (let i = 0; i < count; i++) {
      const keyEnd = lengthEnd(buf, at);
      if (keyEnd < 0) fail(`pair ${i} of ${count}: the key runs past the end`);
      const valueEnd = lengthEnd(buf, keyEnd);
      if (valueEnd < 0) fail(`pair ${i} of ${count}: the value runs past the end`);
      const key = buf.toString('utf8', at + 4, keyEnd);
      const value = buf.toString('utf8', keyEnd + 4, valueEnd);
      let record: KvRecord;
      let next: number;
      if (this.legacy !== undefined) {
        record = { value, createIndex: this.legacy, modIndex: this.legacy };
        next = valueEnd;
      } else {
        if (valueEnd + indexBytes > buf.length) fail(`pair ${i} of ${count}: the indexes run past the end`);
        const createIndex = readIndex(buf, valueEnd);
        const modIndex = readIndex(buf, valueEnd + 8);
        const expiresAt = indexBytes === 24 ? readIndex(buf, valueEnd + 16) : 0;
        if (createIndex === undefined || modIndex === undefined || expiresAt === undefined) fail(`pair ${i} of ${count}: an index past 2^53`);
        record = { value, createIndex: createIndex!, modIndex: modIndex! };
        if (expiresAt) {
          record.expiresAt = expiresAt;
          this.expiring++;
        }
        next = valueEnd + indexBytes;
      }
      const size = this.map.size;
      this.map.set(key, record);
      if (this.map.size === size) fail(`pair ${i} of ${count}: key ${JSON.stringify(key.slice(0, 64))} seen twice`);
      // The key's and the value's bytes only: not their length fields, nor a pair's index bytes.
      this.bytes += valueEnd - at - 2 * 4;
      at = next;
    }
    this.nextIndex++;
    this.ended = (flags & LAST) !== 0;
    return at;
  }

  private decodeTableChunk(buf: Buffer, start: number, count: number, flags: number, fail: (what: string) => never): number {
    if (buf.length - start < HEADER + 8) fail('the table clock runs past the end');
    if (this.nextIndex === 0) fail('a table chunk before any pair chunk');
    const clock = readIndex(buf, start + HEADER);
    if (clock === undefined) fail('a table clock past 2^53');
    this.clock = clock!;
    this.inTable = true;
    let at = start + HEADER + 8;
    for (let i = 0; i < count; i++) {
      if (at >= buf.length) fail(`token ${i} of ${count}: runs past the end`);
      const tokenEnd = at + 1 + buf[at];
      if (tokenEnd + TOKEN_OVERHEAD - 1 > buf.length) fail(`token ${i} of ${count}: runs past the end`);
      const token = buf.toString('latin1', at + 1, tokenEnd);
      const fingerprint = Buffer.from(buf.subarray(tokenEnd, tokenEnd + FINGERPRINT_BYTES));
      at = tokenEnd + FINGERPRINT_BYTES;
      const time = readIndex(buf, at);
      const index = readIndex(buf, at + 8);
      const createIndex = readIndex(buf, at + 17);
      const modIndex = readIndex(buf, at + 25);
      if (time === undefined || index === undefined || createIndex === undefined || modIndex === undefined) {
        fail(`token ${i} of ${count}: a number past 2^53`);
      }
      const outcome = buf[at + 16];
      if ((outcome & ~(EXISTED | CONDITION_HELD)) !== 0) fail(`token ${i} of ${count}: unknown outcome flags ${outcome}`);
      if (this.tokens.has(token)) fail(`token ${i} of ${count}: ${JSON.stringify(token)} seen twice`);
      this.tokens.set(token, {
        fingerprint,
        at: time!,
        outcome: {
          index: index!,
          existed: (outcome & EXISTED) !== 0,
          conditionHeld: (outcome & CONDITION_HELD) !== 0,
          createIndex: createIndex || null,
          modIndex: modIndex || null,
        },
      });
      at += 33;
    }
    this.nextIndex++;
    this.ended = (flags & LAST) !== 0;
    return at;
  }
}

/** Where the bytes measured by the u32 length at `at` end, or -1 if the length or those bytes run past the end. */
function lengthEnd(buf: Buffer, at: number): number {
  if (at + 4 > buf.length) return -1;
  const end = at + 4 + buf.readUInt32LE(at);
  return end > buf.length ? -1 : end;
}

/**
 * Decodes a whole snapshot at once (the synchronous counterpart of pushing each piece, then finish()).
 * `legacyIndex`: as for KvSnapshotDecoder.
 */
export function decodeKvSnapshotRecords(pieces: Iterable<Uint8Array>, legacyIndex?: () => number): Map<string, KvRecord> {
  const decoder = new KvSnapshotDecoder(legacyIndex);
  for (const piece of pieces) decoder.push(piece);
  return decoder.finish();
}

/** The keys and values of a whole snapshot, of either version (for tools and tests that check the content). */
export function decodeKvSnapshot(pieces: Iterable<Uint8Array>): Map<string, string> {
  const values = new Map<string, string>();
  for (const [key, record] of decodeKvSnapshotRecords(pieces, () => 0)) values.set(key, record.value);
  return values;
}

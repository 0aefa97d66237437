import { readIndex, writeIndex } from './kv-command';

/**
 * The bytes of a snapshot of the KV map: a sequence of chunks, each holding whole key/value pairs.
 *
 *   chunk := version u8 (2) | flags u8 (bit 0: last chunk; other bits 0) | index u32 LE | pairCount u32 LE
 *            | pair * pairCount
 *   pair  := keyLength u32 LE | key (utf-8) | valueLength u32 LE | value (utf-8) | createIndex u64 LE
 *            | modIndex u64 LE
 *
 * Version 1 (written before keys had indexes) is the same without the two indexes. It is still read: every
 * chunk of a snapshot has the same version, and the keys of a version 1 snapshot get createIndex = modIndex =
 * the index of the snapshot itself (which the decoder is told, as the chunks do not hold it): the oldest
 * change that index can stand for, so an If-Match with it still guards against every later change.
 *
 * A snapshot is one or more chunks with indexes 0, 1, 2, … in order; exactly the final one has the last flag,
 * so an empty map is one chunk with no pairs. Each chunk is self-contained (no pair spans two) and about
 * KV_SNAPSHOT_CHUNK_BYTES long: pairs are added until the next one would cross that size; a pair larger
 * than it gets a chunk of its own. A key appears once in the whole snapshot; the order of pairs means nothing.
 *
 * The index and the last flag make a dropped, repeated or reordered chunk, and a snapshot cut short at a
 * chunk boundary, an error on restore rather than a silently smaller map. The decoder also accepts several
 * whole chunks concatenated in one buffer (a store that keeps the content as one blob hands it over as one
 * piece). Checksums are the storage's business: it verifies the file before anything is decoded.
 */

export const KV_SNAPSHOT_VERSION = 2;
/** The previous version, without indexes: decoded, never written. */
export const KV_SNAPSHOT_VERSION_WITHOUT_INDEXES = 1;
/** Target size of a chunk: small enough to write between other work, large enough to amortize each write. */
export const KV_SNAPSHOT_CHUNK_BYTES = 256 * 1024;

const LAST = 1;
const HEADER = 10;
const PAIR_OVERHEAD = 24;

/** A key's value and the log indexes of the entries that created it and that last changed it. */
export interface KvRecord {
  value: string;
  /** The entry that created the key since it last did not exist. */
  createIndex: number;
  /** The entry that last changed it (its ETag); createIndex ≤ modIndex. */
  modIndex: number;
}

/** The snapshot bytes are not a snapshot this version can read; says which chunk, where, and why. */
export class MalformedKvSnapshotError extends Error {
  constructor(message: string) {
    super(`malformed KV snapshot: ${message}`);
    this.name = 'MalformedKvSnapshotError';
  }
}

/**
 * Encodes keys and their records as snapshot chunks, lazily: a chunk is built when it is pulled, from the pairs
 * pulled from `entries` for it (and at most one more, kept for the next chunk). Always yields at least one
 * chunk. Each chunk owns its ArrayBuffer, so a consumer may keep or transfer it.
 */
export function* encodeKvSnapshot(
  entries: Iterable<readonly [string, KvRecord]>,
  targetChunkBytes: number = KV_SNAPSHOT_CHUNK_BYTES,
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
  yield writeChunk(index, true, keys, values, lengths, bytes);
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
    at += 16;
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
 * a key seen twice, an empty piece, or (finish) no last chunk. After an error the decoder is spent.
 */
export class KvSnapshotDecoder {
  private readonly map = new Map<string, KvRecord>();
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
    return this.map;
  }

  private decodeChunk(buf: Buffer, start: number, where: string): number {
    const fail = (what: string): never => {
      throw new MalformedKvSnapshotError(`${where}, chunk ${this.nextIndex} at byte ${start}: ${what}`);
    };
    if (this.ended) fail(`${buf.length - start} bytes after the last chunk`);
    if (buf.length - start < HEADER) fail(`${buf.length - start} bytes, shorter than a chunk header (${HEADER})`);
    const version = buf[start];
    if (this.version === undefined) {
      if (version !== KV_SNAPSHOT_VERSION && version !== KV_SNAPSHOT_VERSION_WITHOUT_INDEXES) {
        fail(`version ${version}, expected ${KV_SNAPSHOT_VERSION} (or ${KV_SNAPSHOT_VERSION_WITHOUT_INDEXES})`);
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
    if ((flags & ~LAST) !== 0) fail(`unknown flags ${flags}`);
    const index = buf.readUInt32LE(start + 2);
    if (index !== this.nextIndex) fail(`chunk index ${index}, expected ${this.nextIndex}`);
    const count = buf.readUInt32LE(start + 6);
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
        if (valueEnd + 16 > buf.length) fail(`pair ${i} of ${count}: the indexes run past the end`);
        const createIndex = readIndex(buf, valueEnd);
        const modIndex = readIndex(buf, valueEnd + 8);
        if (createIndex === undefined || modIndex === undefined) fail(`pair ${i} of ${count}: an index past 2^53`);
        record = { value, createIndex: createIndex!, modIndex: modIndex! };
        next = valueEnd + 16;
      }
      const size = this.map.size;
      this.map.set(key, record);
      if (this.map.size === size) fail(`pair ${i} of ${count}: key ${JSON.stringify(key.slice(0, 64))} seen twice`);
      // The key's and the value's bytes only: not their length fields, nor a version 2 pair's 16 index bytes.
      this.bytes += valueEnd - at - 2 * 4;
      at = next;
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

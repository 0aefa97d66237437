import type { ConfState, SnapshotMetadata } from '@app/consensus/core';
import { createHash, Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { SnapshotCorruptionError } from './errors';
import { decodeRecord, encodeRecord, HEADER_SIZE, MAX_PAYLOAD, RecordType } from './record';
import { readU64, writeU64 } from './record-payloads';

/**
 * The snapshot file format (docs/storage.md, "Snapshot files"): the WAL's record framing (record.ts: CRC-32,
 * length, type) around three record types.
 *
 * ```
 * SnapshotFileHeader  u32 magic "RSNP", u16 version (1), u16 reserved (0), then the metadata as UTF-8 JSON
 *                     {"index", "term", "confState": {"voters", "learners"?, "addresses"?}}
 * SnapshotChunk       one chunk of content, exactly as the state machine's view produced it (0 or more records)
 * SnapshotTrailer     u64 chunk count, u64 content bytes, 32 bytes SHA-256 digest
 * ```
 * The digest covers the header's payload, then for each chunk its length (u32 LE) and its bytes: it binds the
 * chunks' order and boundaries, and the metadata, on top of each record's own CRC. Nothing may follow the
 * trailer, so a file cut anywhere (even between records) is detected.
 */

/** "RSNP" in file order. */
export const SNAPSHOT_MAGIC = 0x504e5352;
export const SNAPSHOT_FORMAT_VERSION = 1;
const TRAILER_SIZE = 48;
/** The encoder lets the event loop turn after producing about this many bytes. */
const YIELD_EVERY_BYTES = 1024 * 1024;
const READ_SIZE = 1024 * 1024;

/** What a whole, verified snapshot file holds besides its content. */
export interface SnapshotFileSummary extends SnapshotMetadata {
  /** File size in bytes. */
  size: number;
  /** Number of content chunks. */
  chunks: number;
  /** Content bytes (the chunks' total length). */
  contentBytes: number;
}

/**
 * Encodes a snapshot file, a record at a time: the header, one record per chunk pulled from `chunks`, then
 * the trailer. Chunks are pulled lazily, one per record, and the generator waits for the next turn of the
 * event loop after each megabyte or so, so encoding a large state neither blocks the process nor holds more
 * than one chunk in memory. The consumer writes each Buffer in order (to a file, or a network response).
 */
export async function* encodeSnapshotFile(metadata: SnapshotMetadata, chunks: Iterable<Uint8Array>): AsyncGenerator<Buffer> {
  const header = encodeHeaderPayload(metadata);
  const hash = createHash('sha256').update(header);
  yield encodeRecord(RecordType.SnapshotFileHeader, header);
  let count = 0;
  let bytes = 0;
  let sinceYield = 0;
  for (const chunk of chunks) {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('snapshot chunks must be Uint8Arrays');
    if (chunk.length > MAX_PAYLOAD) throw new RangeError(`snapshot chunk of ${chunk.length} bytes; at most ${MAX_PAYLOAD} fit a record`);
    hashChunk(hash, chunk);
    count++;
    bytes += chunk.length;
    yield encodeRecord(RecordType.SnapshotChunk, chunk);
    sinceYield += HEADER_SIZE + chunk.length;
    if (sinceYield >= YIELD_EVERY_BYTES) {
      sinceYield = 0;
      await nextTurn();
    }
  }
  const trailer = Buffer.alloc(TRAILER_SIZE);
  writeU64(trailer, 0, count);
  writeU64(trailer, 8, bytes);
  hash.digest().copy(trailer, 16);
  yield encodeRecord(RecordType.SnapshotTrailer, trailer);
}

export interface SnapshotDecoderOptions {
  /** Return the content chunks from push() (copies, safe to keep). Default true; false only verifies. */
  chunks?: boolean;
}

/**
 * Incremental reader and verifier of a snapshot file's bytes, in order, as they come (from a file, or from a
 * peer over the network). push() checks each record as soon as it is complete and returns the content chunks
 * it completes; end() checks the trailer. Damage throws SnapshotCorruptionError naming `file` and the offset
 * of the bad record.
 *
 * Chunks are returned before the trailer has been checked: a consumer that must not act on a damaged file
 * either verifies the whole file first (verifySnapshotFile) or undoes what it did when end() throws.
 */
export class SnapshotDecoder {
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** File offset of the next record (the start of parts[0]). */
  private offset = 0;
  private meta: SnapshotMetadata | undefined;
  private hash: Hash = createHash('sha256');
  private count = 0;
  private bytes = 0;
  private ended = false;
  private readonly keepChunks: boolean;

  constructor(
    /** Named in errors. */
    readonly file: string,
    options: SnapshotDecoderOptions = {},
  ) {
    this.keepChunks = options.chunks ?? true;
  }

  /** The metadata, once the header record has been read. */
  get metadata(): SnapshotMetadata | undefined {
    return this.meta;
  }

  /** Bytes consumed so far (complete records). */
  get position(): number {
    return this.offset;
  }

  /**
   * Feeds the next bytes of the file; returns the content chunks they complete, in order. The bytes of a
   * record not yet complete are kept by reference: the caller must not modify them afterwards.
   */
  push(bytes: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    if (bytes.length === 0) return out;
    if (this.ended) throw this.corrupt(this.offset, 'bytes after the trailer');
    this.parts.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    this.partsBytes += bytes.length;
    while (this.partsBytes >= HEADER_SIZE) {
      const head = this.flatten(HEADER_SIZE);
      const type = head[8];
      const length = head.readUInt32LE(4);
      // Checked before waiting for the payload, so a damaged length is not taken as a request to buffer gigabytes.
      if (type !== RecordType.SnapshotFileHeader && type !== RecordType.SnapshotChunk && type !== RecordType.SnapshotTrailer) {
        throw this.corrupt(this.offset, `unexpected record type ${type}`);
      }
      if (length > MAX_PAYLOAD) throw this.corrupt(this.offset, `implausible record length ${length}`);
      const size = HEADER_SIZE + length;
      if (this.partsBytes < size) break;
      const buf = this.flatten(size);
      const rec = decodeRecord(buf, 0, size);
      if (!rec.ok) throw this.corrupt(this.offset, rec.reason);
      const chunk = this.record(rec.type, rec.payload);
      if (chunk && this.keepChunks) out.push(Buffer.from(chunk));
      this.parts[0] = buf.subarray(size);
      if (this.parts[0].length === 0) this.parts.shift();
      this.partsBytes -= size;
      this.offset += size;
      if (this.ended && this.partsBytes > 0) throw this.corrupt(this.offset, 'bytes after the trailer');
    }
    return out;
  }

  /** The input is complete: throws unless it ended right after a trailer that matches the file. */
  end(): SnapshotFileSummary {
    if (this.partsBytes > 0) {
      throw this.corrupt(this.offset, `the file ends inside a record (${this.partsBytes} bytes of it; truncated)`);
    }
    if (!this.meta) throw this.corrupt(0, 'empty file: no snapshot header');
    if (!this.ended) throw this.corrupt(this.offset, 'the file ends without its trailer (truncated)');
    return { ...this.meta, size: this.offset, chunks: this.count, contentBytes: this.bytes };
  }

  /** Checks one record in context; returns the content of a chunk record. */
  private record(type: RecordType, payload: Buffer): Buffer | undefined {
    if (type === RecordType.SnapshotFileHeader) {
      if (this.offset !== 0) throw this.corrupt(this.offset, 'snapshot header in mid-file');
      this.meta = this.decodeHeader(payload);
      this.hash.update(payload);
      return undefined;
    }
    if (!this.meta) throw this.corrupt(this.offset, 'the file does not start with a snapshot header');
    if (type === RecordType.SnapshotChunk) {
      hashChunk(this.hash, payload);
      this.count++;
      this.bytes += payload.length;
      return payload;
    }
    if (payload.length !== TRAILER_SIZE) throw this.corrupt(this.offset, `trailer of ${payload.length} bytes, expected ${TRAILER_SIZE}`);
    let count: number;
    let bytes: number;
    try {
      count = readU64(payload, 0);
      bytes = readU64(payload, 8);
    } catch {
      throw this.corrupt(this.offset, 'trailer counts beyond 2^53');
    }
    if (count !== this.count) throw this.corrupt(this.offset, `trailer counts ${count} chunks, the file holds ${this.count}`);
    if (bytes !== this.bytes) throw this.corrupt(this.offset, `trailer counts ${bytes} content bytes, the file holds ${this.bytes}`);
    if (!this.hash.digest().equals(payload.subarray(16))) throw this.corrupt(this.offset, 'content digest mismatch');
    this.ended = true;
    return undefined;
  }

  private decodeHeader(payload: Buffer): SnapshotMetadata {
    if (payload.length < 8 || payload.readUInt32LE(0) !== SNAPSHOT_MAGIC) throw this.corrupt(0, 'not a snapshot file (bad magic)');
    const version = payload.readUInt16LE(4);
    if (version !== SNAPSHOT_FORMAT_VERSION) {
      throw this.corrupt(0, `snapshot format version ${version}; this build reads version ${SNAPSHOT_FORMAT_VERSION}`);
    }
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8', 8));
    } catch {
      throw this.corrupt(0, 'snapshot metadata is not JSON');
    }
    const metadata = parseMetadata(value);
    if (!metadata) throw this.corrupt(0, 'snapshot metadata lacks index, term or confState');
    return metadata;
  }

  /** Makes parts[0] at least `n` bytes long (n <= partsBytes), joining parts when needed. */
  private flatten(n: number): Buffer {
    if (this.parts[0].length < n) this.parts = [Buffer.concat(this.parts, this.partsBytes)];
    return this.parts[0];
  }

  private corrupt(offset: number, reason: string): SnapshotCorruptionError {
    return new SnapshotCorruptionError(this.file, offset, reason);
  }
}

/** A snapshot file opened for reading: its metadata (from the header) and its content. */
export interface SnapshotFileReader {
  readonly metadata: SnapshotMetadata;
  /** Size of the file in bytes. */
  readonly size: number;
  /**
   * The content chunks, exactly as they were written, read and checked a record at a time (each call reads
   * the file again). Throws SnapshotCorruptionError at the first bad record; the trailer is checked after
   * the last chunk has been yielded, so a caller that must not act on a damaged file calls
   * verifySnapshotFile() first.
   */
  chunks(): AsyncIterable<Uint8Array>;
}

/**
 * Opens a snapshot file: reads and checks its header (SnapshotCorruptionError naming the file if it is not
 * a sound snapshot file header); the content is read by chunks().
 */
export async function readSnapshotFile(path: string): Promise<SnapshotFileReader> {
  let metadata: SnapshotMetadata | undefined;
  let size = 0;
  const handle = await fsp.open(path, 'r');
  try {
    size = (await handle.stat()).size;
    const decoder = new SnapshotDecoder(path, { chunks: false });
    let position = 0;
    // The header is usually in the first read; a large configuration may take a few.
    while (!decoder.metadata) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await handle.read(buf, 0, buf.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      try {
        decoder.push(buf.subarray(0, bytesRead));
      } catch (err) {
        // Damage after the header is for chunks() to report, in order.
        if (decoder.metadata) break;
        throw err;
      }
    }
    metadata = decoder.metadata;
    if (!metadata) decoder.end(); // throws: empty, truncated or not a snapshot
  } finally {
    await handle.close();
  }
  const meta = metadata as SnapshotMetadata;
  return { metadata: meta, size, chunks: () => readChunks(path) };
}

/**
 * Reads a whole snapshot file and checks every record and the trailer. Resolves with its metadata, size and
 * counts; rejects with SnapshotCorruptionError naming the file and offset when it is damaged or truncated.
 */
export async function verifySnapshotFile(path: string): Promise<SnapshotFileSummary> {
  const decoder = new SnapshotDecoder(path, { chunks: false });
  for await (const piece of readPieces(path)) decoder.push(piece);
  return decoder.end();
}

/** The file's bytes, READ_SIZE at a time, each piece in a buffer of its own. */
async function* readPieces(path: string): AsyncGenerator<Buffer> {
  const handle = await fsp.open(path, 'r');
  try {
    let position = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(READ_SIZE);
      const { bytesRead } = await handle.read(buf, 0, buf.length, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

async function* readChunks(path: string): AsyncGenerator<Uint8Array> {
  const decoder = new SnapshotDecoder(path);
  for await (const piece of readPieces(path)) {
    for (const chunk of decoder.push(piece)) yield chunk;
  }
  decoder.end();
}

function encodeHeaderPayload(metadata: SnapshotMetadata): Buffer {
  const { index, term, confState } = metadata;
  for (const [what, v] of [['index', index], ['term', term]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`snapshot ${what} must be a non-negative safe integer, got ${v}`);
  }
  const cs: ConfState = copyConfState(confState);
  const json = Buffer.from(JSON.stringify({ index, term, confState: cs }), 'utf8');
  const head = Buffer.alloc(8);
  head.writeUInt32LE(SNAPSHOT_MAGIC, 0);
  head.writeUInt16LE(SNAPSHOT_FORMAT_VERSION, 4);
  return Buffer.concat([head, json]);
}

function parseMetadata(value: unknown): SnapshotMetadata | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { index, term, confState } = value as Record<string, unknown>;
  const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const isIds = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
  if (!isCount(index) || !isCount(term) || typeof confState !== 'object' || confState === null) return undefined;
  const { voters, learners, addresses } = confState as Record<string, unknown>;
  if (!isIds(voters) || (learners !== undefined && !isIds(learners))) return undefined;
  const isAddresses = (v: unknown): v is Record<string, string> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((u) => typeof u === 'string');
  if (addresses !== undefined && !isAddresses(addresses)) return undefined;
  return { index, term, confState: copyConfState({ voters, learners, addresses }) };
}

/**
 * A copy of a configuration as snapshot files record it: voters, learners when there are any, and the
 * members' addresses (the node layer's; files written before addresses existed have none).
 */
export function copyConfState(cs: ConfState): ConfState {
  return {
    voters: [...cs.voters],
    ...(cs.learners?.length ? { learners: [...cs.learners] } : {}),
    ...(cs.addresses && Object.keys(cs.addresses).length > 0 ? { addresses: { ...cs.addresses } } : {}),
  };
}

function hashChunk(hash: Hash, chunk: Uint8Array): void {
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(chunk.length, 0);
  hash.update(len).update(chunk);
}

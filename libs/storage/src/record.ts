import { crc32 } from 'node:zlib';

/**
 * Record framing of the write-ahead log's segments and of snapshot files (docs/storage.md is the normative
 * description).
 *
 * ```
 * offset  size  field
 * 0       4     crc       u32 LE: CRC-32 (IEEE, as zlib.crc32) of bytes [4, 12 + N): all that follows it
 * 4       4     length    u32 LE: payload length N in bytes
 * 8       1     type      u8: RecordType
 * 9       3     reserved  zero
 * 12      N     payload
 * ```
 * Records are packed back to back, without padding. The checksum covers the length and type too, so a
 * damaged header is caught as surely as a damaged payload; and it covers one contiguous range, so it costs
 * a single pass.
 */

export const HEADER_SIZE = 12;
/** Upper bound on a payload: larger lengths are treated as damage, not as an allocation request. */
export const MAX_PAYLOAD = 256 * 1024 * 1024;

export enum RecordType {
  /** First record of every segment: format version, segment sequence, index of the next entry. */
  SegmentHeader = 1,
  /** One Raft log entry. */
  Entry = 2,
  /** The Raft hard state (term, vote, commit); the last one wins. */
  HardState = 3,
  /** The cluster configuration (voters, learners); the last one wins. */
  ConfState = 4,
  /** Discards every entry at or above an index (a new leader overwrote an uncommitted suffix). */
  Truncate = 5,
  /** Ends a batch: the records since the previous BatchEnd take effect together, or not at all. */
  BatchEnd = 6,
  /** A snapshot was recorded (taken here: the log is kept; installed from the leader: the log is reset). */
  Snapshot = 7,
  /** Snapshot files only (snapshot-file.ts): the file's header (magic, version, metadata). */
  SnapshotFileHeader = 8,
  /** Snapshot files only: one chunk of the state machine's content, as the view produced it. */
  SnapshotChunk = 9,
  /** Snapshot files only: chunk count, content bytes and digest, closing the file. */
  SnapshotTrailer = 10,
}

const KNOWN_TYPES = new Set<number>(Object.values(RecordType).filter((v): v is number => typeof v === 'number'));

/**
 * Fills in the header of a record whose payload is already at `buf[offset + 12, offset + 12 + length)`.
 * Returns the offset just past the record.
 */
export function sealRecord(buf: Buffer, offset: number, type: RecordType, length: number): number {
  buf.writeUInt32LE(length, offset + 4);
  buf[offset + 8] = type;
  buf[offset + 9] = 0;
  buf[offset + 10] = 0;
  buf[offset + 11] = 0;
  buf.writeUInt32LE(checksum(buf, offset, length), offset);
  return offset + HEADER_SIZE + length;
}

/** A standalone record (header + copy of `payload`). */
export function encodeRecord(type: RecordType, payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  buf.set(payload, HEADER_SIZE);
  sealRecord(buf, 0, type, payload.length);
  return buf;
}

export type DecodedRecord =
  | { ok: true; type: RecordType; payload: Buffer; end: number }
  /** `incomplete`: the bytes end before the record does (the typical torn write). */
  | { ok: false; incomplete: boolean; reason: string };

/**
 * Decodes the record starting at `offset`, reading no byte at or beyond `limit`. Never throws: damage is
 * reported in the result. `payload` is a view into `buf` (copy it to keep it beyond `buf`'s life).
 */
export function decodeRecord(buf: Buffer, offset: number, limit = buf.length): DecodedRecord {
  if (limit - offset < HEADER_SIZE) {
    return { ok: false, incomplete: true, reason: `truncated record header (${limit - offset} of ${HEADER_SIZE} bytes)` };
  }
  const length = buf.readUInt32LE(offset + 4);
  const type = buf[offset + 8];
  if (!KNOWN_TYPES.has(type)) return { ok: false, incomplete: false, reason: `unknown record type ${type}` };
  if (buf[offset + 9] !== 0 || buf[offset + 10] !== 0 || buf[offset + 11] !== 0) {
    return { ok: false, incomplete: false, reason: 'non-zero reserved header bytes' };
  }
  if (length > MAX_PAYLOAD) return { ok: false, incomplete: false, reason: `implausible record length ${length}` };
  const end = offset + HEADER_SIZE + length;
  if (end > limit) {
    return { ok: false, incomplete: true, reason: `record of ${HEADER_SIZE + length} bytes runs past the end of the data` };
  }
  if (buf.readUInt32LE(offset) !== checksum(buf, offset, length)) {
    return { ok: false, incomplete: false, reason: 'checksum mismatch' };
  }
  return { ok: true, type: type as RecordType, payload: buf.subarray(offset + HEADER_SIZE, end), end };
}

/**
 * Offset of the first intact record starting after `from` and before `limit`, or -1. Used on the error path
 * only, to tell a torn final write (nothing intact follows) from damage in the middle of the log.
 */
export function findNextRecord(buf: Buffer, from: number, limit = buf.length): number {
  for (let p = from; p + HEADER_SIZE <= limit; p++) {
    // Cheap filters first: most offsets fail on the type or the reserved bytes.
    if (!KNOWN_TYPES.has(buf[p + 8]) || buf[p + 9] !== 0 || buf[p + 10] !== 0 || buf[p + 11] !== 0) continue;
    if (decodeRecord(buf, p, limit).ok) return p;
  }
  return -1;
}

function checksum(buf: Buffer, offset: number, length: number): number {
  return crc32(buf.subarray(offset + 4, offset + HEADER_SIZE + length));
}

import { ConfState, Entry, EntryType, HardState, SnapshotMetadata } from '@app/consensus/core';
import { HEADER_SIZE, RecordType, sealRecord } from './record';

/**
 * Payload layouts of the record types (docs/storage.md, "Records"). Integers are little-endian; a u64 holds
 * a JavaScript safe integer (at most 2^53 - 1); strings are UTF-8 with a u16 byte length in front.
 */

/** "RWAL" in file order: the first four payload bytes of every segment. */
export const SEGMENT_MAGIC = 0x4c415752;
export const FORMAT_VERSION = 1;

/** Bytes of an Entry payload before the entry's data: index, term, type. */
export const ENTRY_FIXED = 17;
const TWO_32 = 0x1_0000_0000;

/** A payload that passed its checksum but does not parse: a bug or a format this code does not know. */
export class PayloadError extends Error {}

export interface SegmentHeader {
  version: number;
  seq: number;
  /**
   * Index the next entry appended after this header gets: the log's last index + 1 at creation, or lower for
   * a rebased segment, whose header discards the log from there (a new leader overwrote entries that had
   * rolled into the previous segment).
   */
  firstIndex: number;
  /** Term of entry firstIndex - 1 (0 if none), so the log can start here once older segments are gone. */
  prevTerm: number;
}

/** Size of the Entry record (header included) for `entry`. */
export function entryRecordSize(entry: Entry): number {
  return HEADER_SIZE + ENTRY_FIXED + entry.data.length;
}

/** Writes `entry` as a complete Entry record at `offset`; returns the offset just past it. */
export function writeEntryRecord(buf: Buffer, offset: number, entry: Entry): number {
  const p = offset + HEADER_SIZE;
  writeU64(buf, p, entry.index);
  writeU64(buf, p + 8, entry.term);
  buf[p + 16] = entry.type;
  buf.set(entry.data, p + ENTRY_FIXED);
  return sealRecord(buf, offset, RecordType.Entry, ENTRY_FIXED + entry.data.length);
}

/** Decodes an Entry payload. `data` is a view into `payload` (copy it to keep it). */
export function decodeEntry(payload: Buffer): Entry {
  if (payload.length < ENTRY_FIXED) throw new PayloadError(`entry payload of ${payload.length} bytes is too short`);
  const type = payload[16];
  if (EntryType[type] === undefined) throw new PayloadError(`unknown entry type ${type}`);
  return {
    index: readU64(payload, 0),
    term: readU64(payload, 8),
    type: type as EntryType,
    data: payload.subarray(ENTRY_FIXED),
  };
}

/** The fixed fields of an Entry payload, without touching its data (recovery needs no more). */
export function decodeEntryHeader(payload: Buffer): { index: number; term: number; dataLength: number } {
  if (payload.length < ENTRY_FIXED) throw new PayloadError(`entry payload of ${payload.length} bytes is too short`);
  if (EntryType[payload[16]] === undefined) throw new PayloadError(`unknown entry type ${payload[16]}`);
  return { index: readU64(payload, 0), term: readU64(payload, 8), dataLength: payload.length - ENTRY_FIXED };
}

export function encodeHardState(hs: HardState): Buffer {
  const vote = Buffer.from(hs.vote, 'utf8');
  checkStringLength(vote, 'vote');
  const buf = Buffer.allocUnsafe(18 + vote.length);
  writeU64(buf, 0, hs.term);
  writeU64(buf, 8, hs.commit);
  buf.writeUInt16LE(vote.length, 16);
  vote.copy(buf, 18);
  return buf;
}

export function decodeHardState(payload: Buffer): HardState {
  const r = new Reader(payload);
  const hs = { term: r.u64(), commit: r.u64(), vote: r.str() };
  r.end('hard state');
  return { term: hs.term, vote: hs.vote, commit: hs.commit };
}

export function encodeConfState(cs: ConfState): Buffer {
  const parts: Buffer[] = [];
  for (const list of [cs.voters, cs.learners ?? []]) {
    const count = Buffer.allocUnsafe(4);
    count.writeUInt32LE(list.length, 0);
    parts.push(count);
    for (const id of list) {
      const bytes = Buffer.from(id, 'utf8');
      checkStringLength(bytes, 'member id');
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16LE(bytes.length, 0);
      parts.push(len, bytes);
    }
  }
  return Buffer.concat(parts);
}

export function decodeConfState(payload: Buffer): ConfState {
  const r = new Reader(payload);
  const voters = r.strList();
  const learners = r.strList();
  r.end('conf state');
  return learners.length > 0 ? { voters, learners } : { voters };
}

export function encodeSegmentHeader(h: Omit<SegmentHeader, 'version'>): Buffer {
  const buf = Buffer.alloc(32);
  buf.writeUInt32LE(SEGMENT_MAGIC, 0);
  buf.writeUInt16LE(FORMAT_VERSION, 4);
  writeU64(buf, 8, h.seq);
  writeU64(buf, 16, h.firstIndex);
  writeU64(buf, 24, h.prevTerm);
  return buf;
}

export function decodeSegmentHeader(payload: Buffer): SegmentHeader {
  if (payload.length !== 32) throw new PayloadError(`segment header of ${payload.length} bytes, expected 32`);
  if (payload.readUInt32LE(0) !== SEGMENT_MAGIC) throw new PayloadError('bad segment magic');
  const version = payload.readUInt16LE(4);
  if (version !== FORMAT_VERSION) {
    throw new PayloadError(`segment format version ${version}; this build reads version ${FORMAT_VERSION}`);
  }
  return { version, seq: readU64(payload, 8), firstIndex: readU64(payload, 16), prevTerm: readU64(payload, 24) };
}

/**
 * How a Snapshot record acts on the log. Written explicitly rather than re-derived on recovery, so that a
 * reader that starts after deleted segments (which may not know the entry the snapshot names) still does
 * exactly what the writer did.
 */
export enum SnapshotMode {
  /** A snapshot of entries the log holds (taken by this node, or repeated in a segment's header batch). */
  Keep = 0,
  /** A snapshot installed from the leader: every entry is discarded, the log restarts after it. */
  Reset = 1,
}

export interface SnapshotRecord {
  metadata: SnapshotMetadata;
  mode: SnapshotMode;
}

/** u64 index, u64 term, u8 mode, then the configuration as in a ConfState record. */
export function encodeSnapshotRecord(r: SnapshotRecord): Buffer {
  const head = Buffer.allocUnsafe(17);
  writeU64(head, 0, r.metadata.index);
  writeU64(head, 8, r.metadata.term);
  head[16] = r.mode;
  return Buffer.concat([head, encodeConfState(r.metadata.confState)]);
}

export function decodeSnapshotRecord(payload: Buffer): SnapshotRecord {
  if (payload.length < 17) throw new PayloadError(`snapshot payload of ${payload.length} bytes is too short`);
  const mode = payload[16];
  if (mode !== SnapshotMode.Keep && mode !== SnapshotMode.Reset) throw new PayloadError(`unknown snapshot mode ${mode}`);
  return {
    metadata: { index: readU64(payload, 0), term: readU64(payload, 8), confState: decodeConfState(payload.subarray(17)) },
    mode,
  };
}

export function encodeTruncate(index: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  writeU64(buf, 0, index);
  return buf;
}

export function decodeTruncate(payload: Buffer): number {
  if (payload.length !== 8) throw new PayloadError(`truncate payload of ${payload.length} bytes, expected 8`);
  return readU64(payload, 0);
}

export function encodeBatchEnd(recordCount: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt32LE(recordCount, 0);
  return buf;
}

export function decodeBatchEnd(payload: Buffer): number {
  if (payload.length !== 4) throw new PayloadError(`batch end payload of ${payload.length} bytes, expected 4`);
  return payload.readUInt32LE(0);
}

/** Writes a u64 LE. `value` must be a non-negative safe integer (checked by the caller's validation). */
export function writeU64(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32LE(value >>> 0, offset);
  buf.writeUInt32LE(Math.floor(value / TWO_32), offset + 4);
}

export function readU64(buf: Buffer, offset: number): number {
  const hi = buf.readUInt32LE(offset + 4);
  if (hi > 0x1f_ffff) throw new PayloadError('u64 value beyond 2^53 - 1');
  return hi * TWO_32 + buf.readUInt32LE(offset);
}

function checkStringLength(bytes: Buffer, what: string): void {
  if (bytes.length > 0xffff) throw new RangeError(`${what} is ${bytes.length} bytes long; at most 65535 fit`);
}

class Reader {
  private p = 0;
  constructor(private readonly buf: Buffer) {}

  u64(): number {
    this.need(8);
    const v = readU64(this.buf, this.p);
    this.p += 8;
    return v;
  }

  str(): string {
    this.need(2);
    const len = this.buf.readUInt16LE(this.p);
    this.p += 2;
    this.need(len);
    const s = this.buf.toString('utf8', this.p, this.p + len);
    this.p += len;
    return s;
  }

  strList(): string[] {
    this.need(4);
    const n = this.buf.readUInt32LE(this.p);
    this.p += 4;
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.str());
    return out;
  }

  end(what: string): void {
    if (this.p !== this.buf.length) throw new PayloadError(`${this.buf.length - this.p} trailing bytes in ${what}`);
  }

  private need(n: number): void {
    if (this.p + n > this.buf.length) throw new PayloadError('payload ends early');
  }
}

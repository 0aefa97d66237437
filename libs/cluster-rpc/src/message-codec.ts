import { Entry, EntryType, Message, MessageType, Snapshot } from '@app/consensus/core';

/**
 * Binary encoding of a batch of Raft messages, for the body of one peer request.
 *
 * All integers little-endian. Log indexes and terms are written as float64: exact for every integer below
 * 2^53, cheaper to read and write in JavaScript than 64-bit integers.
 *
 *   batch   := magic u16 (0x5246 "RF") | version u8 (1) | count u32 | message*count
 *   message := type u8 | flags u8 (bit0 reject, bit1 has context, bit2 has snapshot)
 *              | term f64 | logTerm f64 | index f64 | commit f64 | rejectHint f64
 *              | to str | from str | [context str] | entryCount u32 | entry*entryCount | [snapshot]
 *   entry   := term f64 | index f64 | type u8 | dataLength u32 | data
 *   str     := length u16 | utf-8 bytes
 *   snapshot:= metaLength u32 | meta (utf-8 JSON of SnapshotMetadata) | dataLength u32 | data
 *
 * Entry data in decoded messages are views into the request body (no copy).
 */

const MAGIC = 0x5246;
const VERSION = 1;
const MESSAGE_FIXED = 2 + 5 * 8;
const ENTRY_FIXED = 8 + 8 + 1 + 4;

/** The body of a peer request is not a valid message batch. */
export class MessageDecodeError extends Error {
  constructor(message: string) {
    super(`invalid message batch: ${message}`);
    this.name = 'MessageDecodeError';
  }
}

function strLength(s: string): number {
  return 2 + Buffer.byteLength(s, 'utf8');
}

function encodedSize(m: Message): number {
  let size = MESSAGE_FIXED + strLength(m.to) + strLength(m.from) + 4;
  if (m.context !== undefined) size += strLength(m.context);
  if (m.entries) for (const e of m.entries) size += ENTRY_FIXED + e.data.length;
  if (m.snapshot) size += 4 + Buffer.byteLength(JSON.stringify(m.snapshot.metadata)) + 4 + m.snapshot.data.length;
  return size;
}

/**
 * Encodes a batch. `headroom` bytes are left free at the start of the returned buffer (for a frame header,
 * so that framing costs no copy); the batch starts at that offset.
 */
export function encodeMessages(messages: Message[], headroom = 0): Buffer {
  let size = headroom + 7;
  for (const m of messages) size += encodedSize(m);
  const buf = Buffer.allocUnsafe(size);
  let o = buf.writeUInt16LE(MAGIC, headroom);
  o = buf.writeUInt8(VERSION, o);
  o = buf.writeUInt32LE(messages.length, o);
  const writeStr = (s: string) => {
    const n = buf.write(s, o + 2, 'utf8');
    if (n > 0xffff) throw new RangeError('string too long for the message codec');
    buf.writeUInt16LE(n, o);
    o += 2 + n;
  };
  for (const m of messages) {
    const flags = (m.reject ? 1 : 0) | (m.context !== undefined ? 2 : 0) | (m.snapshot ? 4 : 0);
    o = buf.writeUInt8(m.type, o);
    o = buf.writeUInt8(flags, o);
    o = buf.writeDoubleLE(m.term, o);
    o = buf.writeDoubleLE(m.logTerm, o);
    o = buf.writeDoubleLE(m.index, o);
    o = buf.writeDoubleLE(m.commit, o);
    o = buf.writeDoubleLE(m.rejectHint, o);
    writeStr(m.to);
    writeStr(m.from);
    if (m.context !== undefined) writeStr(m.context);
    const entries = m.entries ?? [];
    o = buf.writeUInt32LE(entries.length, o);
    for (const e of entries) {
      o = buf.writeDoubleLE(e.term, o);
      o = buf.writeDoubleLE(e.index, o);
      o = buf.writeUInt8(e.type, o);
      o = buf.writeUInt32LE(e.data.length, o);
      buf.set(e.data, o);
      o += e.data.length;
    }
    if (m.snapshot) {
      const meta = Buffer.from(JSON.stringify(m.snapshot.metadata));
      o = buf.writeUInt32LE(meta.length, o);
      meta.copy(buf, o);
      o += meta.length;
      o = buf.writeUInt32LE(m.snapshot.data.length, o);
      buf.set(m.snapshot.data, o);
      o += m.snapshot.data.length;
    }
  }
  return buf;
}

export function decodeMessages(buf: Buffer): Message[] {
  let o = 0;
  const need = (n: number) => {
    if (o + n > buf.length) throw new MessageDecodeError(`truncated at byte ${o} (need ${n} more of ${buf.length})`);
  };
  const readStr = () => {
    need(2);
    const n = buf.readUInt16LE(o);
    need(2 + n);
    const s = buf.toString('utf8', o + 2, o + 2 + n);
    o += 2 + n;
    return s;
  };
  const readF64 = () => {
    const v = buf.readDoubleLE(o);
    o += 8;
    if (!Number.isSafeInteger(v) || v < 0) throw new MessageDecodeError(`bad number ${v} before byte ${o}`);
    return v;
  };
  need(7);
  if (buf.readUInt16LE(0) !== MAGIC) throw new MessageDecodeError('bad magic');
  if (buf.readUInt8(2) !== VERSION) throw new MessageDecodeError(`unsupported version ${buf.readUInt8(2)}`);
  const count = buf.readUInt32LE(3);
  o = 7;
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) {
    need(MESSAGE_FIXED);
    const type = buf.readUInt8(o) as MessageType;
    if (MessageType[type] === undefined) throw new MessageDecodeError(`unknown message type ${type}`);
    const flags = buf.readUInt8(o + 1);
    o += 2;
    const term = readF64();
    const logTerm = readF64();
    const index = readF64();
    const commit = readF64();
    const rejectHint = readF64();
    const to = readStr();
    const from = readStr();
    const m: Message = { type, to, from, term, logTerm, index, commit, reject: (flags & 1) !== 0, rejectHint };
    if (flags & 2) m.context = readStr();
    need(4);
    const entryCount = buf.readUInt32LE(o);
    o += 4;
    if (entryCount > 0) {
      const entries: Entry[] = new Array(entryCount);
      for (let j = 0; j < entryCount; j++) {
        need(ENTRY_FIXED);
        const eTerm = readF64();
        const eIndex = readF64();
        const eType = buf.readUInt8(o) as EntryType;
        const length = buf.readUInt32LE(o + 1);
        o += 5;
        need(length);
        entries[j] = { term: eTerm, index: eIndex, type: eType, data: buf.subarray(o, o + length) };
        o += length;
      }
      m.entries = entries;
    }
    if (flags & 4) {
      need(4);
      const metaLength = buf.readUInt32LE(o);
      o += 4;
      need(metaLength);
      let metadata: Snapshot['metadata'];
      try {
        metadata = JSON.parse(buf.toString('utf8', o, o + metaLength));
      } catch {
        throw new MessageDecodeError('bad snapshot metadata');
      }
      o += metaLength;
      need(4);
      const length = buf.readUInt32LE(o);
      o += 4;
      need(length);
      m.snapshot = { metadata, data: buf.subarray(o, o + length) };
      o += length;
    }
    messages.push(m);
  }
  if (o !== buf.length) throw new MessageDecodeError(`${buf.length - o} trailing bytes`);
  return messages;
}

import { Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata } from '@app/consensus/core';
import { isUtf8 } from 'node:buffer';

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
 *
 * The decoder is the wall between the network and the Raft core: it returns only messages the core can take
 * (see decodeMessages for the rules) and refuses everything else with a MessageDecodeError.
 */

const MAGIC = 0x5246;
const VERSION = 1;
const BATCH_HEADER = 2 + 1 + 4;
const MESSAGE_FIXED = 2 + 5 * 8;
/** The smallest message the format can express: fixed part, two string lengths, the entry count. */
const MESSAGE_MIN = MESSAGE_FIXED + 2 + 2 + 4;
const ENTRY_FIXED = 8 + 8 + 1 + 4;
const KNOWN_FLAGS = 1 | 2 | 4;

/** Longest `from` / `to` accepted, in UTF-8 bytes (a member's id is its NODE_ID: at most 63 characters). */
export const MAX_NODE_ID_BYTES = 1024;

/** The body of a peer request is not a valid message batch; the message names the problem. */
export class MessageDecodeError extends Error {
  constructor(message: string) {
    super(`invalid message batch: ${message}`);
    this.name = 'MessageDecodeError';
  }
}

// What each message type may be and carry on the wire (docs/cluster-rpc.md). Types without a rule (the core's
// local ones: MsgHup, MsgBeat, MsgProp, MsgUnreachable, MsgSnapStatus, MsgCheckQuorum) never cross the network.
const NETWORK = 1;
/** Sent by a leader or a candidate, which always has a term >= 1 (term 0 would mean "no term" to the core). */
const HAS_TERM = 2;
/** `logTerm` is the term of one of the sender's own entries, so at most its term. */
const LOG_TERM_AT_MOST_TERM = 4;
const CARRIES_ENTRIES = 8;
const CARRIES_SNAPSHOT = 16;
const RULES = new Uint8Array(256);
RULES[MessageType.MsgApp] = NETWORK | HAS_TERM | LOG_TERM_AT_MOST_TERM | CARRIES_ENTRIES;
RULES[MessageType.MsgAppResp] = NETWORK;
RULES[MessageType.MsgVote] = NETWORK | HAS_TERM | LOG_TERM_AT_MOST_TERM;
RULES[MessageType.MsgVoteResp] = NETWORK;
RULES[MessageType.MsgSnap] = NETWORK | HAS_TERM | CARRIES_SNAPSHOT;
RULES[MessageType.MsgHeartbeat] = NETWORK | HAS_TERM;
RULES[MessageType.MsgHeartbeatResp] = NETWORK;
RULES[MessageType.MsgTransferLeader] = NETWORK;
RULES[MessageType.MsgTimeoutNow] = NETWORK | HAS_TERM;
// A follower forwards a read to the leader with term 0 ("no term").
RULES[MessageType.MsgReadIndex] = NETWORK;
RULES[MessageType.MsgReadIndexResp] = NETWORK | HAS_TERM;
RULES[MessageType.MsgPreVote] = NETWORK | HAS_TERM | LOG_TERM_AT_MOST_TERM;
RULES[MessageType.MsgPreVoteResp] = NETWORK;

/** Whether `type` may cross the network (the local types of the core never do). */
export function isNetworkMessageType(type: MessageType): boolean {
  return (RULES[type] & NETWORK) !== 0;
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


/** A cursor over one batch; it knows which message it is in, to name it in errors. */
class Reader {
  o = BATCH_HEADER;
  /** Position in the batch of the message being read, and its type once read (-1: none yet). */
  message = -1;
  type = -1;

  constructor(readonly buf: Buffer) {}

  fail(problem: string): never {
    let where = '';
    if (this.message >= 0) {
      where = `message ${this.message}`;
      if (this.type >= 0) where += ` (${MessageType[this.type] ?? `type ${this.type}`})`;
      where += ': ';
    }
    throw new MessageDecodeError(where + problem);
  }

  get left(): number {
    return this.buf.length - this.o;
  }

  need(n: number, what: string): void {
    if (n > this.buf.length - this.o) this.fail(`truncated: ${what} needs ${n} bytes at byte ${this.o}, ${this.left} left`);
  }

  u8(): number {
    return this.buf[this.o++];
  }

  u32(): number {
    const v = this.buf.readUInt32LE(this.o);
    this.o += 4;
    return v;
  }

  /** A log index or term (or a commit, a hint): a non-negative integer below 2^53. Call after need(). */
  f64(field: string): number {
    const v = this.buf.readDoubleLE(this.o);
    if (!Number.isSafeInteger(v) || v < 0) this.fail(`${field} is ${v}, not an integer in [0, 2^53)`);
    this.o += 8;
    return v + 0; // -0 becomes 0
  }

  str(field: string, min: number, max: number): string {
    this.need(2, field);
    const n = this.buf.readUInt16LE(this.o);
    if (n < min || n > max) this.fail(`${field} is ${n} bytes long, allowed ${min} to ${max}`);
    this.need(2 + n, field);
    const start = this.o + 2;
    // Invalid bytes would decode to U+FFFD: a string that no member sent, and longer than its bytes.
    if (!isUtf8(this.buf.subarray(start, start + n))) this.fail(`${field} is not valid UTF-8`);
    this.o = start + n;
    return this.buf.toString('utf8', start, start + n);
  }

  /** A length-prefixed byte string, as a view into the batch. */
  bytes(field: string): Buffer {
    this.need(4, field);
    const n = this.u32();
    this.need(n, field);
    const out = this.buf.subarray(this.o, this.o + n);
    this.o += n;
    return out;
  }
}

/**
 * Decodes a batch and checks that every message in it is one the Raft core can take; throws
 * MessageDecodeError, naming the message and the problem, at the first that is not. Refused:
 * - a truncated batch, a length (string, entries, data, message count) that runs past its end, trailing
 *   bytes, a bad magic or version, unknown flag bits;
 * - a message type that is unknown or local to a node (MsgHup, MsgBeat, MsgProp, MsgUnreachable,
 *   MsgSnapStatus, MsgCheckQuorum);
 * - a term, logTerm, index, commit or rejectHint that is not an integer in [0, 2^53);
 * - term 0 on a message only a leader or a candidate sends (MsgApp, MsgHeartbeat, MsgSnap, MsgVote,
 *   MsgPreVote, MsgTimeoutNow, MsgReadIndexResp); a logTerm above the term on MsgApp, MsgVote, MsgPreVote;
 * - an empty `from` or `to`, or one longer than MAX_NODE_ID_BYTES; a string that is not valid UTF-8;
 * - entries on anything but a MsgApp; entries whose indexes are not index+1, index+2, ... in order, whose
 *   terms are 0, decrease, start below logTerm or exceed the message's term; an unknown entry type;
 * - a snapshot on anything but a MsgSnap, a MsgSnap without one, snapshot metadata that is not
 *   `{ index, term <= the message's term, confState: { voters: string[], learners?: string[] } }`.
 * The transport then checks `from` and `to` against the stream's sender and recipient.
 */
export function decodeMessages(buf: Buffer): Message[] {
  const r = new Reader(buf);
  if (buf.length < BATCH_HEADER) r.fail(`truncated: ${buf.length} bytes, a batch header is ${BATCH_HEADER}`);
  if (buf.readUInt16LE(0) !== MAGIC) r.fail('bad magic');
  if (buf[2] !== VERSION) r.fail(`unsupported version ${buf[2]}`);
  const count = buf.readUInt32LE(3);
  if (count > r.left / MESSAGE_MIN) r.fail(`${count} messages cannot fit in the ${r.left} bytes left`);
  const messages: Message[] = new Array(count);
  for (let i = 0; i < count; i++) {
    r.message = i;
    r.type = -1;
    r.need(MESSAGE_FIXED, 'message');
    const type = r.u8();
    const rules = RULES[type];
    if (rules === 0) r.fail(MessageType[type] === undefined ? `unknown message type ${type}` : `${MessageType[type]} never crosses the network`);
    r.type = type;
    const flags = r.u8();
    if ((flags & ~KNOWN_FLAGS) !== 0) r.fail(`unknown flags 0x${flags.toString(16)}`);
    const term = r.f64('term');
    const logTerm = r.f64('logTerm');
    const index = r.f64('index');
    const commit = r.f64('commit');
    const rejectHint = r.f64('rejectHint');
    if (term === 0 && (rules & HAS_TERM) !== 0) r.fail('term is 0, but its sender always has a term');
    if (logTerm > term && (rules & LOG_TERM_AT_MOST_TERM) !== 0) r.fail(`logTerm ${logTerm} is above the term ${term}`);
    const to = r.str('to', 1, MAX_NODE_ID_BYTES);
    const from = r.str('from', 1, MAX_NODE_ID_BYTES);
    const m: Message = { type, to, from, term, logTerm, index, commit, reject: (flags & 1) !== 0, rejectHint };
    if (flags & 2) m.context = r.str('context', 0, 0xffff);
    r.need(4, 'entry count');
    const entryCount = r.u32();
    if (entryCount > 0) {
      if ((rules & CARRIES_ENTRIES) === 0) r.fail(`carries ${entryCount} entries; only MsgApp carries entries`);
      if (entryCount > r.left / ENTRY_FIXED) r.fail(`${entryCount} entries cannot fit in the ${r.left} bytes left`);
      const entries: Entry[] = new Array(entryCount);
      let prevTerm = logTerm;
      for (let j = 0; j < entryCount; j++) {
        r.need(ENTRY_FIXED, `entry ${j}`);
        const eTerm = r.f64(`entry ${j} term`);
        const eIndex = r.f64(`entry ${j} index`);
        if (eIndex !== index + 1 + j) r.fail(`entry ${j} has index ${eIndex}, expected ${index + 1 + j} (entries follow index ${index} one by one)`);
        if (eTerm < prevTerm || eTerm > term || eTerm === 0) {
          r.fail(`entry ${j} has term ${eTerm}, outside [${Math.max(prevTerm, 1)}, ${term}] (log terms start at 1, never decrease and never pass the leader's term)`);
        }
        prevTerm = eTerm;
        const eType = r.u8();
        if (eType !== EntryType.Normal && eType !== EntryType.ConfChange) r.fail(`entry ${j} has unknown type ${eType}`);
        entries[j] = { term: eTerm, index: eIndex, type: eType, data: r.bytes(`entry ${j} data`) };
      }
      m.entries = entries;
    }
    if ((flags & 4) !== 0) {
      if ((rules & CARRIES_SNAPSHOT) === 0) r.fail('carries a snapshot; only MsgSnap does');
      const meta = r.bytes('snapshot metadata');
      const metadata = snapshotMetadata(r, meta.toString('utf8'), term);
      m.snapshot = { metadata, data: r.bytes('snapshot data') };
    } else if ((rules & CARRIES_SNAPSHOT) !== 0) {
      r.fail('carries no snapshot');
    }
    messages[i] = m;
  }
  r.message = -1;
  if (r.left !== 0) r.fail(`${r.left} trailing bytes`);
  return messages;
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isIdList = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((id) => typeof id === 'string' && id.length > 0 && Buffer.byteLength(id) <= MAX_NODE_ID_BYTES);

/** Parses and checks a snapshot's metadata; returns a fresh object with only the known fields. */
function snapshotMetadata(r: Reader, json: string, term: number): Snapshot['metadata'] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    r.fail('snapshot metadata is not JSON');
  }
  const meta = raw as Partial<Record<keyof SnapshotMetadata, unknown>> | null;
  if (typeof meta !== 'object' || meta === null) r.fail('snapshot metadata is not an object');
  if (!isIndex(meta.index) || !isIndex(meta.term)) r.fail('snapshot metadata needs an integer index and term in [0, 2^53)');
  if (meta.term > term) r.fail(`snapshot term ${meta.term} is above the message's term ${term}`);
  const conf = meta.confState as { voters?: unknown; learners?: unknown } | null;
  if (typeof conf !== 'object' || conf === null || !isIdList(conf.voters) || (conf.learners !== undefined && !isIdList(conf.learners))) {
    r.fail('snapshot confState needs voters (and optional learners) as lists of member ids');
  }
  const confState: SnapshotMetadata['confState'] = { voters: [...conf.voters] };
  if (conf.learners !== undefined) confState.learners = [...(conf.learners as string[])];
  return { index: meta.index, term: meta.term, confState };
}

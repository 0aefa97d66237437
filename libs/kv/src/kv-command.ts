/**
 * The commands the KV state machine applies, as stored in Raft log entries.
 *
 *   command   := version u8 (1) | op u8 (1 put, 2 delete) | keyLength u32 LE | key (utf-8) | value (utf-8, put only)
 *              | version u8 (2) | op u8 | condition | keyLength u32 LE | key (utf-8) | value (utf-8, put only)
 *              | version u8 (3) | op u8 (1 put, 2 delete) | flags u8 | at u64 LE | condition (flag bit 0)
 *                | ttl u32 LE (flag bit 1, put only) | tokenLength u8 | token | fingerprint (16 bytes) (flag bit 2)
 *                | keyLength u32 LE | key (utf-8) | value (utf-8, put only)
 *              | version u8 (3) | op u8 (3 expire) | flags u8 (0) | at u64 LE | count u32 LE
 *                | (modIndex u64 LE | keyLength u32 LE | key (utf-8)) * count
 *   condition := kind u8 (1 exists, 2 absent) | kind u8 (3 modIndex) modIndex u64 LE
 *
 * Version 1 is an unconditional write; version 2 carries a condition that the state machine evaluates when it
 * applies the entry (so every replica reaches the same outcome, and no write can slip between the check and
 * the change). An unconditional command is still written as version 1: its bytes stay those of every log
 * written before conditions existed, and a node of the previous version can still apply it.
 *
 * Version 3 is written only for a command that uses what it adds: a TTL, an Idempotency-Key, or an expiry.
 * It carries `at`, the proposing leader's wall clock (ms since the epoch): every decision that depends on
 * time (a key's expiresAt, whether an expiry is due, the idempotency window) is taken at apply time from the
 * entry's `at`, never from the applying node's clock, so every replica decides the same.
 *
 * Binary rather than JSON: it is written once per write into the WAL and every follower's log, and decoded
 * on every node at apply time.
 */

/**
 * What must hold for a command to take effect: the key exists, the key is absent, or the key exists and was
 * last changed by the entry at `modIndex` (its ETag).
 */
export type KvCondition = { kind: 'exists' } | { kind: 'absent' } | { kind: 'modIndex'; modIndex: number };

/**
 * An Idempotency-Key and the fingerprint of the request it came with (see requestFingerprint): a retry
 * with the same token and fingerprint is answered with the first outcome; another request with the token
 * is refused.
 */
export interface KvIdempotency {
  token: string;
  /** FINGERPRINT_BYTES bytes. */
  fingerprint: Buffer;
}

/** A key the leader saw due to expire, with the modIndex it had then (a later write keeps it alive). */
export interface KvExpiry {
  key: string;
  modIndex: number;
}

/**
 * `at` (the proposing leader's wall clock) is required with `ttl` or `idempotency`, and makes the command
 * version 3; `ttl` is in whole seconds.
 */
export type KvCommand =
  | { op: 'put'; key: string; value: string; condition?: KvCondition; at?: number; ttl?: number; idempotency?: KvIdempotency }
  | { op: 'delete'; key: string; condition?: KvCondition; at?: number; idempotency?: KvIdempotency }
  | { op: 'expire'; at: number; keys: KvExpiry[] };

export const FINGERPRINT_BYTES = 16;
/** An Idempotency-Key's longest form, in bytes (visible ASCII, one byte each). */
export const MAX_IDEMPOTENCY_TOKEN_BYTES = 128;

const PLAIN = 1;
const CONDITIONAL = 2;
const TIMED = 3;
const PUT = 1;
const DELETE = 2;
const EXPIRE = 3;
const HAS_CONDITION = 1;
const HAS_TTL = 2;
const HAS_IDEMPOTENCY = 4;
const EXISTS = 1;
const ABSENT = 2;
const MOD_INDEX = 3;
const TWO_32 = 2 ** 32;

export function encodeCommand(command: KvCommand): Buffer {
  if (command.op === 'expire' || command.at !== undefined || (command.op === 'put' && command.ttl !== undefined) || command.idempotency) {
    return encodeTimed(command);
  }
  const keyLength = Buffer.byteLength(command.key, 'utf8');
  const valueLength = command.op === 'put' ? Buffer.byteLength(command.value, 'utf8') : 0;
  const condition = command.condition;
  const conditionLength = condition === undefined ? 0 : condition.kind === 'modIndex' ? 9 : 1;
  const header = 6 + conditionLength;
  const buf = Buffer.allocUnsafe(header + keyLength + valueLength);
  buf[0] = condition === undefined ? PLAIN : CONDITIONAL;
  buf[1] = command.op === 'put' ? PUT : DELETE;
  if (condition !== undefined) {
    buf[2] = condition.kind === 'exists' ? EXISTS : condition.kind === 'absent' ? ABSENT : MOD_INDEX;
    if (condition.kind === 'modIndex') writeIndex(buf, 3, condition.modIndex);
  }
  buf.writeUInt32LE(keyLength, 2 + conditionLength);
  buf.write(command.key, header, keyLength, 'utf8');
  if (command.op === 'put') buf.write(command.value, header + keyLength, valueLength, 'utf8');
  return buf;
}

function conditionBytes(condition: KvCondition | undefined): number {
  return condition === undefined ? 0 : condition.kind === 'modIndex' ? 9 : 1;
}

function writeCondition(buf: Buffer, at: number, condition: KvCondition): number {
  buf[at] = condition.kind === 'exists' ? EXISTS : condition.kind === 'absent' ? ABSENT : MOD_INDEX;
  if (condition.kind === 'modIndex') writeIndex(buf, at + 1, condition.modIndex);
  return at + conditionBytes(condition);
}

/** Version 3 (see the format above). */
function encodeTimed(command: KvCommand): Buffer {
  if (command.at === undefined) throw new Error(`a KV ${command.op} with a TTL or an Idempotency-Key needs the leader's time (at)`);
  if (command.op === 'expire') {
    const keyLengths = command.keys.map(({ key }) => Buffer.byteLength(key, 'utf8'));
    const buf = Buffer.allocUnsafe(15 + keyLengths.reduce((sum, length) => sum + 12 + length, 0));
    buf[0] = TIMED;
    buf[1] = EXPIRE;
    buf[2] = 0;
    writeIndex(buf, 3, command.at);
    buf.writeUInt32LE(command.keys.length, 11);
    let at = 15;
    command.keys.forEach(({ key, modIndex }, i) => {
      writeIndex(buf, at, modIndex);
      buf.writeUInt32LE(keyLengths[i], at + 8);
      at += 12 + buf.write(key, at + 12, keyLengths[i], 'utf8');
    });
    return buf;
  }
  const { condition, idempotency } = command;
  const ttl = command.op === 'put' ? command.ttl : undefined;
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0 && ttl < TWO_32)) throw new RangeError(`ttl ${ttl} is not a u32 > 0`);
  const tokenLength = idempotency ? Buffer.byteLength(idempotency.token, 'latin1') : 0;
  if (idempotency && (tokenLength > 255 || idempotency.fingerprint.length !== FINGERPRINT_BYTES)) {
    throw new RangeError('an idempotency token is at most 255 bytes and its fingerprint FINGERPRINT_BYTES');
  }
  const keyLength = Buffer.byteLength(command.key, 'utf8');
  const valueLength = command.op === 'put' ? Buffer.byteLength(command.value, 'utf8') : 0;
  const header =
    11 + conditionBytes(condition) + (ttl !== undefined ? 4 : 0) + (idempotency ? 1 + tokenLength + FINGERPRINT_BYTES : 0) + 4;
  const buf = Buffer.allocUnsafe(header + keyLength + valueLength);
  buf[0] = TIMED;
  buf[1] = command.op === 'put' ? PUT : DELETE;
  buf[2] = (condition ? HAS_CONDITION : 0) | (ttl !== undefined ? HAS_TTL : 0) | (idempotency ? HAS_IDEMPOTENCY : 0);
  writeIndex(buf, 3, command.at);
  let at = 11;
  if (condition) at = writeCondition(buf, at, condition);
  if (ttl !== undefined) {
    buf.writeUInt32LE(ttl, at);
    at += 4;
  }
  if (idempotency) {
    buf[at] = tokenLength;
    buf.write(idempotency.token, at + 1, tokenLength, 'latin1');
    idempotency.fingerprint.copy(buf, at + 1 + tokenLength);
    at += 1 + tokenLength + FINGERPRINT_BYTES;
  }
  buf.writeUInt32LE(keyLength, at);
  buf.write(command.key, at + 4, keyLength, 'utf8');
  if (command.op === 'put') buf.write(command.value, header + keyLength, valueLength, 'utf8');
  return buf;
}

/** Decodes a command; returns undefined for bytes that are not a command this version understands. */
export function decodeCommand(data: Uint8Array): KvCommand | undefined {
  if (data.length < 2) return undefined;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf[0] === TIMED) return decodeTimed(buf);
  if (buf[0] !== PLAIN && buf[0] !== CONDITIONAL) return undefined;
  let at = 2;
  let condition: KvCondition | undefined;
  if (buf[0] === CONDITIONAL) {
    const kind = buf[2];
    if (kind === EXISTS) condition = { kind: 'exists' };
    else if (kind === ABSENT) condition = { kind: 'absent' };
    else if (kind === MOD_INDEX && buf.length >= 11) {
      const modIndex = readIndex(buf, 3);
      if (modIndex === undefined) return undefined;
      condition = { kind: 'modIndex', modIndex };
    } else return undefined;
    at = kind === MOD_INDEX ? 11 : 3;
  }
  if (buf.length < at + 4) return undefined;
  const keyLength = buf.readUInt32LE(at);
  const header = at + 4;
  if (header + keyLength > buf.length) return undefined;
  const key = buf.toString('utf8', header, header + keyLength);
  const withCondition = <T extends KvCommand>(command: T): T => (condition ? { ...command, condition } : command);
  if (buf[1] === PUT) return withCondition({ op: 'put', key, value: buf.toString('utf8', header + keyLength) });
  if (buf[1] === DELETE && buf.length === header + keyLength) return withCondition({ op: 'delete', key });
  return undefined;
}

/** Reads a condition at `at`: the condition and where it ends, or undefined. */
function readCondition(buf: Buffer, at: number): { condition: KvCondition; end: number } | undefined {
  if (at >= buf.length) return undefined;
  const kind = buf[at];
  if (kind === EXISTS) return { condition: { kind: 'exists' }, end: at + 1 };
  if (kind === ABSENT) return { condition: { kind: 'absent' }, end: at + 1 };
  if (kind !== MOD_INDEX || at + 9 > buf.length) return undefined;
  const modIndex = readIndex(buf, at + 1);
  return modIndex === undefined ? undefined : { condition: { kind: 'modIndex', modIndex }, end: at + 9 };
}

function decodeTimed(buf: Buffer): KvCommand | undefined {
  if (buf.length < 11) return undefined;
  const op = buf[1];
  const flags = buf[2];
  const time = readIndex(buf, 3);
  if (time === undefined) return undefined;
  if (op === EXPIRE) {
    if (flags !== 0 || buf.length < 15) return undefined;
    const count = buf.readUInt32LE(11);
    const keys: KvExpiry[] = [];
    let at = 15;
    for (let i = 0; i < count; i++) {
      if (at + 12 > buf.length) return undefined;
      const modIndex = readIndex(buf, at);
      const end = at + 12 + buf.readUInt32LE(at + 8);
      if (modIndex === undefined || end > buf.length) return undefined;
      keys.push({ key: buf.toString('utf8', at + 12, end), modIndex });
      at = end;
    }
    return at === buf.length ? { op: 'expire', at: time, keys } : undefined;
  }
  if ((op !== PUT && op !== DELETE) || (flags & ~(HAS_CONDITION | HAS_TTL | HAS_IDEMPOTENCY)) !== 0) return undefined;
  if (op === DELETE && (flags & HAS_TTL) !== 0) return undefined;
  let at = 11;
  let condition: KvCondition | undefined;
  let ttl: number | undefined;
  let idempotency: KvIdempotency | undefined;
  if (flags & HAS_CONDITION) {
    const read = readCondition(buf, at);
    if (!read) return undefined;
    ({ condition, end: at } = read);
  }
  if (flags & HAS_TTL) {
    if (at + 4 > buf.length) return undefined;
    ttl = buf.readUInt32LE(at);
    if (ttl === 0) return undefined;
    at += 4;
  }
  if (flags & HAS_IDEMPOTENCY) {
    if (at >= buf.length) return undefined;
    const end = at + 1 + buf[at];
    if (end + FINGERPRINT_BYTES > buf.length) return undefined;
    idempotency = { token: buf.toString('latin1', at + 1, end), fingerprint: Buffer.from(buf.subarray(end, end + FINGERPRINT_BYTES)) };
    at = end + FINGERPRINT_BYTES;
  }
  if (at + 4 > buf.length) return undefined;
  const keyEnd = at + 4 + buf.readUInt32LE(at);
  if (keyEnd > buf.length) return undefined;
  const key = buf.toString('utf8', at + 4, keyEnd);
  const extras = { ...(condition ? { condition } : {}), at: time, ...(idempotency ? { idempotency } : {}) };
  if (op === PUT) return { op: 'put', key, value: buf.toString('utf8', keyEnd), ...extras, ...(ttl !== undefined ? { ttl } : {}) };
  return keyEnd === buf.length ? { op: 'delete', key, ...extras } : undefined;
}

/** Writes a log index (a safe integer ≥ 0) as a u64 LE, the width etcd's and the Raft log's indexes have. */
export function writeIndex(buf: Buffer, at: number, index: number): void {
  buf.writeUInt32LE(index % TWO_32, at);
  buf.writeUInt32LE(Math.floor(index / TWO_32), at + 4);
}

/** Reads a u64 LE log index; undefined when it is past Number.MAX_SAFE_INTEGER (no log reaches it). */
export function readIndex(buf: Buffer, at: number): number | undefined {
  const high = buf.readUInt32LE(at + 4);
  if (high >= 2 ** 21) return undefined;
  return high * TWO_32 + buf.readUInt32LE(at);
}

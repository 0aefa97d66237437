/**
 * The commands the KV state machine applies, as stored in Raft log entries.
 *
 *   command   := version u8 (1) | op u8 (1 put, 2 delete) | keyLength u32 LE | key (utf-8) | value (utf-8, put only)
 *              | version u8 (2) | op u8 | condition | keyLength u32 LE | key (utf-8) | value (utf-8, put only)
 *   condition := kind u8 (1 exists, 2 absent) | kind u8 (3 modIndex) modIndex u64 LE
 *
 * Version 1 is an unconditional write; version 2 carries a condition that the state machine evaluates when it
 * applies the entry (so every replica reaches the same outcome, and no write can slip between the check and
 * the change). An unconditional command is still written as version 1: its bytes stay those of every log
 * written before conditions existed, and a node of the previous version can still apply it.
 *
 * Binary rather than JSON: it is written once per write into the WAL and every follower's log, and decoded
 * on every node at apply time.
 */

/**
 * What must hold for a command to take effect: the key exists, the key is absent, or the key exists and was
 * last changed by the entry at `modIndex` (its ETag).
 */
export type KvCondition = { kind: 'exists' } | { kind: 'absent' } | { kind: 'modIndex'; modIndex: number };

export type KvCommand =
  | { op: 'put'; key: string; value: string; condition?: KvCondition }
  | { op: 'delete'; key: string; condition?: KvCondition };

const PLAIN = 1;
const CONDITIONAL = 2;
const PUT = 1;
const DELETE = 2;
const EXISTS = 1;
const ABSENT = 2;
const MOD_INDEX = 3;
const TWO_32 = 2 ** 32;

export function encodeCommand(command: KvCommand): Buffer {
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

/** Decodes a command; returns undefined for bytes that are not a command this version understands. */
export function decodeCommand(data: Uint8Array): KvCommand | undefined {
  if (data.length < 2 || (data[0] !== PLAIN && data[0] !== CONDITIONAL)) return undefined;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
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

/**
 * The commands the KV state machine applies, as stored in Raft log entries.
 *
 *   command := version u8 (1) | op u8 (1 put, 2 delete) | keyLength u32 LE | key (utf-8) | value (utf-8, put only)
 *
 * Binary rather than JSON: it is written once per write into the WAL and every follower's log, and decoded
 * on every node at apply time.
 */

export type KvCommand = { op: 'put'; key: string; value: string } | { op: 'delete'; key: string };

const VERSION = 1;
const PUT = 1;
const DELETE = 2;
const HEADER = 6;

export function encodeCommand(command: KvCommand): Buffer {
  const keyLength = Buffer.byteLength(command.key, 'utf8');
  const valueLength = command.op === 'put' ? Buffer.byteLength(command.value, 'utf8') : 0;
  const buf = Buffer.allocUnsafe(HEADER + keyLength + valueLength);
  buf[0] = VERSION;
  buf[1] = command.op === 'put' ? PUT : DELETE;
  buf.writeUInt32LE(keyLength, 2);
  buf.write(command.key, HEADER, keyLength, 'utf8');
  if (command.op === 'put') buf.write(command.value, HEADER + keyLength, valueLength, 'utf8');
  return buf;
}

/** Decodes a command; returns undefined for bytes that are not a command this version understands. */
export function decodeCommand(data: Uint8Array): KvCommand | undefined {
  if (data.length < HEADER || data[0] !== VERSION) return undefined;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const keyLength = buf.readUInt32LE(2);
  if (HEADER + keyLength > buf.length) return undefined;
  const key = buf.toString('utf8', HEADER, HEADER + keyLength);
  if (buf[1] === PUT) return { op: 'put', key, value: buf.toString('utf8', HEADER + keyLength) };
  if (buf[1] === DELETE && buf.length === HEADER + keyLength) return { op: 'delete', key };
  return undefined;
}

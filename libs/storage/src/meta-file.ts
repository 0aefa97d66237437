import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { isErrno, removeStaleTemp, writeFileAtomic } from './durable-fs';
import { WalCorruptionError } from './errors';

export const META_FILE = 'meta.json';

/** The node's identity record: any JSON object (the driver stores node id, cluster id, members). */
export type WalMeta = Record<string, unknown>;

/**
 * `meta.json`: two lines, `crc32=<8 lowercase hex digits>` and the metadata as one line of JSON; the
 * checksum (CRC-32, IEEE) covers the JSON line's UTF-8 bytes, without its newline. The file is only ever
 * replaced whole (writeFileAtomic), so it holds the old record or the new one, never a mix.
 */
export async function readMeta(dir: string): Promise<WalMeta | undefined> {
  const path = join(dir, META_FILE);
  await removeStaleTemp(path); // a crash during writeMeta left the old file intact; drop the half-written one
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  const match = /^crc32=([0-9a-f]{8})\n(.*)\n$/s.exec(text);
  if (!match) throw new WalCorruptionError(path, 0, 'not a metadata file (expected "crc32=…" then one JSON line)');
  if (crc32(Buffer.from(match[2], 'utf8')) !== parseInt(match[1], 16)) {
    throw new WalCorruptionError(path, 0, 'metadata checksum mismatch');
  }
  const value: unknown = JSON.parse(match[2]);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WalCorruptionError(path, 0, 'metadata is not a JSON object');
  }
  return value as WalMeta;
}

export async function writeMeta(dir: string, meta: WalMeta): Promise<void> {
  const json = JSON.stringify(meta);
  if (typeof json !== 'string' || !json.startsWith('{')) throw new TypeError('metadata must be a JSON object');
  const sum = crc32(Buffer.from(json, 'utf8')).toString(16).padStart(8, '0');
  await writeFileAtomic(join(dir, META_FILE), `crc32=${sum}\n${json}\n`);
}

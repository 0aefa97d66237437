import type { SnapshotMetadata } from '@app/consensus/core';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TempDirs } from '../../../test/support/wal-test-helpers';
import { SnapshotCorruptionError } from './errors';
import { decodeRecord, encodeRecord, RecordType } from './record';
import { encodeSnapshotFile, readSnapshotFile, SnapshotDecoder, verifySnapshotFile } from './snapshot-file';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

const META: SnapshotMetadata = { index: 1234, term: 7, confState: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] } };

/** Chunks of varied sizes, content derived from their position: empty ones, small ones, one larger than a read. */
function sampleChunks(): Buffer[] {
  const sizes = [0, 1, 17, 4096, 0, 65_536, 3, 1_500_000, 100];
  for (let k = 0; k < 200; k++) sizes.push((k * 7919) % 3000);
  return sizes.map((n, k) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (k * 31 + i * 7) & 0xff;
    return b;
  });
}

async function encodeToBuffer(metadata: SnapshotMetadata, chunks: Iterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of encodeSnapshotFile(metadata, chunks)) parts.push(b);
  return Buffer.concat(parts);
}

async function writeSample(name = 'x.snap', chunks = sampleChunks()): Promise<{ path: string; bytes: Buffer; chunks: Buffer[] }> {
  const path = join(dirs.make('snapfile-'), name);
  const bytes = await encodeToBuffer(META, chunks);
  writeFileSync(path, bytes);
  return { path, bytes, chunks };
}

async function collect(iterable: AsyncIterable<Uint8Array>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of iterable) out.push(Buffer.from(c));
  return out;
}

/** Offsets of the records of an encoded file. */
function recordOffsets(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let p = 0; p < bytes.length; ) {
    const r = decodeRecord(bytes, p);
    if (!r.ok) throw new Error(r.reason);
    out.push(p);
    p = r.end;
  }
  return out;
}

describe('snapshot file format', () => {
  it('round-trips metadata and many chunks, each handed back exactly as written', async () => {
    const { path, bytes, chunks } = await writeSample();
    expect(chunks.some((c) => c.length > 1024 * 1024)).toBe(true); // spans several reads
    const reader = await readSnapshotFile(path);
    expect(reader.metadata).toEqual(META);
    expect(reader.size).toBe(bytes.length);
    const back = await collect(reader.chunks());
    expect(back.length).toBe(chunks.length);
    expect(back.map((c) => c.toString('hex'))).toEqual(chunks.map((c) => c.toString('hex')));
    // chunks() reads the file again on each call.
    expect((await collect(reader.chunks())).length).toBe(chunks.length);
    const total = chunks.reduce((n, c) => n + c.length, 0);
    expect(await verifySnapshotFile(path)).toEqual({ ...META, size: bytes.length, chunks: chunks.length, contentBytes: total });
  });

  it('records the members\' addresses with the configuration, and reads files that have none', async () => {
    const dir = dirs.make('snapfile-');
    const withAddresses: SnapshotMetadata = {
      index: 9,
      term: 2,
      confState: { voters: ['a', 'b'], learners: ['c'], addresses: { a: 'http://127.0.0.1:1', b: 'http://b:2', c: 'http://c:3' } },
    };
    writeFileSync(join(dir, 'with.snap'), await encodeToBuffer(withAddresses, [Buffer.from('x')]));
    expect((await readSnapshotFile(join(dir, 'with.snap'))).metadata).toEqual(withAddresses);
    writeFileSync(join(dir, 'without.snap'), await encodeToBuffer({ index: 9, term: 2, confState: { voters: ['a'], addresses: {} } }, []));
    expect((await readSnapshotFile(join(dir, 'without.snap'))).metadata).toEqual({ index: 9, term: 2, confState: { voters: ['a'] } });
  });

  it('frames it as documented: header, one record per chunk, trailer', async () => {
    const bytes = await encodeToBuffer({ index: 5, term: 2, confState: { voters: ['a'] } }, [Buffer.from('xy'), Buffer.alloc(0)]);
    const types = recordOffsets(bytes).map((o) => bytes[o + 8]);
    expect(types).toEqual([RecordType.SnapshotFileHeader, RecordType.SnapshotChunk, RecordType.SnapshotChunk, RecordType.SnapshotTrailer]);
    expect(bytes.toString('latin1', 12, 16)).toBe('RSNP');
    expect(JSON.parse(bytes.toString('utf8', 20, recordOffsets(bytes)[1]))).toEqual({ index: 5, term: 2, confState: { voters: ['a'] } });
  });

  it('lets the event loop turn while it encodes a large state', async () => {
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    const chunks = Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 1));
    let records = 0;
    try {
      for await (const _ of encodeSnapshotFile(META, chunks)) records++;
    } finally {
      clearInterval(timer);
    }
    expect(records).toBe(66);
    expect(turns).toBeGreaterThan(0);
  });

  it('pulls chunks lazily, one per record', async () => {
    let pulled = 0;
    function* lazy(): Generator<Uint8Array> {
      for (let k = 0; k < 5; k++) {
        pulled++;
        yield Buffer.from([k]);
      }
    }
    const gen = encodeSnapshotFile(META, lazy());
    await gen.next(); // header
    await gen.next(); // first chunk
    expect(pulled).toBe(1);
  });

  it('detects a flipped byte anywhere, naming the file and the offset of the damaged record', async () => {
    const { path, bytes } = await writeSample('damaged.snap', sampleChunks().slice(0, 12));
    const offsets = recordOffsets(bytes);
    // A byte in the header, in a chunk's header, in a chunk's payload, in the trailer.
    const targets = [4, 16, offsets[3] + 5, offsets[4] + 12, offsets[offsets.length - 1] + 20, bytes.length - 1];
    for (const at of targets) {
      const bad = Buffer.from(bytes);
      bad[at] ^= 0x10;
      writeFileSync(path, bad);
      const err = await verifySnapshotFile(path).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SnapshotCorruptionError);
      const recordStart = offsets.filter((o) => o <= at).pop();
      expect(err).toMatchObject({ file: path, offset: recordStart });
      expect((err as Error).message).toContain(path);
    }
  });

  it('detects a file cut at any point, and a missing trailer', async () => {
    const { path, bytes } = await writeSample('cut.snap', [Buffer.from('alpha'), Buffer.from('beta'), Buffer.alloc(0)]);
    for (let len = 0; len < bytes.length; len++) {
      writeFileSync(path, bytes.subarray(0, len));
      await expect(verifySnapshotFile(path)).rejects.toBeInstanceOf(SnapshotCorruptionError);
    }
    const offsets = recordOffsets(bytes);
    writeFileSync(path, bytes.subarray(0, offsets[offsets.length - 1]));
    await expect(verifySnapshotFile(path)).rejects.toThrow(/ends without its trailer/);
    await expect(verifySnapshotFile(path)).rejects.toThrow(path);
    // A reader yields chunks before the trailer, then fails.
    const reader = await readSnapshotFile(path);
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const c of reader.chunks()) seen.push(Buffer.from(c).toString());
      })(),
    ).rejects.toBeInstanceOf(SnapshotCorruptionError);
    expect(seen).toEqual(['alpha', 'beta', '']);
  });

  it('detects chunks reordered or dropped even though every record is intact, and bytes after the trailer', async () => {
    const { path, bytes } = await writeSample('order.snap', [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')]);
    const o = recordOffsets(bytes);
    const swapped = Buffer.concat([bytes.subarray(0, o[1]), bytes.subarray(o[2], o[3]), bytes.subarray(o[1], o[2]), bytes.subarray(o[3])]);
    writeFileSync(path, swapped);
    await expect(verifySnapshotFile(path)).rejects.toThrow(/digest mismatch/);
    const dropped = Buffer.concat([bytes.subarray(0, o[1]), bytes.subarray(o[2])]);
    writeFileSync(path, dropped);
    await expect(verifySnapshotFile(path)).rejects.toThrow(/trailer counts 3 chunks, the file holds 2/);
    writeFileSync(path, Buffer.concat([bytes, Buffer.from([0])]));
    await expect(verifySnapshotFile(path)).rejects.toThrow(/bytes after the trailer/);
    writeFileSync(path, Buffer.concat([bytes, encodeRecord(RecordType.SnapshotChunk, Buffer.from('x'))]));
    await expect(verifySnapshotFile(path)).rejects.toThrow(/bytes after the trailer/);
  });

  it('rejects what is not a snapshot file', async () => {
    const path = join(dirs.make('snapfile-'), 'wal.snap');
    writeFileSync(path, encodeRecord(RecordType.HardState, Buffer.alloc(18)));
    await expect(verifySnapshotFile(path)).rejects.toThrow(/unexpected record type 3/);
    writeFileSync(path, Buffer.alloc(0));
    await expect(verifySnapshotFile(path)).rejects.toThrow(/empty file/);
    await expect(readSnapshotFile(path)).rejects.toBeInstanceOf(SnapshotCorruptionError);
  });

  it('verifies incrementally, whatever the pieces the bytes arrive in', async () => {
    const { bytes, chunks } = await writeSample('net.snap', sampleChunks().filter((c) => c.length < 10_000).slice(0, 40));
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (const maxPiece of [1, 7, 4096, 1 << 20]) {
      const decoder = new SnapshotDecoder('from-peer');
      const out: Buffer[] = [];
      for (let p = 0; p < bytes.length; ) {
        const n = 1 + rand(maxPiece);
        out.push(...decoder.push(bytes.subarray(p, p + n)));
        p += n;
      }
      expect(decoder.end()).toMatchObject({ ...META, size: bytes.length, chunks: chunks.length });
      expect(Buffer.concat(out).equals(Buffer.concat(chunks))).toBe(true);
    }
    const verifier = new SnapshotDecoder('from-peer', { chunks: false });
    expect(verifier.push(bytes.subarray(0, 1000))).toEqual([]);
    expect(() => verifier.end()).toThrow(SnapshotCorruptionError);
    const bad = Buffer.from(bytes);
    bad[200] ^= 1;
    expect(() => new SnapshotDecoder('from-peer').push(bad)).toThrow(/from-peer at byte offset/);
  });
});

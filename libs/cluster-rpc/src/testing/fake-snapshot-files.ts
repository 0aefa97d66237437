import { Message, MessageType, NodeId, SnapshotMetadata } from '@app/consensus/core';
import { IncomingSnapshotFile, SnapshotFiles } from '@app/consensus/ports';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { PEER_HEADERS, PEER_SNAPSHOT_CONTENT_TYPE, PEER_SNAPSHOT_PATH } from '../peer-protocol';

/**
 * An in-memory SnapshotFiles for the transport's tests (not exported by the library). Its "file" format is
 * made up here, self-verifying like the real one:
 *
 *   file := "SNAP" | index u32 LE | term u32 LE | payload | sha256(everything before it)
 */

const MAGIC = Buffer.from('SNAP');
const HEAD = 12;
const DIGEST = 32;

/** A file holding snapshot `index`/`term` with `payloadBytes` of content; `corrupt` flips a payload byte. */
export function fakeSnapshotFile(index: number, term: number, payloadBytes: number, options: { corrupt?: boolean } = {}): Buffer {
  const body = Buffer.alloc(HEAD + payloadBytes);
  MAGIC.copy(body, 0);
  body.writeUInt32LE(index, 4);
  body.writeUInt32LE(term, 8);
  body.fill(Buffer.from(Array.from({ length: 251 }, (_, i) => (i * 31 + index) & 0xff)), HEAD);
  const file = Buffer.concat([body, createHash('sha256').update(body).digest()]);
  if (options.corrupt) file[HEAD] ^= 0xff;
  return file;
}

/** Paces a source: awaited before each chunk is yielded (chunk 0 first). */
export type Pace = (chunk: number) => Promise<void> | undefined;

export class FakeIncomingFile implements IncomingSnapshotFile {
  readonly chunks: Buffer[] = [];
  bytes = 0;
  finished = false;
  aborted = false;

  constructor(
    private readonly confState: SnapshotMetadata['confState'],
    private readonly beforeWrite?: () => Promise<void> | undefined,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    await this.beforeWrite?.();
    if (this.finished || this.aborted) throw new Error('write after finish or abort');
    // A copy: the caller may reuse its buffer once the write resolved.
    this.chunks.push(Buffer.from(chunk));
    this.bytes += chunk.length;
  }

  async finish(): Promise<SnapshotMetadata> {
    if (this.aborted) throw new Error('finish after abort');
    const file = Buffer.concat(this.chunks);
    if (file.length < HEAD + DIGEST || !file.subarray(0, 4).equals(MAGIC)) throw new Error('not a snapshot file');
    const body = file.subarray(0, file.length - DIGEST);
    if (!createHash('sha256').update(body).digest().equals(file.subarray(file.length - DIGEST))) {
      throw new Error('checksum mismatch');
    }
    this.finished = true;
    return { index: file.readUInt32LE(4), term: file.readUInt32LE(8), confState: this.confState };
  }

  abort(): void {
    this.aborted = true;
  }

  get content(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export class FakeSnapshotFiles implements SnapshotFiles {
  private readonly files = new Map<string, { data: Buffer; pace?: Pace }>();
  readonly incoming: FakeIncomingFile[] = [];
  /** Sources whose iteration ended (read to the end, or returned early: the "file" was closed). */
  closedSources = 0;
  /** Bytes the sources have yielded so far. */
  readBytes = 0;
  /** Awaited by every write of an incoming file (a slow disk). */
  beforeWrite?: () => Promise<void> | undefined;

  constructor(
    private readonly chunkBytes = 64 * 1024,
    private readonly confState: SnapshotMetadata['confState'] = { voters: [] },
  ) {}

  add(index: number, term: number, data: Buffer, pace?: Pace): void {
    this.files.set(`${index}/${term}`, { data, pace });
  }

  openForSending(index: number, term: number): { size: number; stream: AsyncIterable<Uint8Array> } | undefined {
    const file = this.files.get(`${index}/${term}`);
    return file && { size: file.data.length, stream: this.read(file.data, file.pace) };
  }

  receive(): IncomingSnapshotFile {
    const file = new FakeIncomingFile(this.confState, () => this.beforeWrite?.());
    this.incoming.push(file);
    return file;
  }

  private async *read(data: Buffer, pace?: Pace): AsyncIterable<Uint8Array> {
    try {
      for (let offset = 0, chunk = 0; offset < data.length; offset += this.chunkBytes, chunk++) {
        await pace?.(chunk);
        const bytes = data.subarray(offset, offset + this.chunkBytes);
        this.readBytes += bytes.length;
        yield bytes;
      }
    } finally {
      this.closedSources++;
    }
  }
}

/** A MsgSnap as the leader's core emits it: metadata only, empty data. */
export function msgSnap(from: NodeId, to: NodeId, index: number, term = 2): Message {
  return {
    type: MessageType.MsgSnap,
    from,
    to,
    term,
    logTerm: 0,
    index: 0,
    commit: 0,
    reject: false,
    rejectHint: 0,
    snapshot: { metadata: { index, term, confState: { voters: [from, to] } }, data: new Uint8Array(0) },
  };
}

/** A gate a paced source waits on: closed until open() is called. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/**
 * Posts `body` to a node's snapshot route as peer `from` of cluster `c1` (one connection, no agent), with
 * extra headers (a token) and a local address if given, and resolves with the answer.
 */
export function postSnapshotRoute(
  url: string,
  from: NodeId,
  body: Buffer,
  options: { headers?: Record<string, string>; localAddress?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${PEER_SNAPSHOT_PATH}`, {
      method: 'POST',
      agent: false,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      headers: {
        'content-type': PEER_SNAPSHOT_CONTENT_TYPE,
        ...options.headers,
        [PEER_HEADERS.from]: from,
        [PEER_HEADERS.clusterId]: 'c1',
      },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

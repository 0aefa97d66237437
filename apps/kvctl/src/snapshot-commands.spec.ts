import type { SnapshotMetadata } from '@app/consensus/core';
import { encodeSnapshotFile, Wal } from '@app/storage';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvClient } from './kv-client';
import { ExitCode } from './kvctl-error';
import { formatSnapshotReport, restoreSnapshot, saveSnapshot, snapshotStatus } from './snapshot-commands';
import { failure } from '../../../test/support/kvctl-fake-node';

const META: SnapshotMetadata = { index: 42, term: 3, confState: { voters: ['http://a:1', 'http://b:2', 'http://c:3'] } };
const CHUNKS = [Buffer.from('first chunk'), Buffer.alloc(200_000, 7), Buffer.from('last')];

async function fileBytes(meta = META, chunks: Uint8Array[] = CHUNKS): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of encodeSnapshotFile(meta, chunks)) parts.push(part);
  return Buffer.concat(parts);
}

let dir: string;
const servers: Server[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kvctl-snapshot-'));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((ok) => s.close(ok))));
  rmSync(dir, { recursive: true, force: true });
});

/** A node that answers GET /cluster/snapshot with `handler`. */
async function node(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Serves `bytes` as the leader does: headers first, then the body in pieces. */
function serve(bytes: Buffer, headers: Record<string, string> = {}) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'x-snapshot-index': String(META.index),
      'x-snapshot-term': String(META.term),
      'x-snapshot-keys': '17',
      ...headers,
    });
    res.write(bytes.subarray(0, 100));
    setTimeout(() => res.end(bytes.subarray(100)), 20);
  };
}

const client = (url: string, timeoutMs = 2000) => new KvClient({ endpoints: [url], timeoutMs });

describe('saveSnapshot', () => {
  it("follows a follower's redirect, streams the leader's file to disk, verifies it and reports it", async () => {
    const bytes = await fileBytes();
    const leader = await node(serve(bytes));
    const follower = await node((req, res) => {
      res.writeHead(307, { location: `${leader}${req.url}`, 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'Not leader', leader: 'node2', leaderUrl: leader }));
    });
    const file = join(dir, 'backup.snap');
    const report = await saveSnapshot(client(follower), file, { force: false });
    expect(readFileSync(file).equals(bytes)).toBe(true);
    expect(existsSync(`${file}.tmp`)).toBe(false);
    expect(report).toEqual({
      file,
      index: 42,
      term: 3,
      keys: 17,
      members: META.confState.voters,
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      chunks: 3,
      contentBytes: 200_015,
      verified: true,
    });
    expect(formatSnapshotReport(report)).toContain(`index    42\nterm     3\nkeys     17\nmembers  http://a:1, http://b:2, http://c:3\nsize     ${bytes.length} bytes\n`);
  });

  it('refuses to replace an existing file unless forced, without asking the node', async () => {
    let asked = 0;
    const url = await node((req, res) => {
      asked++;
      serve(Buffer.alloc(0))(req, res);
    });
    const file = join(dir, 'backup.snap');
    writeFileSync(file, 'previous backup');
    const error = await failure(saveSnapshot(client(url), file, { force: false }));
    expect(error).toMatchObject({ exitCode: ExitCode.Usage, message: expect.stringContaining('already exists') });
    expect(asked).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('previous backup');
  });

  it('replaces it with --force', async () => {
    const bytes = await fileBytes();
    const file = join(dir, 'backup.snap');
    writeFileSync(file, 'previous backup');
    await saveSnapshot(client(await node(serve(bytes))), file, { force: true });
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it('keeps nothing when the download is damaged or cut short (exit 1)', async () => {
    const bytes = await fileBytes();
    const flipped = Buffer.from(bytes);
    flipped[150] ^= 0xff;
    const file = join(dir, 'backup.snap');
    for (const body of [flipped, bytes.subarray(0, bytes.length - 10)]) {
      const error = await failure(saveSnapshot(client(await node(serve(body))), file, { force: false }));
      expect(error.exitCode).toBe(ExitCode.Failed);
      expect(error.message).toMatch(/^the snapshot downloaded from http:\/\/127\.0\.0\.1:\d+ is damaged \(nothing was saved\): snapshot file damaged: /);
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  it('refuses a file whose index is not the one the node announced', async () => {
    const url = await node(serve(await fileBytes(), { 'x-snapshot-index': '41' }));
    const error = await failure(saveSnapshot(client(url), join(dir, 'backup.snap'), { force: false }));
    expect(error.message).toContain('is at index 42, its headers said 41');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('gives up on a download that stalls, and removes the partial file', async () => {
    const url = await node((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(10));
      // ... and nothing more.
    });
    const error = await failure(saveSnapshot(client(url, 300), join(dir, 'backup.snap'), { force: false }));
    expect(error).toMatchObject({ exitCode: ExitCode.Failed, message: expect.stringMatching(/stalled: no data for 300 ms$/) });
    expect(readdirSync(dir)).toEqual([]);
  });

  it("reports the node's refusal (401) with exit code 1", async () => {
    const url = await node((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'Missing or unknown API token: send Authorization: Bearer <token> (API_TOKENS_FILE)' }));
    });
    const error = await failure(saveSnapshot(client(url), join(dir, 'backup.snap'), { force: false }));
    expect(error).toMatchObject({ exitCode: ExitCode.Failed, message: expect.stringContaining('answered 401: Missing or unknown API token') });
  });
});

describe('snapshotStatus', () => {
  it('verifies a file and reports it; a damaged one is exit 1, a missing one exit 2', async () => {
    const bytes = await fileBytes();
    const file = join(dir, 'backup.snap');
    writeFileSync(file, bytes);
    await expect(snapshotStatus(file)).resolves.toMatchObject({ index: 42, term: 3, size: bytes.length, chunks: 3, verified: true });
    bytes[bytes.length - 5] ^= 1;
    writeFileSync(file, bytes);
    expect(await failure(snapshotStatus(file))).toMatchObject({ exitCode: ExitCode.Failed, message: expect.stringMatching(/^snapshot file damaged: .* at byte offset \d+: /) });
    expect(await failure(snapshotStatus(join(dir, 'nope.snap')))).toMatchObject({ exitCode: ExitCode.Usage });
  });
});

describe('restoreSnapshot', () => {
  const quiet = () => undefined;

  it('makes a data directory whose log starts after the snapshot, with no configuration recorded', async () => {
    const file = join(dir, 'backup.snap');
    writeFileSync(file, await fileBytes());
    const walDir = join(dir, 'restored', 'node1');
    const report = await restoreSnapshot(file, { walDir, nodeId: 'node1' }, quiet);
    expect(report).toEqual({ file, walDir, nodeId: 'node1', index: 42, term: 3, snapshotMembers: META.confState.voters });
    const wal = await Wal.open(walDir, { logger: { log: quiet, warn: quiet, error: quiet } });
    try {
      expect(wal.storage.initialState()).toEqual({ hardState: { term: 3, vote: '', commit: 42 }, confState: { voters: [] } });
      expect(wal.storage.firstIndex()).toBe(43);
    } finally {
      await wal.close();
    }
  });

  it("reports the snapshot's members, and records no configuration: the new nodes' own members apply", async () => {
    const file = join(dir, 'backup.snap');
    writeFileSync(file, await fileBytes());
    const report = await restoreSnapshot(file, { walDir: join(dir, 'd'), nodeId: 'n' }, quiet);
    expect(report).toMatchObject({ snapshotMembers: META.confState.voters });
    const wal = await Wal.open(join(dir, 'd'));
    try {
      expect(wal.storage.initialState().confState.voters).toEqual([]);
    } finally {
      await wal.close();
    }
  });

  it('refuses a directory that is not empty (exit 2), a damaged file (exit 1), bad arguments (exit 2)', async () => {
    const file = join(dir, 'backup.snap');
    const bytes = await fileBytes();
    writeFileSync(file, bytes);
    const busy = join(dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'x'), 'x');
    expect(await failure(restoreSnapshot(file, { walDir: busy, nodeId: 'node1' }, quiet))).toMatchObject({
      exitCode: ExitCode.Usage,
      message: `refusing to restore into ${busy}: the directory is not empty (1 entries). Restore into a new or empty directory; never over a member's existing data.`,
    });
    expect(readdirSync(busy)).toEqual(['x']);

    bytes[200] ^= 1;
    writeFileSync(file, bytes);
    const fresh = join(dir, 'fresh');
    expect(await failure(restoreSnapshot(file, { walDir: fresh, nodeId: 'node1' }, quiet))).toMatchObject({ exitCode: ExitCode.Failed });
    expect(existsSync(fresh)).toBe(false);

    expect(await failure(restoreSnapshot(file, { walDir: fresh, nodeId: 'no spaces' }, quiet))).toMatchObject({ exitCode: ExitCode.Usage });
  });
});

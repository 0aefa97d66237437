import { Logger } from '@nestjs/common';
import { EntryType, Message, MessageType } from '@app/consensus/core';
import { SnapshotFiles } from '@app/consensus/ports';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { ClusterRpcOptions } from './cluster-rpc.options';
import { FRAME_HEADER, sealFrame } from './frame';
import { HttpPeerTransport } from './http-peer-transport';
import { encodeMessages } from './message-codec';
import { PEER_STREAM_PATH } from './peer-protocol';
import { fakeSnapshotFile, FakeSnapshotFiles, gate, msgSnap, postSnapshotRoute } from './testing/fake-snapshot-files';
import { testTransport } from './testing/test-transport';

/**
 * Snapshot transfers between two transports over real HTTP on loopback. The receiving transport is served by a
 * plain Node server doing what PeerController does (admit, then serve the stream or receive the snapshot), and
 * both sides use an in-memory SnapshotFiles, so these tests exercise the wire, the flow control, the outcomes
 * reported to the core and the cleanup on every failure, without Nest.
 */

const SENDER = 'http://sender';
const MB = 1024 * 1024;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(handler: Handler, port = 0): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

const eventually = async (what: string, probe: () => boolean, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What PeerController does, minus Nest. */
function serveWith(receiver: HttpPeerTransport): Handler {
  return (req, res) => {
    const admitted = receiver.admit(req.headers);
    if ('status' in admitted) {
      res.writeHead(admitted.status, { connection: 'close' }).end(JSON.stringify({ error: admitted.error }));
      return;
    }
    if (req.url === PEER_STREAM_PATH) {
      receiver.serve(admitted.from, req, res);
      return;
    }
    void receiver.receiveSnapshot(admitted.from, req).then((answer) => {
      if (res.destroyed) return;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.status === 200 ? {} : { connection: 'close' }) });
      res.end(JSON.stringify(answer.body));
    });
  };
}

const append = (to: string, i: number): Message => ({
  type: MessageType.MsgApp,
  from: SENDER,
  to,
  term: 2,
  logTerm: 2,
  index: i,
  commit: i,
  reject: false,
  rejectHint: 0,
  entries: [{ term: 2, index: i + 1, type: EntryType.Normal, data: Buffer.from(`entry-${i}`) }],
});

interface Side {
  files?: SnapshotFiles;
  options?: Partial<ClusterRpcOptions> & { clusterId?: string };
}

describe('snapshot transfers between HttpPeerTransports', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  let warnings: string[];
  let errors: string[];
  beforeEach(() => {
    warnings = [];
    errors = [];
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((m: unknown) => void warnings.push(String(m)));
    jest.spyOn(Logger.prototype, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    jest.restoreAllMocks();
  });

  /** A receiving transport on a real port and a sender whose only peer it is, each with its own registry. */
  async function pair(sender: Side = {}, receiver: Side = {}) {
    let server = await listen(() => undefined);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await close(server);
    const receiverRegistry = new Registry();
    // Each member's NODE_ID is its URL here, for brevity (the receiver's is the URL it listens at).
    const rx = testTransport({
      nodeId: url,
      peers: { [SENDER]: SENDER },
      ...receiver.options,
      metrics: new ClusterRpcMetrics(receiverRegistry),
      files: receiver.files,
    });
    const received: Message[] = [];
    /** How many file bytes the receiving side had verified when each MsgSnap reached the node. */
    const verifiedAtDelivery: number[] = [];
    rx.listen((messages) => {
      for (const m of messages) {
        received.push(m);
        if (m.type === MessageType.MsgSnap && receiver.files instanceof FakeSnapshotFiles) {
          const file = receiver.files.incoming[receiver.files.incoming.length - 1];
          verifiedAtDelivery.push(file.finished ? file.bytes : -1);
        }
      }
    });
    server = await listen(serveWith(rx), Number(new URL(url).port));
    const senderRegistry = new Registry();
    const tx = testTransport({
      nodeId: SENDER,
      peers: { [url]: url },
      ...sender.options,
      metrics: new ClusterRpcMetrics(senderRegistry),
      files: sender.files,
    });
    const statuses: boolean[] = [];
    tx.onSnapshotStatus((peer, failed) => {
      expect(peer).toBe(url);
      statuses.push(failed);
    });
    cleanups.push(() => tx.onModuleDestroy(), () => rx.onModuleDestroy(), () => close(server));
    const snaps = () => received.filter((m) => m.type === MessageType.MsgSnap);
    const metric = async (registry: Registry, name: string, labels: Record<string, string> = {}) => {
      const values = (await registry.getSingleMetric(name)!.get()).values;
      return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
    };
    return {
      url,
      tx,
      rx,
      server,
      received,
      snaps,
      statuses,
      verifiedAtDelivery,
      sent: (name: string, labels?: Record<string, string>) => metric(senderRegistry, name, labels),
      got: (name: string, labels?: Record<string, string>) => metric(receiverRegistry, name, labels),
    };
  }

  it('delivers a multi-megabyte snapshot: the MsgSnap reaches the node once the whole file is verified, success is reported once', async () => {
    const source = new FakeSnapshotFiles();
    const file = fakeSnapshotFile(10, 2, 8 * MB);
    source.add(10, 2, file);
    const target = new FakeSnapshotFiles();
    const { url, tx, snaps, statuses, verifiedAtDelivery, sent, got } = await pair({ files: source }, { files: target });

    tx.send([msgSnap(SENDER, url, 10)]);
    await eventually('the outcome', () => statuses.length > 0, 10_000);
    await sleep(50);

    expect(statuses).toEqual([false]);
    expect(snaps()).toHaveLength(1);
    expect(snaps()[0]).toMatchObject({ from: SENDER, to: url, term: 2, snapshot: { metadata: { index: 10, term: 2 } } });
    expect(verifiedAtDelivery).toEqual([file.length]);
    expect(target.incoming).toHaveLength(1);
    expect(target.incoming[0].content.equals(file)).toBe(true);
    expect(target.incoming[0].aborted).toBe(false);
    expect(source.closedSources).toBe(1);
    expect(await sent('raftkv_peer_snapshots_sent_total', { outcome: 'ok' })).toBe(1);
    expect(await sent('raftkv_peer_snapshot_sent_bytes_total')).toBe(file.length);
    expect(await got('raftkv_peer_snapshots_received_total', { outcome: 'ok' })).toBe(1);
    expect(await got('raftkv_peer_snapshot_received_bytes_total')).toBe(file.length);
  });

  it('keeps the message stream flowing while a slow transfer is in flight, and never reports from within send()', async () => {
    const source = new FakeSnapshotFiles(16 * 1024);
    const slow = gate();
    // The first chunk goes at once, the rest only when the test opens the gate.
    source.add(10, 2, fakeSnapshotFile(10, 2, MB), (chunk) => (chunk === 0 ? undefined : slow.wait));
    const target = new FakeSnapshotFiles();
    const { url, tx, received, snaps, statuses } = await pair({ files: source }, { files: target });

    tx.send([append(url, 0), msgSnap(SENDER, url, 10), append(url, 1)]);
    expect(statuses).toEqual([]);
    await eventually('the first chunk to arrive', () => (target.incoming[0]?.bytes ?? 0) > 0);
    for (let i = 2; i < 50; i++) {
      tx.send([append(url, i)]);
      if (i % 10 === 0) await sleep(5);
    }
    await eventually('every append', () => received.filter((m) => m.type === MessageType.MsgApp).length === 50);
    expect(received.filter((m) => m.type === MessageType.MsgApp).map((m) => m.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(statuses).toEqual([]);
    expect(snaps()).toHaveLength(0);

    slow.open();
    await eventually('the transfer to finish', () => statuses.length > 0);
    expect(statuses).toEqual([false]);
    expect(snaps()).toHaveLength(1);
  });

  it('reads the file only as fast as the receiver writes it: a slow disk holds the sender back through TCP', async () => {
    const source = new FakeSnapshotFiles();
    const file = fakeSnapshotFile(10, 2, 32 * MB);
    source.add(10, 2, file);
    const target = new FakeSnapshotFiles();
    const disk = gate();
    target.beforeWrite = () => ((target.incoming[0]?.bytes ?? 0) > 0 ? disk.wait : undefined);
    const { url, tx, statuses } = await pair({ files: source }, { files: target });

    tx.send([msgSnap(SENDER, url, 10)]);
    await eventually('the first write', () => (target.incoming[0]?.bytes ?? 0) > 0);
    // Once the socket buffers on both sides are full, the source is no longer read.
    let read = -1;
    let since = Date.now();
    await eventually('the source to stop being read', () => {
      if (source.readBytes !== read) [read, since] = [source.readBytes, Date.now()];
      return Date.now() - since >= 200;
    });
    expect(read).toBeLessThan(file.length / 2);
    expect(statuses).toEqual([]);

    disk.open();
    await eventually('the outcome', () => statuses.length > 0, 10_000);
    expect(statuses).toEqual([false]);
    expect(target.incoming[0].content.equals(file)).toBe(true);
    // 32 MB through a deliberately slow receiver: seconds by design.
  }, 30_000);

  it.each([
    ['the sender stops', (p: { tx: HttpPeerTransport }) => p.tx.onModuleDestroy()],
    ['the receiver drops the connection', (p: { server: Server }) => p.server.closeAllConnections()],
  ])('a transfer cut mid-way when %s is reported failed once, and the receiver aborts its file', async (_name, cut) => {
    const source = new FakeSnapshotFiles(16 * 1024);
    const never = gate();
    source.add(10, 2, fakeSnapshotFile(10, 2, MB), (chunk) => (chunk < 4 ? undefined : never.wait));
    const target = new FakeSnapshotFiles();
    const p = await pair({ files: source }, { files: target });

    p.tx.send([msgSnap(SENDER, p.url, 10)]);
    await eventually('some bytes to arrive', () => (target.incoming[0]?.bytes ?? 0) > 0);
    cut(p as never);
    await eventually('the failure', () => p.statuses.length > 0);
    await eventually('the incoming file to be aborted', () => target.incoming[0].aborted);
    never.open();
    await sleep(50);

    expect(p.statuses).toEqual([true]);
    expect(target.incoming[0].finished).toBe(false);
    expect(warnings.some((w) => w.startsWith(`receiving a snapshot from ${SENDER} failed: the transfer was cut after`))).toBe(true);
    expect(p.snaps()).toHaveLength(0);
    expect(source.closedSources).toBe(1);
  });

  it('a transfer that makes no progress for the stall timeout is cut and reported failed', async () => {
    const source = new FakeSnapshotFiles(16 * 1024);
    const never = gate();
    source.add(10, 2, fakeSnapshotFile(10, 2, MB), (chunk) => (chunk === 0 ? undefined : never.wait));
    const target = new FakeSnapshotFiles();
    const { url, tx, statuses, sent } = await pair({ files: source, options: { snapshotStallTimeoutMs: 200 } }, { files: target });

    const started = Date.now();
    tx.send([msgSnap(SENDER, url, 10)]);
    await eventually('the stall to be noticed', () => statuses.length > 0, 3000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(statuses).toEqual([true]);
    await eventually('the incoming file to be aborted', () => target.incoming[0]?.aborted === true);
    expect(warnings.some((w) => w.includes('no progress for 200 ms'))).toBe(true);
    expect(await sent('raftkv_peer_snapshots_sent_total', { outcome: 'failed' })).toBe(1);
    never.open();
  });

  it('reports failed, without a request, when the snapshot file no longer exists', async () => {
    const target = new FakeSnapshotFiles();
    const { url, tx, statuses, sent } = await pair({ files: new FakeSnapshotFiles() }, { files: target });
    tx.send([msgSnap(SENDER, url, 10)]);
    expect(statuses).toEqual([]);
    await eventually('the outcome', () => statuses.length > 0);
    await sleep(50);
    expect(statuses).toEqual([true]);
    expect(target.incoming).toHaveLength(0);
    expect(await sent('raftkv_peer_snapshots_sent_total', { outcome: 'unavailable' })).toBe(1);
  });

  it.each([
    ['a file that fails verification', fakeSnapshotFile(10, 2, 300_000, { corrupt: true }), /failed verification: checksum mismatch/],
    ['a file of another snapshot than the MsgSnap announces', fakeSnapshotFile(9, 2, 300_000), /holds snapshot 9 \(term 2\), the MsgSnap announced 10/],
  ])('%s is refused with 400, the file aborted, nothing delivered, and the sender reports failed', async (_name, file, problem) => {
    const source = new FakeSnapshotFiles();
    source.add(10, 2, file);
    const target = new FakeSnapshotFiles();
    const { url, tx, statuses, snaps, got } = await pair({ files: source }, { files: target });

    tx.send([msgSnap(SENDER, url, 10)]);
    await eventually('the outcome', () => statuses.length > 0);
    expect(statuses).toEqual([true]);
    expect(target.incoming[0].aborted).toBe(true);
    expect(snaps()).toHaveLength(0);
    expect(warnings.some((w) => w.includes('(400)') && problem.test(w))).toBe(true);
    expect(errors.some((e) => problem.test(e))).toBe(true);
    expect(await got('raftkv_peer_snapshots_received_total', { outcome: 'invalid' })).toBe(1);
  });

  it('a second MsgSnap to the same peer aborts the transfer in flight (not reported: the core waits for the newer), and succeeds itself', async () => {
    const source = new FakeSnapshotFiles(16 * 1024);
    const never = gate();
    source.add(10, 2, fakeSnapshotFile(10, 2, MB), (chunk) => (chunk < 2 ? undefined : never.wait));
    source.add(12, 2, fakeSnapshotFile(12, 2, 2 * MB));
    const target = new FakeSnapshotFiles();
    const { url, tx, statuses, snaps, sent } = await pair({ files: source }, { files: target });

    tx.send([msgSnap(SENDER, url, 10)]);
    await eventually('the first transfer to start', () => (target.incoming[0]?.bytes ?? 0) > 0);
    tx.send([msgSnap(SENDER, url, 12)]);
    await eventually('the outcome of the second', () => statuses.length === 1);
    await eventually('the first incoming file to be aborted', () => target.incoming[0].aborted);
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(statuses).toEqual([false]);
    expect(snaps().map((m) => m.snapshot!.metadata.index)).toEqual([12]);
    expect(target.incoming).toHaveLength(2);
    expect(target.incoming[1].finished).toBe(true);
    expect(await sent('raftkv_peer_snapshots_sent_total', { outcome: 'aborted' })).toBe(1);
    expect(await sent('raftkv_peer_snapshots_sent_total', { outcome: 'ok' })).toBe(1);
    // The first source is closed once its pending read returns.
    never.open();
    await eventually('both sources to be closed', () => source.closedSources === 2);
  });

  it('without snapshot storage, sending reports failed with an error log and receiving answers 503', async () => {
    const alone = await pair();
    alone.tx.send([msgSnap(SENDER, alone.url, 10)]);
    await eventually('the outcome', () => alone.statuses.length > 0);
    expect(alone.statuses).toEqual([true]);
    expect(errors.some((e) => e.includes('no snapshot storage (SNAPSHOT_FILES) is bound'))).toBe(true);

    const source = new FakeSnapshotFiles();
    source.add(10, 2, fakeSnapshotFile(10, 2, 100_000));
    const p = await pair({ files: source });
    p.tx.send([msgSnap(SENDER, p.url, 10)]);
    await eventually('the outcome', () => p.statuses.length > 0);
    expect(p.statuses).toEqual([true]);
    expect(warnings.some((w) => w.includes('(503)') && w.includes('no snapshot storage'))).toBe(true);
    expect(await p.got('raftkv_peer_snapshots_received_total', { outcome: 'failed' })).toBe(1);
  });

  it('refuses a sender from another cluster before a byte of the file is written', async () => {
    const source = new FakeSnapshotFiles();
    source.add(10, 2, fakeSnapshotFile(10, 2, 100_000));
    const target = new FakeSnapshotFiles();
    const { url, tx, statuses } = await pair({ files: source, options: { clusterId: 'other' } }, { files: target });
    tx.send([msgSnap(SENDER, url, 10)]);
    await eventually('the outcome', () => statuses.length > 0);
    expect(statuses).toEqual([true]);
    expect(target.incoming).toHaveLength(0);
  });

  describe('a leading frame that is not the sender\'s MsgSnap to this node', () => {
    /** Posts `body` as SENDER to the receiver and returns the answer. */
    const post = (url: string, body: Buffer) => postSnapshotRoute(url, SENDER, body);
    const frame = (messages: Message[]) => sealFrame(encodeMessages(messages, FRAME_HEADER));
    /** What follows the frame in a transfer: the file. */
    const withFile = (head: Buffer) => Buffer.concat([head, fakeSnapshotFile(10, 2, 1000)]);

    it.each<[string, (url: string) => Buffer, RegExp]>([
      ['a MsgSnap from another member', (url) => withFile(frame([msgSnap('http://other', url, 10)])), /MsgSnap from http:\/\/other/],
      ['a MsgSnap to another node', () => withFile(frame([msgSnap(SENDER, 'http://elsewhere', 10)])), /does not match the sender and recipient/],
      ['another message type', (url) => withFile(frame([append(url, 1)])), /expected one MsgSnap, got MsgApp/],
      ['two messages', (url) => withFile(frame([msgSnap(SENDER, url, 10), msgSnap(SENDER, url, 11)])), /expected one MsgSnap, got MsgSnap, MsgSnap/],
      ['a frame that is not a message batch', () => withFile(sealFrame(Buffer.from('\0\0\0\0garbage'))), /invalid message batch/],
      ['an oversized frame header', () => withFile(Buffer.from([0xff, 0xff, 0xff, 0x7f])), /leading frame of \d+ bytes exceeds/],
      ['a body that ends inside the frame', (url) => frame([msgSnap(SENDER, url, 10)]).subarray(0, 20), /ended before its leading frame/],
    ])('%s is answered 400 before any file is opened', async (_name, body, problem) => {
      const target = new FakeSnapshotFiles();
      const { url, snaps } = await pair({}, { files: target });
      const answer = await post(url, body(url));
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body).error).toMatch(problem);
      expect(target.incoming).toHaveLength(0);
      expect(snaps()).toHaveLength(0);
    });
  });
});

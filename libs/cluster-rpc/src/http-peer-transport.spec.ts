import { EntryType, Message, MessageType } from '@app/consensus/core';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ClusterRpcMetrics } from './cluster-rpc.metrics';
import { ClusterRpcOptions } from './cluster-rpc.options';
import { HttpPeerTransport } from './http-peer-transport';
import { PEER_STREAM_PATH } from './peer-protocol';
import { testTransport } from './testing/test-transport';

/**
 * Two transports talking over real HTTP on loopback: the receiving one is served by a plain Node server that
 * does what PeerController does (admit, then serve), so these tests exercise the wire, the framing, the
 * stall detection and the reconnection without Nest. Here each member's NODE_ID is its URL, for brevity
 * (the transport only compares ids); http-peer-transport.peers.spec.ts covers ids that are not URLs.
 */

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(handler: Handler, port = 0): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

function urlOf(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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

function transport(options: Partial<ClusterRpcOptions> & { self: string; peers: string[]; clusterId?: string; metrics?: ClusterRpcMetrics }): HttpPeerTransport {
  const { self, peers, ...rest } = options;
  return testTransport({
    stallTimeoutMs: 400,
    ...rest,
    nodeId: self,
    peers: Object.fromEntries(peers.map((url) => [url, url])),
    limits: { minBackoffMs: 10, maxBackoffMs: 50, ...options.limits },
  });
}

/** What PeerController does with a stream request, minus Nest. */
function serveWith(receiver: HttpPeerTransport): Handler {
  return (req, res) => {
    if (req.url !== PEER_STREAM_PATH) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const admitted = receiver.admit(req.headers);
    if ('status' in admitted) {
      res.statusCode = admitted.status;
      res.end(JSON.stringify({ error: admitted.error }));
      return;
    }
    receiver.serve(admitted.from, req, res);
  };
}

const message = (from: string, to: string, i: number): Message => ({
  type: MessageType.MsgApp,
  from,
  to,
  term: 3,
  logTerm: 3,
  index: i,
  commit: i,
  reject: false,
  rejectHint: 0,
  entries: [{ term: 3, index: i + 1, type: EntryType.Normal, data: Buffer.from(`entry-${i}`) }],
});

describe('HttpPeerTransport over real streams', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A receiver on a real port, and a sender whose only peer is it. */
  async function pair(senderOptions: Partial<ClusterRpcOptions> & { clusterId?: string } = {}, receiverOptions: Partial<ClusterRpcOptions> = {}) {
    let server = await listen(() => undefined);
    const url = urlOf(server);
    await close(server);
    const receiver = transport({ self: url, peers: ['http://sender'], ...receiverOptions });
    const received: Message[] = [];
    receiver.listen((messages) => received.push(...messages));
    server = await listen(serveWith(receiver), Number(new URL(url).port));
    const sender = transport({ self: 'http://sender', peers: [url], ...senderOptions });
    const lost: string[] = [];
    sender.onUnreachable((peer) => lost.push(peer));
    cleanups.push(() => sender.onModuleDestroy(), () => receiver.onModuleDestroy(), () => close(server));
    /** Stops the receiving server (dropping its connections) and starts a new one on the same port. */
    const restart = async () => {
      await close(server);
      server = await listen(serveWith(receiver), Number(new URL(url).port));
    };
    return { url, sender, receiver, received, lost, restart };
  }

  it('delivers every message, in order and intact, across many sends of every size', async () => {
    const { url, sender, received } = await pair();
    let i = 0;
    for (let round = 0; round < 200; round++) {
      const batch = Array.from({ length: round % 7 }, () => message('http://sender', url, i++));
      sender.send(batch);
      if (round % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await eventually('every message', () => received.length === i);
    expect(received.map((m) => m.index)).toEqual(Array.from({ length: i }, (_, k) => k));
    expect(received.every((m) => Buffer.from(m.entries![0].data).toString() === `entry-${m.index}`)).toBe(true);
  });

  it('refuses a stream from another cluster', async () => {
    const { url, sender, received, lost } = await pair({ clusterId: 'other' });
    sender.send([message('http://sender', url, 1)]);
    await eventually('the refusal to be reported', () => lost.length > 0);
    expect(received).toHaveLength(0);
  });

  it('tears down a stream the peer never answers, and reports the peer unreachable', async () => {
    const requests: IncomingMessage[] = [];
    const silent = await listen((req) => requests.push(req));
    cleanups.push(() => close(silent));
    const sender = transport({ self: 'http://sender', peers: [urlOf(silent)], stallTimeoutMs: 200 });
    const lost: string[] = [];
    sender.onUnreachable((peer) => lost.push(peer));
    cleanups.push(() => sender.onModuleDestroy());
    sender.send([message('http://sender', urlOf(silent), 1)]);
    await eventually('the stall to be noticed', () => lost.length > 0, 3000);
    // It tries again: another send opens another stream.
    sender.send([message('http://sender', urlOf(silent), 2)]);
    await eventually('a second attempt', () => requests.length >= 2, 3000);
  });

  it('reconnects when the peer restarts, and delivers again', async () => {
    const { url, sender, received, lost, restart } = await pair();
    sender.send([message('http://sender', url, 1)]);
    await eventually('the first message', () => received.length === 1);
    await restart();
    await eventually('the loss to be noticed', () => lost.length > 0);
    // Raft retransmits: keep sending until a message gets through the new stream.
    let n = 2;
    await eventually('a message through the new stream', () => {
      sender.send([message('http://sender', url, n++)]);
      return received.length > 1;
    });
    expect(received[received.length - 1].index).toBeGreaterThan(1);
  });

  it('bounds what waits while a stream cannot open', async () => {
    const silent = await listen(() => undefined);
    cleanups.push(() => close(silent));
    const registry = new Registry();
    const sender = testTransport({
      nodeId: 'http://sender',
      peers: { [urlOf(silent)]: urlOf(silent) },
      stallTimeoutMs: 10_000,
      limits: { maxQueuedMessages: 100 },
      metrics: new ClusterRpcMetrics(registry),
    });
    cleanups.push(() => sender.onModuleDestroy());
    sender.send(Array.from({ length: 250 }, (_, i) => message('http://sender', urlOf(silent), i)));
    const dropped = (await registry.getSingleMetric('raftkv_peer_dropped_messages_total')!.get()).values[0]?.value;
    expect(dropped).toBe(150);
  });

  it('a newer stream from the same sender replaces the older one', async () => {
    const { url, receiver, received } = await pair();
    const a = transport({ self: 'http://sender', peers: [url] });
    const b = transport({ self: 'http://sender', peers: [url] });
    const lost: string[] = [];
    a.onUnreachable((peer) => lost.push(peer));
    cleanups.push(() => a.onModuleDestroy(), () => b.onModuleDestroy());
    a.send([message('http://sender', url, 1)]);
    await eventually('the first stream', () => received.length === 1);
    b.send([message('http://sender', url, 2)]);
    await eventually('the second stream', () => received.length === 2);
    // The first stream was closed by the receiver: its sender notices and would reconnect.
    await eventually('the first sender to lose its stream', () => lost.length > 0);
    expect((receiver as unknown as { inbound: Map<string, unknown> }).inbound.size).toBe(1);
  });
});

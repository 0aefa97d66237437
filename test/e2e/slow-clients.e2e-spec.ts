/**
 * A slow or idle client cannot hold a node: a body that trickles is answered 408 and cut off after
 * BODY_TIMEOUT_MS, headers that never end are cut off after HEADERS_TIMEOUT_MS, thousands of idle or
 * trickling connections leave room for everyone else, a follower whose MAX_CONNECTIONS are all taken keeps its
 * peer streams (and so replicates) and serves again once the idle ones are cut off, and the peer streams
 * (endless requests on the same port) are never timed out.
 * Raw `net` sockets play the slow clients; each test ends the sockets it opened.
 */
import { connect, Socket } from 'node:net';
import { ClusterNode, eventually, http, LocalCluster, sleep } from '../support/local-cluster';

jest.setTimeout(120_000);

const BODY_TIMEOUT_MS = 1000;
const HEADERS_TIMEOUT_MS = 1000;
/** A generous bound on being cut off: the timeout plus Node's check interval plus a slow shared machine. */
const CUT_OFF_WITHIN_MS = 10_000;

interface RawClient {
  socket: Socket;
  received: () => string;
  /** Resolves with the milliseconds from `since` to the close. */
  closed: Promise<number>;
}

function rawClient(node: ClusterNode, since = Date.now()): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(node.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8').on('data', (d: string) => (text += d));
    socket.on('error', () => undefined); // a reset after the answer is a way of being cut off too
    const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now() - since)));
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

async function servesPromptly(node: ClusterNode, key: string): Promise<void> {
  expect((await http('GET', `${node.url}/status`, undefined, { timeoutMs: 5000 })).status).toBe(200);
  expect((await http('PUT', `${node.url}/kv/${key}`, { value: key }, { timeoutMs: 5000 })).status).toBe(200);
}

describe('a single node with small timeouts', () => {
  let cluster: LocalCluster;
  let node: ClusterNode;

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      nodes: 1,
      env: { BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS), HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS) },
    });
    node = await cluster.waitForLeader();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('answers 408 to a body trickled one byte per second and closes the connection, serving others meanwhile', async () => {
    const body = JSON.stringify({ value: 'trickled slowly' });
    const started = Date.now();
    const client = await rawClient(node, started);
    client.socket.write(
      `PUT /kv/trickle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    let sent = 0;
    const trickle = setInterval(() => {
      if (sent < body.length && !client.socket.destroyed) client.socket.write(body[sent++]!);
    }, 1000);
    try {
      await servesPromptly(node, 'during-trickle');
      const closedAfter = await client.closed;
      expect(closedAfter).toBeLessThan(CUT_OFF_WITHIN_MS);
      expect(sent).toBeLessThan(body.length); // cut off before the body was complete
      const answer = client.received();
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(answer).toMatch(/\r\nconnection: close\r\n/i);
      expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toEqual({
        error: `Request body was not complete within ${BODY_TIMEOUT_MS} ms`,
      });
    } finally {
      clearInterval(trickle);
      client.socket.destroy();
    }
    expect((await http('GET', `${node.url}/kv/trickle`)).status).toBe(404);
    await servesPromptly(node, 'after-trickle');
  });

  it('cuts off a client that never finishes its headers', async () => {
    const client = await rawClient(node);
    client.socket.write('GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const more = setInterval(() => {
      if (!client.socket.destroyed) client.socket.write('X-Slow: 1\r\n');
    }, 300);
    try {
      await servesPromptly(node, 'during-headers');
      const closedAfter = await client.closed;
      expect(closedAfter).toBeLessThan(CUT_OFF_WITHIN_MS);
      expect(client.received()).not.toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      clearInterval(more);
      client.socket.destroy();
    }
  });

  it('keeps serving /status and writes with 200 idle connections open', async () => {
    const clients = await Promise.all(Array.from({ length: 200 }, () => rawClient(node)));
    try {
      await servesPromptly(node, 'with-idle-1');
      await servesPromptly(node, 'with-idle-2');
      // The idle ones are closed by the node (header timeout: they never sent a request).
      const closed = await Promise.all(clients.map((c) => c.closed));
      expect(Math.max(...closed)).toBeLessThan(CUT_OFF_WITHIN_MS + 5000);
    } finally {
      for (const c of clients) c.socket.destroy();
    }
    await servesPromptly(node, 'after-idle');
  });
});

describe('a single node with the default limits, under thousands of idle and trickling connections', () => {
  let cluster: LocalCluster;
  let node: ClusterNode;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ nodes: 1 });
    node = await cluster.waitForLeader();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('answers /status and writes while 2,000 idle and 1,000 trickling connections are open', async () => {
    const opened: RawClient[] = [];
    const open = async (count: number) => {
      // In batches, so the listen backlog is not what refuses them.
      for (let i = 0; i < count; i += 200) opened.push(...(await Promise.all(Array.from({ length: Math.min(200, count - i) }, () => rawClient(node)))));
    };
    let trickle: NodeJS.Timeout | undefined;
    try {
      await open(2000);
      const idle = opened.length;
      await open(1000);
      const trickling = opened.slice(idle);
      for (const [i, c] of trickling.entries()) {
        c.socket.write(`PUT /kv/trickle-${i} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`);
      }
      trickle = setInterval(() => {
        for (const c of trickling) if (!c.socket.destroyed) c.socket.write(' ');
      }, 500);
      const took: number[] = [];
      for (let round = 0; round < 5; round++) {
        const start = Date.now();
        await servesPromptly(node, `among-3000-${round}`);
        took.push(Date.now() - start);
      }
      // Every one of them was still open while the node answered (the default timeouts are 10 s).
      expect(opened.filter((c) => c.socket.destroyed || c.socket.readyState !== 'open')).toHaveLength(0);
      console.log(`slow clients: /status + one write among 3,000 open connections took ${took.join(', ')} ms`);
    } finally {
      if (trickle) clearInterval(trickle);
      for (const c of opened) c.socket.destroy();
    }
    await servesPromptly(node, 'after-3000');
  });
});

describe('a three-node cluster whose follower has every connection it accepts (MAX_CONNECTIONS) taken', () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ nodes: 3, env: { MAX_CONNECTIONS: '64', HEADERS_TIMEOUT_MS: '3000' } });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('refuses connections past the limit, keeps its peer streams and replicates, and serves again once the idle ones are cut off', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.nodes.find((n) => n !== leader && n.running)!;
    const clients = await Promise.all(Array.from({ length: 80 }, () => rawClient(follower).catch(() => undefined)));
    try {
      // Past the limit the node closes a new connection at once: some of the 80 are closed within a second.
      const early = await Promise.all(clients.map((c) => (c ? Promise.race([c.closed.then(() => true), sleep(1000).then(() => false)]) : true)));
      expect(early.filter(Boolean).length).toBeGreaterThanOrEqual(80 - 64 + 2);
      // The established peer streams are not among the refused: writes to the leader still commit, with
      // the full follower as part of the quorum or not, and reach it.
      for (let i = 0; i < 20; i++) expect((await http('PUT', `${leader.url}/kv/full-${i}`, { value: String(i) })).status).toBe(200);
      // The idle connections are cut off by the header timeout; the follower then serves, and has every write.
      await cluster.explained(
        eventually('the follower to serve again with every write', async () => {
          const r = await http('GET', `${follower.url}/kv/full-19?consistency=stale`, undefined, { timeoutMs: 1000 }).catch(() => undefined);
          return r?.status === 200 ? true : undefined;
        }),
      );
      // (A client's pooled connection from the full period may have been closed under it: asked again.)
      const status = await eventually('the follower to answer /status', async () =>
        http<{ leader: string | null }>('GET', `${follower.url}/status`).catch(() => undefined),
      );
      expect(status.body.leader).toBe(leader.name);
    } finally {
      for (const c of clients) c?.socket.destroy();
    }
  });
});

describe('a three-node cluster with a small BODY_TIMEOUT_MS', () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ nodes: 3, env: { BODY_TIMEOUT_MS: '500' } });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('still replicates: the peer streams are not timed out', async () => {
    const leader = await cluster.waitForLeader();
    expect((await http('PUT', `${leader.url}/kv/before`, { value: '1' })).status).toBe(200);
    await sleep(3 * 500);
    const now = await cluster.waitForLeader();
    expect((await http('PUT', `${now.url}/kv/after`, { value: '2' })).status).toBe(200);
    for (const node of cluster.nodes) {
      await cluster.explained(
        eventually(`both writes on ${node.name}`, async () => {
          const before = await http('GET', `${node.url}/kv/before?consistency=stale`);
          const after = await http('GET', `${node.url}/kv/after?consistency=stale`);
          return before.status === 200 && after.status === 200 ? true : undefined;
        }),
      );
    }
  });
});

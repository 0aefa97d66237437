/**
 * ClientUrls and the transport's part in it (PEER_PORT): this node's client URL goes out on every peer
 * request, a peer's is learned from its admitted requests, and neither reaches anything recorded.
 */
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { MessageType } from '@app/consensus/core';
import { ClientUrls, clientBaseUrl } from './client-urls';
import { PEER_HEADERS } from './peer-protocol';
import { testTransport } from './testing/test-transport';

const options = { nodeId: 'node1', advertiseUrl: 'http://10.0.0.1:4001' };

describe('clientBaseUrl', () => {
  it.each([
    ['http://10.0.0.1:3001', 'http://10.0.0.1:3001'],
    [' HTTPS://Kv1.Example:8443/ ', 'https://kv1.example:8443'],
    ['http://[::1]:3001', 'http://[::1]:3001'],
  ])('takes %j as %j', (raw, expected) => expect(clientBaseUrl(raw)).toBe(expected));

  it.each(['', 'kv1:3001', 'ftp://kv1', 'http://kv1:3001/kv', 'http://kv1:3001/?a=1', 'http://u:p@kv1:3001', `http://${'a'.repeat(3000)}`])(
    'refuses %j',
    (raw) => expect(clientBaseUrl(raw)).toBeUndefined(),
  );
});

describe('ClientUrls', () => {
  it("announces this node's own client URL to every listener, registered before or after", () => {
    const urls = new ClientUrls(options);
    const early: string[] = [];
    urls.onClientUrl((id, url) => early.push(`${id}=${url}`));
    urls.setOwn('http://10.0.0.1:3001/');
    const late: string[] = [];
    urls.onClientUrl((id, url) => late.push(`${id}=${url}`));
    expect(urls.own).toBe('http://10.0.0.1:3001');
    expect(early).toEqual(['node1=http://10.0.0.1:3001']);
    expect(late).toEqual(['node1=http://10.0.0.1:3001']);
  });

  it('announces nothing when the client URL is the member URL (one port for both), and refuses a URL that is none', () => {
    const urls = new ClientUrls(options);
    urls.setOwn('http://10.0.0.1:4001');
    expect(urls.own).toBeUndefined();
    expect(() => urls.setOwn('/kv')).toThrow('not an http(s) base URL: /kv');
    expect(new ClientUrls({ ...options, clientUrl: 'http://10.0.0.1:3001' }).own).toBe('http://10.0.0.1:3001');
  });

  it("learns peers' URLs, normalized, telling listeners of each announcement, and ignores what is no base URL", () => {
    const urls = new ClientUrls(options);
    const heard: string[] = [];
    urls.onClientUrl((id, url) => heard.push(`${id}=${url}`));
    urls.learn('node2', 'http://10.0.0.2:3002/');
    urls.learn('node2', 'http://10.0.0.2:3002');
    urls.learn('node2', 'http://10.0.0.2:3012');
    urls.learn('node3', 'http://10.0.0.3:3003/raft/stream');
    urls.learn('node3', undefined);
    urls.learn('', 'http://x:1');
    // Repeated too: the directory forgets a removed member's, which is announced again if it is added back.
    expect(heard).toEqual(['node2=http://10.0.0.2:3002', 'node2=http://10.0.0.2:3002', 'node2=http://10.0.0.2:3012']);
    expect(urls.get('node2')).toBe('http://10.0.0.2:3012');
    expect(urls.get('node3')).toBeUndefined();
  });
});

describe('HttpPeerTransport with client URLs', () => {
  let server: Server;
  let seen: IncomingHttpHeaders[];

  beforeEach(async () => {
    seen = [];
    server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(503).end('{"error":"starting"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const peerUrl = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function firstRequest(clientUrls?: ClientUrls): Promise<IncomingHttpHeaders> {
    const transport = testTransport({ nodeId: 'node1', peers: { node2: peerUrl() }, clientUrls, limits: { minBackoffMs: 1000, maxBackoffMs: 1000 } });
    try {
      // A stream opens with the first message to send.
      transport.send([{ type: MessageType.MsgHeartbeat, from: 'node1', to: 'node2', term: 1, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0 }]);
      const deadline = Date.now() + 5000;
      while (seen.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(seen.length).toBeGreaterThan(0);
      return seen[0];
    } finally {
      transport.onModuleDestroy();
    }
  }

  it('sends its client URL on its stream requests (PEER_PORT)', async () => {
    const urls = new ClientUrls(options);
    urls.setOwn('http://10.0.0.1:3001');
    expect((await firstRequest(urls))[PEER_HEADERS.clientUrl]).toBe('http://10.0.0.1:3001');
  });

  it('sends none with one port for clients and peers', async () => {
    expect(await firstRequest(new ClientUrls(options))).not.toHaveProperty(PEER_HEADERS.clientUrl);
    expect(await firstRequest(undefined)).not.toHaveProperty(PEER_HEADERS.clientUrl);
  });

  it("learns an admitted sender's client URL (onClientUrl), and nothing from a refused one", () => {
    const urls = new ClientUrls(options);
    const transport = testTransport({ nodeId: 'node1', peers: { node2: 'http://10.0.0.2:4002' }, clientUrls: urls, limits: { minBackoffMs: 60_000, maxBackoffMs: 60_000 } });
    try {
      const heard: string[] = [];
      transport.onClientUrl((id, url) => heard.push(`${id}=${url}`));
      const headers = (from: string) => ({ [PEER_HEADERS.from]: from, [PEER_HEADERS.clusterId]: 'c1', [PEER_HEADERS.clientUrl]: `http://10.0.0.9:${from === 'node2' ? 3002 : 3009}` });
      expect(transport.admit(headers('node9'))).toMatchObject({ status: 403 });
      expect(transport.admit(headers('node2'))).toEqual({ from: 'node2' });
      expect(heard).toEqual(['node2=http://10.0.0.9:3002']);
    } finally {
      transport.onModuleDestroy();
    }
  });
});

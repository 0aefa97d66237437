import { ExecutionContext, ForbiddenException } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { AddressInfo } from 'node:net';
import { createServer, request, Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa, TestCa, TestCert } from '../../../test/support/tls-certs';
import { MembersAuthGuard } from './admin/members-auth.guard';
import { PeerAdmission } from './peer-admission';
import { PeerTls } from './peer-tls';

let dir: string;
let ca: TestCa;
let rogueCa: TestCa;
let node1: TestCert;
let node2: TestCert;
let rogue: TestCert;
let server: Server;
let url: string;
let serverTls: PeerTls;

/**
 * A server set up as a mutual-TLS node's (tls-server.ts: the cluster CA, a certificate asked for, none
 * required), answering what PeerTls.refusal() says of each request's socket.
 */
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'raftkv-peer-tls-'));
  ca = makeTestCa(dir);
  rogueCa = makeTestCa(dir, 'rogue-');
  [node1, node2, rogue] = [ca.issue('node1'), ca.issue('node2'), rogueCa.issue('node3')];
  serverTls = new PeerTls({ cert: node1.cert, key: node1.key, ca: ca.ca });
  server = createServer({ cert: node1.cert, key: node1.key, ca: ca.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    res.end(serverTls.refusal(req.socket) ?? 'admitted');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/raft/stream`;
});

afterAll(async () => {
  serverTls.close();
  await new Promise((ok) => server.close(ok));
  rmSync(dir, { recursive: true, force: true });
});

function get(options: Parameters<typeof request>[1]): Promise<string> {
  return new Promise((ok, fail) => {
    const req = request(url, options, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => ok(body));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('PeerTls', () => {
  it("admits a request whose client certificate the cluster CA signed: the agent presents the node's own", async () => {
    const client = new PeerTls({ cert: node2.cert, key: node2.key, ca: ca.ca });
    try {
      expect(await get({ agent: client.agent })).toBe('admitted');
    } finally {
      client.close();
    }
  });

  it('refuses a request without a client certificate (the handshake itself succeeds: KV clients have none)', async () => {
    expect(await get({ ca: ca.ca, agent: false })).toBe(
      'peer routes need a client certificate signed by the cluster CA (TLS_CA_FILE): no client certificate',
    );
  });

  it("refuses a certificate another CA signed, saying why", async () => {
    expect(await get({ ca: ca.ca, cert: rogue.cert, key: rogue.key, agent: false })).toMatch(
      /^peer routes need a client certificate signed by the cluster CA \(TLS_CA_FILE\): its certificate is not signed by the cluster CA \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)$/,
    );
  });

  it('verifies the server against the cluster CA only: a node of another CA is not called', async () => {
    const client = new PeerTls({ cert: rogue.cert, key: rogue.key, ca: rogueCa.ca });
    try {
      // The server sends the cluster CA in its chain: one the client does not trust either way.
      await expect(get({ agent: client.agent })).rejects.toMatchObject({
        code: expect.stringMatching(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/),
      });
    } finally {
      client.close();
    }
  });

  it('without a CA: checks no client certificate, presents none, keeps connections alive', () => {
    const plain = new PeerTls({ cert: node1.cert, key: node1.key });
    try {
      expect(plain.mutual).toBe(false);
      expect(plain.refusal(undefined)).toBeUndefined();
      expect(plain.agent.options).toMatchObject({ keepAlive: true });
      expect(plain.agent.options.cert).toBeUndefined();
      expect(plain.agent.options.ca).toBeUndefined();
    } finally {
      plain.close();
    }
  });
});

describe('PeerAdmission.refuseCertificate', () => {
  it('answers 403 with the reason and logs it once a minute per address, with the claimed NODE_ID', () => {
    let now = 0;
    const warnings: string[] = [];
    const admission = new PeerAdmission({ members: [], now: () => now, warn: (m) => warnings.push(m) });
    expect(admission.refuseCertificate('::ffff:10.0.0.9', 'no client certificate', { nodeId: 'node2' })).toEqual({
      status: 403,
      error: 'no client certificate',
    });
    admission.refuseCertificate('10.0.0.9', 'no client certificate');
    now = 59_999;
    admission.refuseCertificate('10.0.0.9', 'no client certificate');
    admission.refuseCertificate('10.0.0.8', 'no client certificate');
    now = 60_000;
    admission.refuseCertificate('10.0.0.9', 'no client certificate');
    expect(warnings).toEqual([
      'refused a peer request from 10.0.0.9 (claimed NODE_ID "node2"): no client certificate (logged once a minute per address)',
      'refused a peer request from 10.0.0.8 (claimed NODE_ID none): no client certificate (logged once a minute per address)',
      'refused a peer request from 10.0.0.9 (claimed NODE_ID none): no client certificate (logged once a minute per address)',
    ]);
  });
});

describe('MembersAuthGuard under mutual TLS', () => {
  const context = (method: string, socket: unknown) =>
    ({
      switchToHttp: () => ({ getRequest: () => ({ method, socket, headers: {} }), getResponse: () => ({ header: () => undefined }) }),
    }) as unknown as ExecutionContext;
  const tls = { refusal: (socket: unknown) => (socket === 'verified' ? undefined : 'no client certificate') } as unknown as PeerTls;

  it('needs a verified client certificate for a change, not for reading the members', () => {
    const guard = new MembersAuthGuard({ timeoutMs: 1000 }, tls);
    expect(() => guard.canActivate(context('POST', 'anonymous'))).toThrow(ForbiddenException);
    expect(() => guard.canActivate(context('DELETE', 'anonymous'))).toThrow('membership changes: no client certificate');
    expect(guard.canActivate(context('POST', 'verified'))).toBe(true);
    expect(guard.canActivate(context('GET', 'anonymous'))).toBe(true);
    expect(new MembersAuthGuard({ timeoutMs: 1000 }).canActivate(context('POST', 'anonymous'))).toBe(true);
  });
});

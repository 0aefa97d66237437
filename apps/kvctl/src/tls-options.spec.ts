import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:https';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa, TestCa, TestCert } from '../../../test/support/tls-certs';
import { KvClient } from './kv-client';
import { ExitCode, KvctlError } from './kvctl-error';
import { describeTlsFailure, tlsFetch } from './tls-options';

let dir: string;
let ca: TestCa;
let node: TestCert;
let server: Server;
let port: number;
/** Client certificates' subjects the server saw, in order ('none' without one). */
const seen: string[] = [];

/** A node's `GET /kv/k`, over TLS with the test CA's certificate for localhost and 127.0.0.1. */
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'raftkv-kvctl-tls-'));
  ca = makeTestCa(dir);
  node = ca.issue('node1');
  server = createServer({ cert: node.cert, key: node.key, ca: ca.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
    seen.push(String(peer?.subject?.CN ?? 'none'));
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ key: 'k', value: 'over TLS' }));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
  rmSync(dir, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<KvctlError> {
  try {
    await promise;
  } catch (error) {
    return error as KvctlError;
  }
  throw new Error('expected a failure');
}

describe('kvctl over TLS', () => {
  it('trusts --cacert and presents --cert/--key when the node asks for one', async () => {
    const fetch = tlsFetch({ cacert: ca.caFile, cert: node.certFile, key: node.keyFile });
    const client = new KvClient({ endpoints: [`https://127.0.0.1:${port}`], timeoutMs: 5000, fetch });
    await expect(client.get('k')).resolves.toEqual({ key: 'k', value: 'over TLS' });
    expect(seen[seen.length - 1]).toBe('node1');
    const anonymous = new KvClient({ endpoints: [`https://localhost:${port}`], timeoutMs: 5000, fetch: tlsFetch({ cacert: ca.caFile }) });
    await expect(anonymous.get('k')).resolves.toEqual({ key: 'k', value: 'over TLS' });
  });

  it('fails at once, in one line, exit 1, on a certificate it cannot trust, instead of retrying until the budget ends', async () => {
    const started = Date.now();
    const error = await failure(new KvClient({ endpoints: [`https://127.0.0.1:${port}`], timeoutMs: 20_000 }).get('k'));
    expect(error).toBeInstanceOf(KvctlError);
    expect(error.exitCode).toBe(ExitCode.Failed);
    expect(error.message).toMatch(new RegExp(`^TLS failure with https://127\\.0\\.0\\.1:${port}: the node's certificate is not signed by a CA kvctl trusts .*--cacert$`));
    expect(error.message).not.toContain('\n');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('needs --cert and --key together, and says which file cannot be read (usage errors)', () => {
    expect(tlsFetch({})).toBeUndefined();
    expect(() => tlsFetch({ cert: node.certFile })).toThrow(expect.objectContaining({ exitCode: ExitCode.Usage, message: '--cert needs --key too (a client certificate and its key)' }));
    expect(() => tlsFetch({ key: node.keyFile })).toThrow('--key needs --cert too');
    expect(() => tlsFetch({ cacert: join(dir, 'nope.pem') })).toThrow(expect.objectContaining({ exitCode: ExitCode.Usage, message: `--cacert ${join(dir, 'nope.pem')} cannot be read: ENOENT` }));
  });
});

describe('describeTlsFailure', () => {
  const cause = (code: string, message = 'm') => ({ cause: { code, message } });

  it.each([
    ['SELF_SIGNED_CERT_IN_CHAIN', /not signed by a CA kvctl trusts \(m\); give the cluster's CA with --cacert/],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /not signed by a CA kvctl trusts/],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', /not signed by a CA kvctl trusts/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /does not name the host kvctl connected to \(m\)/],
    ['CERT_HAS_EXPIRED', /is not valid now/],
    ['ERR_SSL_WRONG_VERSION_NUMBER', /TLS handshake failed \(m\); is the node serving plain http:\/\/\?/],
  ])('%s', (code, text) => {
    expect(describeTlsFailure(cause(code))).toMatch(text);
  });

  it('leaves other network errors alone', () => {
    expect(describeTlsFailure(cause('ECONNREFUSED'))).toBeUndefined();
    expect(describeTlsFailure(new Error('x'))).toBeUndefined();
  });
});

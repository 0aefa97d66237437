import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa, TestCa, TestCert } from '../test/support/tls-certs';
import { ConfigError, loadNodeConfig } from './node-config';

let dir: string;
let ca: TestCa;
let node1: TestCert;
let other: TestCert;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'raftkv-tls-config-'));
  ca = makeTestCa(dir);
  node1 = ca.issue('node1');
  other = ca.issue('other');
  writeFileSync(join(dir, 'garbage.pem'), 'not a PEM file\n');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The ConfigError message loadNodeConfig throws for `env` (fails the test if it does not throw one). */
function refusal(env: NodeJS.ProcessEnv): string {
  try {
    loadNodeConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`no ConfigError for ${JSON.stringify(env)}`);
}

const tlsEnv = () => ({ TLS_CERT_FILE: node1.certFile, TLS_KEY_FILE: node1.keyFile });

describe('TLS configuration (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE)', () => {
  it('reads the PEM files; the default advertised URL is https://', () => {
    const config = loadNodeConfig({ ...tlsEnv(), TLS_CA_FILE: ca.caFile, PEER_URLS: 'https://localhost:3002' });
    expect(config.tls).toMatchObject({ certFile: node1.certFile, keyFile: node1.keyFile, caFile: ca.caFile });
    expect(config.tls!.cert.equals(node1.cert)).toBe(true);
    expect(config.tls!.key.equals(node1.key)).toBe(true);
    expect(config.tls!.ca!.equals(ca.ca)).toBe(true);
    expect(config.advertiseUrl).toBe('https://localhost:3001');
    expect(config.peerUrls).toEqual(['https://localhost:3002']);
    expect(loadNodeConfig(tlsEnv()).tls?.ca).toBeUndefined();
  });

  it('is off without the variables: plain HTTP, http:// advertised', () => {
    const config = loadNodeConfig({});
    expect(config.tls).toBeUndefined();
    expect(config.advertiseUrl).toBe('http://localhost:3001');
  });

  it.each([
    [{ TLS_CERT_FILE: 'c.pem' }, /^TLS_CERT_FILE is set without TLS_KEY_FILE/],
    [{ TLS_KEY_FILE: 'k.pem' }, /^TLS_KEY_FILE is set without TLS_CERT_FILE/],
    [{ TLS_CA_FILE: 'ca.pem' }, /^TLS_CA_FILE is set without TLS_CERT_FILE and TLS_KEY_FILE/],
  ])('refuses one of the pair alone, naming the other: %j', (env, message) => {
    expect(refusal(env)).toMatch(message);
  });

  it('names the file that cannot be read, is not PEM, or does not match, in one line', () => {
    const missing = join(dir, 'missing.pem');
    const garbage = join(dir, 'garbage.pem');
    const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [{ ...tlsEnv(), TLS_CERT_FILE: missing }, /^TLS_CERT_FILE .*missing\.pem cannot be read: ENOENT$/],
      [{ ...tlsEnv(), TLS_KEY_FILE: missing }, /^TLS_KEY_FILE .*missing\.pem cannot be read: ENOENT$/],
      [{ ...tlsEnv(), TLS_CA_FILE: missing }, /^TLS_CA_FILE .*missing\.pem cannot be read: ENOENT$/],
      [{ ...tlsEnv(), TLS_CERT_FILE: garbage }, /^TLS_CERT_FILE .*garbage\.pem holds no PEM certificate/],
      [{ ...tlsEnv(), TLS_KEY_FILE: garbage }, /^TLS_KEY_FILE .*garbage\.pem holds no valid PEM private key/],
      [{ ...tlsEnv(), TLS_CA_FILE: garbage }, /^TLS_CA_FILE .*garbage\.pem holds no PEM certificate/],
      [{ ...tlsEnv(), TLS_KEY_FILE: other.keyFile }, /^TLS_KEY_FILE .*other-key\.pem is not the private key of the certificate in TLS_CERT_FILE .*node1\.pem$/],
    ];
    for (const [env, message] of cases) {
      const text = refusal(env);
      expect(text).toMatch(message);
      expect(text).not.toContain('\n');
    }
  });

  it('refuses an http:// member URL while TLS is on, and an https:// one while it is off', () => {
    expect(refusal({ ...tlsEnv(), PEER_URLS: 'https://localhost:3002,http://localhost:3003' })).toMatch(
      /^PEER_URLS has http:\/\/localhost:3003, but this node serves TLS/,
    );
    expect(refusal({ ...tlsEnv(), JOIN: 'http://localhost:3002' })).toMatch(/^JOIN has http:\/\/localhost:3002, but this node serves TLS/);
    expect(refusal({ ...tlsEnv(), ADVERTISE_URL: 'http://10.0.0.1:3001' })).toMatch(/^ADVERTISE_URL has http:\/\/10\.0\.0\.1:3001/);
    expect(refusal({ PEER_URLS: 'https://localhost:3002' })).toMatch(/^PEER_URLS has https:\/\/localhost:3002, but TLS_CERT_FILE and TLS_KEY_FILE are not set/);
    expect(refusal({ ADVERTISE_URL: 'https://localhost:3001' })).toMatch(/^ADVERTISE_URL has https:/);
  });
});

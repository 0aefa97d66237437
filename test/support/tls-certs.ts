import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A CA made with openssl, and what it signed: PEM file paths and contents. */
export interface TestCa {
  dir: string;
  /** The CA certificate (what TLS_CA_FILE and --cacert name). */
  caFile: string;
  ca: Buffer;
  /**
   * `issue(name)`: a certificate for `name` (SAN DNS:localhost, IP:127.0.0.1) signed by this CA; `sans` adds
   * the other addresses it is reached at (a node in a network namespace: its namespace's IP).
   */
  issue(name: string, sans?: TestSans): TestCert;
}

/** Subject alternative names a certificate covers besides DNS:localhost and IP:127.0.0.1. */
export interface TestSans {
  ips?: readonly string[];
  dns?: readonly string[];
}

export interface TestCert {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A throwaway CA in `dir` (`<prefix>ca.pem`, `<prefix>ca-key.pem`), made with the openssl command the README
 * shows, so that the tests exercise the same certificates a reader makes. EC keys: quicker to make than RSA.
 */
export function makeTestCa(dir: string, prefix = ''): TestCa {
  const caFile = join(dir, `${prefix}ca.pem`);
  const caKey = join(dir, `${prefix}ca-key.pem`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'];
  openssl(['req', '-x509', ...ec, '-subj', `/CN=${prefix}raft-kv test CA`, '-keyout', caKey, '-out', caFile], dir);
  return {
    dir,
    caFile,
    ca: readFileSync(caFile),
    issue(name: string, sans: TestSans = {}): TestCert {
      const certFile = join(dir, `${prefix}${name}.pem`);
      const keyFile = join(dir, `${prefix}${name}-key.pem`);
      const ips = [...new Set(['127.0.0.1', ...(sans.ips ?? [])])].map((ip) => `IP:${ip}`);
      const dns = [...new Set(['localhost', ...(sans.dns ?? [])])].map((name) => `DNS:${name}`);
      openssl(
        [
          'req', '-x509', ...ec, '-subj', `/CN=${name}`,
          '-addext', `subjectAltName=${[...dns, ...ips].join(',')}`,
          '-addext', 'basicConstraints=critical,CA:FALSE',
          '-CA', caFile, '-CAkey', caKey, '-keyout', keyFile, '-out', certFile,
        ],
        dir,
      );
      return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
    },
  };
}

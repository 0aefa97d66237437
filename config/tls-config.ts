import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './config-error';

/**
 * TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE, read and checked at start. With it the node serves HTTPS on
 * HTTP_PORT (clients and peers); with `ca` too, peers must present a certificate signed by that CA (mutual
 * TLS), and the node presents its own when it calls them. Certificates are read once: a new one needs a restart.
 */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
  caFile?: string;
  /** PEM: the node's certificate (and its chain, if the file has one). */
  cert: Buffer;
  /** PEM: the certificate's private key. */
  key: Buffer;
  /** PEM: the cluster CA, one or more certificates. */
  ca?: Buffer;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function read(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(`${variable} ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Every PEM certificate in the file, parsed; throws ConfigError naming the file when there is none or one is invalid. */
function certificates(variable: string, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('utf8').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new ConfigError(`${variable} ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new ConfigError(`${variable} ${file} holds an invalid certificate: ${(error as Error).message}`);
    }
  });
}

/**
 * Reads the TLS files named by the environment's values: undefined when neither TLS_CERT_FILE nor TLS_KEY_FILE
 * is set (plain HTTP). Throws a one-line ConfigError naming the variable and file: one of the pair without the
 * other, TLS_CA_FILE without them, a file that cannot be read, is not PEM, or a key that is not the certificate's.
 */
export function loadTlsConfig(vars: { certFile?: string; keyFile?: string; caFile?: string }): TlsConfig | undefined {
  const { certFile, keyFile, caFile } = vars;
  if (certFile === undefined && keyFile === undefined) {
    if (caFile !== undefined) throw new ConfigError('TLS_CA_FILE is set without TLS_CERT_FILE and TLS_KEY_FILE: mutual TLS needs the node\'s own certificate');
    return undefined;
  }
  if (certFile === undefined) throw new ConfigError('TLS_KEY_FILE is set without TLS_CERT_FILE: give both (PEM files) or neither');
  if (keyFile === undefined) throw new ConfigError('TLS_CERT_FILE is set without TLS_KEY_FILE: give both (PEM files) or neither');
  const cert = read('TLS_CERT_FILE', certFile);
  const [leaf] = certificates('TLS_CERT_FILE', certFile, cert);
  const key = read('TLS_KEY_FILE', keyFile);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new ConfigError(`TLS_KEY_FILE ${keyFile} holds no valid PEM private key: ${(error as Error).message}`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new ConfigError(`TLS_KEY_FILE ${keyFile} is not the private key of the certificate in TLS_CERT_FILE ${certFile}`);
  }
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    ca = read('TLS_CA_FILE', caFile);
    certificates('TLS_CA_FILE', caFile, ca);
  }
  return { certFile, keyFile, caFile, cert, key, ca };
}

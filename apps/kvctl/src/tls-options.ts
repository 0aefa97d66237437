import { readFileSync } from 'node:fs';
import type * as Undici from 'undici';
import { ExitCode, KvctlError } from './kvctl-error';

/** `--cacert`, `--cert`, `--key` (or KVCTL_CACERT, KVCTL_CERT, KVCTL_KEY): PEM files. */
export interface TlsFiles {
  cacert?: string;
  cert?: string;
  key?: string;
}

function read(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new KvctlError(`${option} ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, ExitCode.Usage);
  }
}

/**
 * A fetch that trusts `cacert` (instead of the system's CAs) and presents `cert`/`key` when a node asks for a
 * client certificate; undefined when no file is given (the global fetch then serves, with the system's CAs and
 * NODE_EXTRA_CA_CERTS). The files are read here: a missing one is a usage error.
 */
export function tlsFetch(files: TlsFiles): typeof fetch | undefined {
  if (!files.cacert && !files.cert && !files.key) return undefined;
  if (Boolean(files.cert) !== Boolean(files.key)) {
    throw new KvctlError(`${files.cert ? '--cert' : '--key'} needs ${files.cert ? '--key' : '--cert'} too (a client certificate and its key)`, ExitCode.Usage);
  }
  const connect = {
    ...(files.cacert ? { ca: read('--cacert', files.cacert) } : {}),
    ...(files.cert ? { cert: read('--cert', files.cert), key: read('--key', files.key!) } : {}),
  };
  // Loaded only here: undici is 110 modules, a third of what a kvctl run without TLS files loads (~0.1 s).
  const { Agent, fetch: undiciFetch } = require('undici') as typeof Undici;
  const dispatcher = new Agent({ connect });
  return ((input: string, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as typeof fetch;
}

const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/**
 * What a failed TLS connection means for the user, in one line, or undefined for an error that is not about
 * TLS. Certificate problems do not heal with retries: kvctl reports them at once.
 */
export function describeTlsFailure(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code ?? '';
  const message = cause?.message ?? '';
  if (UNTRUSTED.has(code)) return `the node's certificate is not signed by a CA kvctl trusts (${message}); give the cluster's CA with --cacert`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the node's certificate does not name the host kvctl connected to (${message})`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `the node's certificate is not valid now (${message})`;
  if (code.startsWith('ERR_SSL_') || code === 'EPROTO') return `TLS handshake failed (${message}); is the node serving plain http://?`;
  return undefined;
}

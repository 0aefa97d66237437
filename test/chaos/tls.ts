/**
 * TLS for a chaos run (`--tls`, docs/chaos.md "TLS"): a throwaway CA made with openssl in the run directory,
 * one certificate per node covering every address the node is reached at (its endpoint's hosts: 127.0.0.1
 * behind the proxies, its namespace's IP in netns mode), mutual TLS between the members (TLS_CA_FILE), and
 * the harness's own HTTP trusting that CA.
 *
 * The harness does not change the process's global dispatcher: Node's built-in fetch (undici 6 on Node 20)
 * and the undici package (7) differ, and other code in the same jest worker keeps its plain fetch. Every
 * request the harness makes to a node goes through `fetch` (KV clients, status polls, final reads: no client
 * certificate, as a KV client needs none) or `adminFetch` (the membership nemesis's admin calls, which
 * present the harness's certificate: membership changes need one under mutual TLS).
 */
import { mkdirSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import { makeTestCa } from '../support/tls-certs';
import { NodeEndpoint } from './cluster-net';

/** The harness's fetch: the built-in one's signature, whichever implementation is behind it. */
export type HarnessFetch = typeof fetch;

export interface ChaosTls {
  /** Where the CA, the certificates and their keys are (`<runDir>/tls`). */
  dir: string;
  caFile: string;
  /** Node i's TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE: the same for every incarnation of node i. */
  env(i: number): Record<string, string>;
  /** Trusts the CA, presents no certificate. */
  fetch: HarnessFetch;
  /** Trusts the CA and presents the harness's certificate (`CN=chaos-harness`, signed by the CA). */
  adminFetch: HarnessFetch;
  /** One line for the log and the report. */
  describe(): string;
  /** Closes the agents' connections (the run is over: requests still in flight are cut). */
  close(): Promise<void>;
}

/** The hosts (IP addresses) a node is reached at: by its peers (`url`), by the harness (`clientUrl`), where it binds. */
function addressesOf(e: NodeEndpoint): string[] {
  return [...new Set([e.bindHost, new URL(e.url).hostname, new URL(e.clientUrl).hostname])];
}

/**
 * Makes the CA and every certificate under `dir`. Throws when openssl fails (it is needed: the README's own
 * commands make the certificates, test/support/tls-certs.ts).
 */
export function makeChaosTls(dir: string, endpoints: readonly NodeEndpoint[]): ChaosTls {
  mkdirSync(dir, { recursive: true });
  const ca = makeTestCa(dir);
  const certs = endpoints.map((e) => ca.issue(e.name, { ips: addressesOf(e).filter(isIp), dns: addressesOf(e).filter((h) => !isIp(h)) }));
  const harness = ca.issue('chaos-harness');
  const plain = new Agent({ connect: { ca: ca.ca } });
  const admin = new Agent({ connect: { ca: ca.ca, cert: harness.cert, key: harness.key } });
  const via = (agent: Agent): HarnessFetch => ((input: any, init?: any) => undiciFetch(input, { ...init, dispatcher: agent })) as unknown as HarnessFetch;
  return {
    dir,
    caFile: ca.caFile,
    env: (i) => ({ TLS_CERT_FILE: certs[i].certFile, TLS_KEY_FILE: certs[i].keyFile, TLS_CA_FILE: ca.caFile }),
    fetch: via(plain),
    adminFetch: via(admin),
    describe: () =>
      `on: mutual TLS between members, https:// everywhere; CA ${ca.caFile}; certificates for ` +
      endpoints.map((e) => `${e.name} (${addressesOf(e).join(', ')})`).join(', '),
    close: async () => {
      await Promise.all([plain.destroy(), admin.destroy()]);
    },
  };
}

function isIp(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(':');
}

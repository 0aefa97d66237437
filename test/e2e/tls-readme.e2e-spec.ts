/**
 * The README's "TLS" walkthrough, run as written: the openssl commands make the CA and the nodes'
 * certificates, the three nodes are started with exactly the variables the README gives (its start commands
 * run in the foreground, one terminal each, so the README marks them skipped and this test starts them:
 * `npm start` is the built node), then kvctl and curl talk to them over TLS and a peer route refuses a
 * process without a client certificate. Outputs are compared with the README's.
 *
 * The only substitutions: the ports (3301-3303 for the README's 3001-3003, which are readme.e2e's: see
 * README_PORTS; every kvctl command of the section names its endpoints, and kvctl's own variables are not
 * inherited), and the example's files (`tls/`, `./data/tls-nodeN`), which go to a temporary directory instead
 * of the repository.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { NodeProcess } from '../../scripts/lib/node-process';
import { consecutiveFreePorts, README_PORTS, ROOT, sh } from '../support/cluster-script';
import { hasCommand } from '../support/has-command';
import { eventually } from '../support/local-cluster';
import { maskVarying, matchText, outputLines, readmeSteps, Step } from '../support/readme-steps';

jest.setTimeout(150_000);

for (const command of ['openssl', 'curl']) {
  if (!hasCommand(command)) throw new Error(`tls-readme.e2e needs ${command} (Debian package ${command})`);
}

const SECTION = 'TLS';
const steps = readmeSteps(readFileSync(join(ROOT, 'README.md'), 'utf8'), [SECTION]);

const work = mkdtempSync(join(tmpdir(), 'raftkv-tls-readme-'));
let base: number = README_PORTS.tlsReadme;
const nodes: NodeProcess[] = [];
/** The shell's environment: kvctl's own variables only where the README sets them. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KVCTL_')));

/** README text → this run's: ports, and the example's files under `work`. */
function rewrite(text: string): string {
  return text
    .replace(/\blocalhost:300([1-9])\b/g, (_m, n: string) => `localhost:${base + Number(n) - 1}`)
    .replace(/\bHTTP_PORT=300([1-9])\b/g, (_m, n: string) => `HTTP_PORT=${base + Number(n) - 1}`)
    .replace(/(^|[\s=])\.\/data\/tls-/gm, (_m, before: string) => `${before}${join(work, 'data')}/tls-`)
    .replace(/(^|[\s=])tls(?=[/\s]|$)/gm, (_m, before: string) => `${before}${join(work, 'tls')}`);
}

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
  rmSync(work, { recursive: true, force: true });
});

async function runStep(step: Step): Promise<void> {
  const where = `README line ${step.fence.line}`;
  let stdout = '';
  for (const command of step.commands.map(rewrite)) {
    const run = await sh(command, env);
    if (run.code !== 0) throw new Error(`${where}: \`${command}\` exited ${run.code}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`);
    stdout += run.stdout;
  }
  const expect = step.expect!;
  const mask = (lines: string[]) => (expect.varying ? lines.map(maskVarying) : lines);
  const wanted = outputLines(rewrite(expect.text));
  const got = outputLines(stdout);
  if (!matchText(mask(wanted), mask(got))) {
    const logs = nodes.map((n) => `----- ${n.name} -----\n${n.tail(20)}`).join('\n');
    throw new Error(`${where}: output differs\n--- README (line ${expect.line}, rewritten) ---\n${wanted.join('\n')}\n--- got ---\n${got.join('\n')}\n${logs}`);
  }
}

/** `VAR=value ... npm start` → the variables (`npm start` runs the built node, which NodeProcess starts). */
function startCommand(command: string): Record<string, string> {
  const words = command.split(/\s+/);
  const assignments = words.filter((w) => /^[A-Z_]+=/.test(w));
  expect(words.slice(assignments.length)).toEqual(['npm', 'start']);
  return Object.fromEntries(assignments.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
}

/** Every node names one leader in one term, asked over HTTPS trusting the walkthrough's CA. */
async function waitForLeader(): Promise<void> {
  const agent = new Agent({ connect: { ca: readFileSync(join(work, 'tls', 'ca.pem')) } });
  try {
    await eventually(
      'a leader every node agrees on',
      async () => {
        const statuses = await Promise.all(
          nodes.map(async (n) => (await (await undiciFetch(`${n.url}/status`, { dispatcher: agent, signal: AbortSignal.timeout(2000) })).json()) as { leader: string | null; term: number }),
        );
        return statuses.every((s) => s.leader !== null && s.leader === statuses[0].leader && s.term === statuses[0].term) ? true : undefined;
      },
      60_000,
      250,
    );
  } finally {
    await agent.close();
  }
}

describe('README: TLS', () => {
  it('has runnable steps with outputs, and starts three nodes with TLS variables and npm start', () => {
    const run = steps.filter((s) => s.kind === 'run');
    expect(run.length).toBeGreaterThanOrEqual(3);
    for (const step of run) expect({ line: step.fence.line, expect: Boolean(step.expect) }).toEqual({ line: step.fence.line, expect: true });
    const start = steps.filter((s) => s.kind === 'skip');
    expect(start).toHaveLength(1);
    expect(start[0].commands.map((c) => Object.keys(startCommand(c)))).toEqual(
      Array(3).fill(['NODE_ID', 'HTTP_PORT', 'PEER_URLS', 'WAL_DIR', 'TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE']),
    );
  });

  it('runs as written: certificates, a TLS cluster, kvctl and curl with the CA, a peer route refused without a certificate', async () => {
    base = await consecutiveFreePorts(3, README_PORTS.tlsReadme);
    for (const step of steps) {
      if (step.kind === 'run') {
        await runStep(step);
      } else if (step.kind === 'skip') {
        for (const command of step.commands) {
          const vars = startCommand(rewrite(command));
          const node = new NodeProcess({ name: vars.NODE_ID, env: vars, clientUrl: `https://localhost:${vars.HTTP_PORT}` });
          nodes.push(node);
          node.start();
        }
        await waitForLeader();
      } else {
        throw new Error(`README line ${step.fence.line}: a ${step.kind} step in ${SECTION}`);
      }
    }
    expect(nodes).toHaveLength(3);
  });
});

/**
 * The README, run: every example of its quick start, API reference and walkthroughs, in order, against a
 * cluster started by `npm run cluster` (the script the README tells users to run), with each output
 * compared to the one the README shows. The markup is described in test/support/readme-steps.ts. The only
 * substitutions are those the README itself asks of its reader: node names and ports swapped when another
 * node leads (and, should ports 3001-3003 be taken on this machine, the cluster's real ports).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterScript, consecutiveFreePorts, README_PORTS, ROOT, Run, sh } from '../support/cluster-script';
import { http } from '../support/local-cluster';
import {
  ASKED_NODE_KEYS,
  canonicalNodeOrder,
  compareJson,
  matchText,
  outputLines,
  parseExpectedJson,
  readmeSteps,
  Roles,
  Step,
} from '../support/readme-steps';

jest.setTimeout(180_000);

const SECTIONS = ['Quick start', 'API reference', 'Walkthroughs'];
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const steps = readmeSteps(README, SECTIONS);

let dataDir: string;
let cluster: ClusterScript;
let roles: Roles;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  const base = await consecutiveFreePorts(3, README_PORTS.readme);
  if (base !== 3001) process.stdout.write(`readme: ports 3001-3003 are taken here; the cluster uses ${base}-${base + 2} and the commands say so\n`);
  roles = new Roles(3, base);
  dataDir = mkdtempSync(join(tmpdir(), 'raftkv-readme-'));
  cluster = ClusterScript.start(['--no-build', '--base-port', String(base)], join(dataDir, 'data'));
  // The README's bare `npx kvctl` asks 3001-3003: point it at this cluster when it runs elsewhere.
  env = base === 3001 ? cluster.env : { ...cluster.env, KVCTL_ENDPOINTS: [0, 1, 2].map((i) => `http://localhost:${base + i}`).join(',') };
  await cluster.waitFor(/cluster: ready; node\d is the leader/);
});

afterAll(async () => {
  await cluster?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function describeRun(command: string, run: Run): string {
  return `\`${command}\` exited ${run.code}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
}

/** Runs one step's commands and checks the output the README shows for it. */
async function runStep(step: Step): Promise<void> {
  const where = `README line ${step.fence.line}`;
  let stdout = '';
  for (const command of step.commands) {
    const actual = roles.rewrite(command);
    const run = await sh(actual, env);
    if (run.code !== 0) throw new Error(`${where}: ${describeRun(actual, run)}\n(roles: ${roles})`);
    stdout += run.stdout.endsWith('\n') || run.stdout === '' ? run.stdout : `${run.stdout}\n`;
  }
  const expect = step.expect;
  if (!expect) return;
  const got = outputLines(stdout);
  const context = () =>
    `${where}: \`${step.commands.join(' && ')}\` (roles: ${roles})\n--- README (line ${expect.line}) ---\n${expect.text}\n--- got ---\n${got.join('\n')}`;

  if (expect.kind === 'text') {
    const wanted = canonicalNodeOrder(outputLines(roles.rewrite(expect.text)));
    if (!matchText(wanted, canonicalNodeOrder(got))) throw new Error(`output differs\n${context()}`);
    return;
  }

  const expectedLines = outputLines(expect.text);
  if (got.length !== expectedLines.length) throw new Error(`expected ${expectedLines.length} line(s) of JSON\n${context()}`);
  if (expect.leader) {
    // The README says who it assumes leads; the reader swaps names if another node does. So do we.
    const answer = JSON.parse(got[0]) as { leader: string | null };
    const assumed = /"leader":"node(\d)"/.exec(expect.text);
    if (!assumed) throw new Error(`${where}: a leader step must show "leader":"nodeN"`);
    if (!answer.leader) throw new Error(`no leader (the README's wait may be too short)\n${context()}`);
    roles.assign(Number(assumed[1]), Number(answer.leader.replace(/^node/, '')));
  }
  const problems = expectedLines.flatMap((line, i) =>
    compareJson(parseExpectedJson(roles.rewrite(line)), JSON.parse(got[i]), { relaxed: expect.leader ? ASKED_NODE_KEYS : undefined }).map(
      (p) => `line ${i + 1}: ${p}`,
    ),
  );
  if (problems.length > 0) throw new Error(`${problems.join('\n')}\n${context()}`);
}

describe('README markup', () => {
  it('has runnable steps with expected outputs in every checked section', () => {
    for (const section of SECTIONS) expect(steps.some((s) => s.fence.section === section && s.kind === 'run')).toBe(true);
    const walkthroughs = steps.filter((s) => s.fence.section === 'Walkthroughs');
    const subsections = new Set(walkthroughs.map((s) => s.fence.subsection));
    expect([...subsections]).toEqual(['Simulate leader failure', 'Test split-brain protection', 'Verify persistence']);
    // Every walkthrough step a user runs shows what they should see.
    for (const step of walkthroughs.filter((s) => s.kind === 'run')) {
      const isWaitOnly = step.commands.every((c) => c.startsWith('sleep '));
      if (!isWaitOnly) expect({ line: step.fence.line, expect: Boolean(step.expect) }).toEqual({ line: step.fence.line, expect: true });
    }
  });

  it('pairs every local cluster command with its Docker Compose twin, on services docker-compose.yml defines', async () => {
    const local = steps.filter((s) => s.kind === 'run' && s.commands.every((c) => c.startsWith('npm run cluster -- ')));
    expect(local.length).toBeGreaterThan(0);
    for (const step of local) {
      const twin = steps[steps.indexOf(step) + 1];
      const verbs = step.commands.map((c) => c.replace('npm run cluster -- ', ''));
      expect({ line: step.fence.line, twin: twin?.kind === 'docker' ? twin.commands : undefined }).toEqual({
        line: step.fence.line,
        twin: verbs.map((v) => `docker-compose ${v}`),
      });
    }
    const config = await sh('docker-compose -f docker-compose.yml config --services', process.env);
    if (config.code === 127) {
      process.stdout.write('readme: docker-compose is not installed; the Docker twins were not checked against docker-compose.yml\n');
      return;
    }
    expect(config.code).toBe(0);
    const services = new Set(config.stdout.split('\n').filter(Boolean));
    for (const step of steps.filter((s) => s.kind === 'docker')) {
      for (const command of step.commands) {
        const [, sub, ...names] = command.replace(/^docker-compose\s+/, 'docker-compose ').split(/\s+/);
        expect(['up', 'stop', 'start', 'restart', 'kill', 'ps', 'logs', 'down', 'exec']).toContain(sub);
        for (const name of names.filter((n) => !n.startsWith('-'))) expect({ command, service: name, known: services.has(name) }).toMatchObject({ known: true });
      }
    }
  });
});

// One test per part of the README, in order: each continues from the state the previous one left.
const groups = new Map<string, Step[]>();
for (const step of steps) {
  const key = step.fence.subsection && step.fence.section === 'Walkthroughs' ? `${step.fence.section}: ${step.fence.subsection}` : step.fence.section;
  groups.set(key, [...(groups.get(key) ?? []), step]);
}

describe('README, run against `npm run cluster`', () => {
  for (const [name, group] of groups) {
    const runnable = group.filter((s) => s.kind === 'run');
    it(`${name} (${runnable.length} steps)`, async () => {
      for (const step of runnable) await runStep(step);
    });
  }

  it('Ctrl-C stops every node cleanly; `npm run cluster` again continues with the same data', async () => {
    cluster.interrupt();
    await cluster.waitForExit();
    const output = cluster.output();
    expect(output).toContain('cluster: every node stopped cleanly');
    for (const n of [1, 2, 3]) expect(output).toMatch(new RegExp(`^node${n} \\| stopped$`, 'm'));

    cluster = ClusterScript.start(['--no-build', '--base-port', String(roles.basePort)], env.CLUSTER_DATA_DIR!);
    await cluster.waitFor(/cluster: ready; node\d is the leader/);
    const url = `http://127.0.0.1:${roles.basePort}`;
    const status = await http('GET', `${url}/status`);
    const leader = status.body.leaderUrl.replace('localhost', '127.0.0.1');
    expect(await http('GET', `${leader}/kv/persistent`)).toMatchObject({ status: 200, body: { key: 'persistent', value: 'durable' } });
  });
});

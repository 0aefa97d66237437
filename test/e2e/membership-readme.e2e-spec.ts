/**
 * The README's "Membership changes" walkthroughs, run as written: "Replace a failed node" (a cluster of
 * `npm run cluster`, a key, node1 killed and removed, node4 added with `npm run cluster -- add`, node2
 * stopped: the cluster still writes and node4 has every key) and "Grow from 3 to 5, and shrink back" (node4
 * and node5 added as voters, then removed, each `add` ending with its node).
 *
 * The README's commands run in order. The ones it marks skipped run in the foreground or set a terminal's
 * environment; this test does what they say: `export` sets the environment of every later command and
 * process, `npm run cluster -- <args>` starts the cluster with those arguments (after stopping what the
 * previous walkthrough left running, as the README asks), `npm run cluster -- add` starts one more node and
 * waits for `cluster: nodeN is a voter`, which the README tells its reader to wait for. Outputs are compared
 * with the README's by test/support/member-table.ts (which member leads, timings and indexes left out).
 *
 * The only substitution: the ports. The README's 3001-3005 are readme.e2e's (see README_PORTS), so this runs
 * on 3101-3105 (others if taken) and kvctl's default endpoints point at this cluster (KVCTL_ENDPOINTS), as they
 * would at 3001-3003.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterScript, consecutiveFreePorts, README_PORTS, ROOT, sh } from '../support/cluster-script';
import { comparableLine } from '../support/member-table';
import { matchText, outputLines, readmeSteps, Step } from '../support/readme-steps';

jest.setTimeout(240_000);

const SECTION = 'Membership changes';
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const steps = readmeSteps(README, [SECTION]);

const work = mkdtempSync(join(tmpdir(), 'raftkv-membership-readme-'));
const dataDir = join(work, 'data');
let base: number = README_PORTS.membershipReadme;
/** What the README's `export` lines set, and KVCTL_ENDPOINTS (this cluster's ports are not the README's). */
const exported: Record<string, string> = {};
let cluster: ClusterScript | undefined;
/** The `npm run cluster -- add` processes of the current walkthrough, in order. */
let added: ClusterScript[] = [];

/** README text → this run's: the ports. */
function rewrite(text: string): string {
  return text.replace(/\blocalhost:300([1-9])\b/g, (_m, n: string) => `localhost:${base + Number(n) - 1}`);
}

function env(): NodeJS.ProcessEnv {
  return { ...process.env, CLUSTER_DATA_DIR: dataDir, NO_COLOR: '1', FORCE_COLOR: '', ...exported };
}

beforeAll(async () => {
  base = await consecutiveFreePorts(5, README_PORTS.membershipReadme);
  exported.KVCTL_ENDPOINTS = [0, 1, 2].map((i) => `http://localhost:${base + i}`).join(',');
});

afterAll(async () => {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
});

/** Ctrl-C in every terminal of the walkthrough: the added nodes first, then the cluster. */
async function stopAll(): Promise<void> {
  await Promise.all(added.map((a) => a.stop()));
  await cluster?.stop();
  added = [];
  cluster = undefined;
}

/** A step the README marks skipped, done as it says (see the file's comment). */
async function startStep(step: Step): Promise<void> {
  const where = `README line ${step.fence.line}`;
  for (const command of step.commands) {
    const assignment = /^export ((?:\w+=\S+\s*)+)$/.exec(command);
    const script = /^npm run cluster -- (.+)$/.exec(command);
    if (assignment) {
      for (const pair of assignment[1].trim().split(/\s+/)) {
        const [name, value] = pair.split('=');
        exported[name] = value;
      }
    } else if (script && script[1].trim() === 'add') {
      const add = ClusterScript.start(['add', '--no-build'], dataDir, exported);
      added.push(add);
      const [, name] = await add.waitFor(/^cluster: (node\d+) is a voter$/m, 90_000);
      const n = Number(name.slice('node'.length));
      // What the README says of it: the next node, on its port, joining (JOIN) with an empty directory.
      expect(add.output()).toContain(`adding ${name} http://localhost:${base + n - 1} (joining through http://localhost:`);
    } else if (script) {
      await stopAll();
      cluster = ClusterScript.start(['--no-build', '--base-port', String(base), ...script[1].trim().split(/\s+/)], dataDir, exported);
      await cluster.waitFor(/cluster: ready; node\d is the leader/);
      // The README chose the token; the cluster took it rather than drawing one.
      expect(cluster.output()).toContain('peer traffic: the CLUSTER_TOKEN of this environment');
    } else {
      throw new Error(`${where}: a skipped command this test does not know how to do: ${command}`);
    }
  }
}

async function runStep(step: Step): Promise<void> {
  const where = `README line ${step.fence.line}`;
  let stdout = '';
  for (const command of step.commands.map(rewrite)) {
    const run = await sh(command, env());
    if (run.code !== 0) throw new Error(`${where}: \`${command}\` exited ${run.code}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`);
    stdout += run.stdout.endsWith('\n') || run.stdout === '' ? run.stdout : `${run.stdout}\n`;
  }
  const expect = step.expect;
  if (!expect) throw new Error(`${where}: a step without the output it shows`);
  const wanted = outputLines(rewrite(expect.text));
  const got = outputLines(stdout);
  const comparable = (lines: string[]) => (expect.varying ? lines.map(comparableLine) : lines);
  if (!matchText(comparable(wanted), comparable(got))) {
    throw new Error(`${where}: output differs\n--- README (line ${expect.line}, rewritten) ---\n${wanted.join('\n')}\n--- got ---\n${got.join('\n')}`);
  }
}

async function walk(group: Step[]): Promise<void> {
  for (const step of group) {
    if (step.kind === 'run') await runStep(step);
    else if (step.kind === 'skip') await startStep(step);
    else throw new Error(`README line ${step.fence.line}: a ${step.kind} step in ${SECTION}`);
  }
}

const inPart = (subsection: string | undefined) => steps.filter((s) => s.fence.subsection === subsection);

describe('README: Membership changes', () => {
  it('has the two walkthroughs, each starting its cluster with npm run cluster, every command with its output', () => {
    expect([...new Set(steps.map((s) => s.fence.subsection))]).toEqual([undefined, 'Replace a failed node', 'Grow from 3 to 5, and shrink back']);
    for (const step of steps.filter((s) => s.kind === 'run')) {
      expect({ line: step.fence.line, expect: Boolean(step.expect) }).toEqual({ line: step.fence.line, expect: true });
    }
    expect(inPart(undefined).flatMap((s) => s.commands)).toEqual([expect.stringMatching(/^export CLUSTER_TOKEN=\S{16,} KVCTL_TOKEN=\S{16,}$/)]);
    for (const part of ['Replace a failed node', 'Grow from 3 to 5, and shrink back']) {
      expect(inPart(part)[0]).toMatchObject({ kind: 'skip', commands: [expect.stringMatching(/^npm run cluster -- /)] });
    }
  });

  it('sets the token the README exports', async () => {
    await walk(inPart(undefined));
    expect(exported.CLUSTER_TOKEN).toBe(exported.KVCTL_TOKEN);
  });

  it('Replace a failed node: remove node1, add node4, stop node2: the cluster still writes and node4 has every key', async () => {
    await walk(inPart('Replace a failed node'));
    expect(added).toHaveLength(1);
    expect(added[0].exit).toBeUndefined(); // node4 still runs
  });

  it('Grow from 3 to 5, and shrink back: node4 and node5 join as voters, and end once removed', async () => {
    await walk(inPart('Grow from 3 to 5, and shrink back'));
    expect(added).toHaveLength(2);
    // "terminals 3 and 2 print `node5 exited` and `node4 exited`, and their `npm run cluster -- add` ends"
    for (const [add, name] of [
      [added[0], 'node4'],
      [added[1], 'node5'],
    ] as const) {
      expect(await add.waitForExit(30_000)).toEqual({ code: 0, signal: null });
      expect(add.output()).toMatch(new RegExp(`^cluster: ${name} exited$`, 'm'));
    }
  });
});

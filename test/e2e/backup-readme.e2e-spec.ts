/**
 * The README's "Backup and restore" walkthrough, run as written: a cluster started with `npm run cluster`,
 * the section's commands in order (`npx kvctl snapshot save`, three `restore`s, reading back and writing on the
 * new cluster), and the new cluster started with the `npm run cluster` command the section gives (it runs in
 * the foreground, so the README marks it skipped and this test starts it, with those arguments). Outputs are
 * compared with the README's (`expect: text varying`: numbers and digests masked; see readme-steps.ts).
 *
 * The only substitutions: the ports (3201-3203 and 4201-4203 for the README's 3001-3003 and 4001-4003, which
 * are readme.e2e's: see README_PORTS; kvctl's default endpoints point at this cluster through KVCTL_ENDPOINTS),
 * and the example's files (`backups/`, `restored/`), which go to a temporary directory instead of the repository.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterScript, consecutiveFreePorts, README_PORTS, ROOT, sh } from '../support/cluster-script';
import { maskVarying, matchText, outputLines, readmeSteps, Step } from '../support/readme-steps';

jest.setTimeout(150_000);

const SECTION = 'Backup and restore';
const steps = readmeSteps(readFileSync(join(ROOT, 'README.md'), 'utf8'), [SECTION]);

const work = mkdtempSync(join(tmpdir(), 'raftkv-backup-readme-'));
let base: number = README_PORTS.backupReadme;
let restoredBase: number = README_PORTS.backupReadmeRestored;
let source: ClusterScript;
let restored: ClusterScript | undefined;

/** README text → this run's: ports, and the example's files under `work`. */
function rewrite(text: string): string {
  return text
    .replace(/\blocalhost:([34])00([1-9])\b/g, (_m, series: string, n: string) => `localhost:${(series === '3' ? base : restoredBase) + Number(n) - 1}`)
    .replace(/--base-port 4001\b/g, `--base-port ${restoredBase}`)
    .replace(/(^|[\s=])(backups|restored)(?=[/\s]|$)/gm, (_m, before: string, name: string) => `${before}${join(work, name)}`);
}

beforeAll(async () => {
  base = await consecutiveFreePorts(3, README_PORTS.backupReadme);
  do restoredBase = await consecutiveFreePorts(3, README_PORTS.backupReadmeRestored);
  while (Math.abs(restoredBase - base) < 3);
  // The README's bare `npx kvctl` asks 3001-3003 (readme.e2e's): point it at this cluster.
  const endpoints = [0, 1, 2].map((i) => `http://localhost:${base + i}`).join(',');
  source = ClusterScript.start(['--no-build', '--base-port', String(base)], join(work, 'data'), { KVCTL_ENDPOINTS: endpoints });
  await source.waitFor(/cluster: ready; node\d is the leader/);
});

afterAll(async () => {
  await Promise.all([source?.stop(), restored?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

async function runStep(step: Step): Promise<void> {
  const where = `README line ${step.fence.line}`;
  let stdout = '';
  for (const command of step.commands.map(rewrite)) {
    const run = await sh(command, source.env);
    if (run.code !== 0) throw new Error(`${where}: \`${command}\` exited ${run.code}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`);
    stdout += run.stdout;
  }
  const expect = step.expect;
  if (!expect) return;
  const mask = (lines: string[]) => (expect.varying ? lines.map(maskVarying) : lines);
  const wanted = outputLines(rewrite(expect.text));
  const got = outputLines(stdout);
  if (!matchText(mask(wanted), mask(got))) {
    throw new Error(`${where}: output differs\n--- README (line ${expect.line}, rewritten) ---\n${wanted.join('\n')}\n--- got ---\n${got.join('\n')}`);
  }
}

describe('README: Backup and restore', () => {
  it('has runnable steps with outputs, and starts the new cluster with npm run cluster', () => {
    const run = steps.filter((s) => s.kind === 'run');
    expect(run.length).toBeGreaterThanOrEqual(3);
    for (const step of run) expect({ line: step.fence.line, expect: Boolean(step.expect) }).toEqual({ line: step.fence.line, expect: true });
    const start = steps.filter((s) => s.kind === 'skip');
    expect(start.map((s) => s.commands)).toEqual([[expect.stringMatching(/^npm run cluster -- /)]]);
  });

  it('runs as written: save, restore three directories, a new cluster on them reads the key back and takes writes', async () => {
    for (const step of steps) {
      if (step.kind === 'run') {
        await runStep(step);
      } else if (step.kind === 'skip') {
        const args = rewrite(step.commands[0]).replace(/^npm run cluster -- /, '').split(/\s+/);
        const dataDir = args[args.indexOf('--data-dir') + 1];
        restored = ClusterScript.start(['--no-build', ...args], dataDir);
        await restored.waitFor(/cluster: ready; node\d is the leader/);
      } else {
        throw new Error(`README line ${step.fence.line}: a ${step.kind} step in ${SECTION}`);
      }
    }
    expect(restored).toBeDefined();
  });
});

/**
 * Mutation testing, reproducible: `npm run mutants -- [options]`.
 *
 * For each selected mutant of scripts/mutants/catalogue.ts: checks out the commit under test (HEAD by
 * default) into a throwaway git worktree in the OS temp dir, links this checkout's node_modules into it,
 * applies the mutant's edits there (each search string must occur exactly once), runs its kill commands in
 * order with a timeout until one fails, records which test or seed failed, and removes the worktree. The
 * checkout the script runs from is never modified (only `git worktree add/remove` bookkeeping in its .git).
 * Mutants run one after another: the suites already use every core.
 *
 * Exit status: 0 when every mutant ended as the catalogue expects (killed, or survived for the equivalent
 * ones), 1 otherwise, 2 on a bad command line.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { integerOption, parseCommandLine, UsageError, withUsage } from './lib/cli';
import { CATALOGUE, Mutant, Suite } from './mutants/catalogue';
import { Evidence, parseEvidence, summarize } from './mutants/evidence';
import { applyEdits, CatalogueError } from './mutants/mutate';

const USAGE = `Usage: npm run mutants -- [options]

Applies each mutant of scripts/mutants/catalogue.ts to a throwaway worktree of the commit under test,
runs the commands expected to kill it, and reports which test or seed did (or that it survived).

Options:
  --only ID,...      these mutants (any suite)
  --suite S          unit, sim or chaos (default: unit and sim; chaos mutants are slow)
  --list             list the selected mutants and check that each still applies; run nothing
  --baseline         run the selected mutants' kill commands on the unmutated commit instead (all must pass)
  --rev REV          the commit to mutate (default HEAD)
  --timeout S        per kill command, in seconds (default 600; chaos 1800)
  --command CMD      run CMD instead of the catalogue's kill commands (to look for a smaller one)
  --out FILE         write the results as JSON
  --markdown         also print the results as Markdown tables (for docs/consensus.md)
  --keep             keep each worktree (for inspection); its path is printed
  -h, --help         this text`;

type Status = 'killed' | 'survived' | 'timeout' | 'error';

interface CommandRun {
  command: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  seconds: number;
}

export interface MutantResult {
  id: string;
  rule: string;
  suite: Suite;
  file: string;
  status: Status;
  expected: 'kill' | 'survive';
  ok: boolean;
  /** The command that killed it (or the last one run). */
  command?: string;
  /** Wall time of the kill commands run, up to and including the one that killed it. */
  secondsToKill: number;
  /** Wall time including checkout and clean-up. */
  totalSeconds: number;
  runs: CommandRun[];
  summary: string;
  evidence?: Evidence;
  error?: string;
  /** The end of the failing command's output (or of the last one on survival). */
  outputTail?: string;
}

interface Options {
  selected: Mutant[];
  list: boolean;
  baseline: boolean;
  rev: string;
  timeoutS?: number;
  out?: string;
  markdown: boolean;
  keep: boolean;
  command?: string;
}

function readOptions(): Options | undefined {
  const { values } = parseCommandLine({
    options: {
      only: { type: 'string' },
      suite: { type: 'string' },
      list: { type: 'boolean' },
      baseline: { type: 'boolean' },
      rev: { type: 'string' },
      timeout: { type: 'string' },
      out: { type: 'string' },
      markdown: { type: 'boolean' },
      keep: { type: 'boolean' },
      command: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  let selected: Mutant[];
  if (values.suite !== undefined && !['unit', 'sim', 'chaos'].includes(values.suite)) {
    throw new UsageError(`--suite must be unit, sim or chaos (got ${values.suite})`);
  }
  if (values.only !== undefined) {
    const ids = values.only.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = ids.filter((id) => !CATALOGUE.some((m) => m.id === id));
    if (unknown.length > 0) throw new UsageError(`unknown mutant(s): ${unknown.join(', ')} (--list shows them)`);
    selected = CATALOGUE.filter((m) => ids.includes(m.id) && (values.suite === undefined || m.suite === values.suite));
  } else if (values.suite !== undefined) {
    selected = CATALOGUE.filter((m) => m.suite === values.suite);
  } else {
    selected = CATALOGUE.filter((m) => m.suite !== 'chaos');
  }
  if (selected.length === 0) throw new UsageError('no mutant selected');
  return {
    selected,
    list: values.list ?? false,
    baseline: values.baseline ?? false,
    rev: values.rev ?? 'HEAD',
    timeoutS: values.timeout === undefined ? undefined : integerOption('--timeout', values.timeout, 1),
    out: values.out,
    markdown: values.markdown ?? false,
    keep: values.keep ?? false,
    command: values.command,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The throwaway copy
// ---------------------------------------------------------------------------------------------------------

/** The repository this script belongs to (works from any clone). */
const REPO = execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: resolve(__dirname, '..'), encoding: 'utf8' }).trim();

function git(args: string[], cwd = REPO): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Copy {
  dir: string;
  remove(): void;
}

/** A detached worktree of `rev` in the temp dir, with this checkout's node_modules linked in. */
function makeCopy(rev: string, label: string): Copy {
  const dir = mkdtempSync(join(tmpdir(), `raft-kv-mutant-${label}-`));
  git(['worktree', 'add', '--detach', '--quiet', dir, rev]);
  const modules = join(dir, 'node_modules');
  symlinkSync(join(REPO, 'node_modules'), modules, 'dir');
  let removed = false;
  return {
    dir,
    remove() {
      if (removed) return;
      removed = true;
      // Unlink the shared node_modules first, so that nothing below ever walks into it.
      try {
        unlinkSync(modules);
      } catch {
        /* already gone */
      }
      try {
        git(['worktree', 'remove', '--force', '--force', dir]);
      } catch {
        rmSync(dir, { recursive: true, force: true });
        try {
          git(['worktree', 'prune']);
        } catch {
          /* best effort */
        }
      }
    },
  };
}

function revFile(rev: string, file: string): string {
  return git(['show', `${rev}:${file}`]);
}

// ---------------------------------------------------------------------------------------------------------
// Running a kill command
// ---------------------------------------------------------------------------------------------------------

const MAX_OUTPUT = 4 << 20;
let running: ChildProcess | undefined;

/** Kills the process group of a command this script started (its pid is the group's id). */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* the group is gone */
  }
}

function runCommand(command: string, cwd: string, timeoutS: number): Promise<CommandRun & { output: string }> {
  const t0 = Date.now();
  return new Promise((done) => {
    // Its own process group, so that a timeout ends the command and everything it started, and nothing else.
    const child = spawn('sh', ['-c', command], {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', CI: '1' },
    });
    running = child;
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > MAX_OUTPUT) output = output.slice(output.length - MAX_OUTPUT / 2);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutS * 1000);
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      killGroup(child); // stragglers of our own group (jest workers, a detached helper)
      running = undefined;
      done({ command, exitCode, signal, timedOut, seconds: (Date.now() - t0) / 1000, output });
    });
  });
}

const tail = (text: string, lines = 40) => text.split('\n').slice(-lines).join('\n');

function defaultTimeout(suite: Suite): number {
  return suite === 'chaos' ? 1800 : 600;
}

async function runMutant(m: Mutant, o: Options, copyRef: { current?: Copy }): Promise<MutantResult> {
  const t0 = Date.now();
  const expected = m.expect ?? 'kill';
  const base = { id: m.id, rule: m.rule, suite: m.suite, file: m.file, expected, runs: [] as CommandRun[] };
  let mutated: string;
  try {
    mutated = applyEdits(revFile(o.rev, m.file), m.edits, `${m.id} (${m.file})`);
  } catch (error) {
    const message = error instanceof CatalogueError ? error.message : `cannot read ${m.file} at ${o.rev}: ${(error as Error).message}`;
    return { ...base, status: 'error', ok: false, secondsToKill: 0, totalSeconds: 0, summary: message, error: message };
  }
  const copy = makeCopy(o.rev, m.id);
  copyRef.current = copy;
  try {
    writeFileSync(join(copy.dir, m.file), mutated);
    let status: Status = 'survived';
    let last: (CommandRun & { output: string }) | undefined;
    let seconds = 0;
    for (const command of o.command !== undefined ? [o.command] : m.kill) {
      process.stdout.write(`  $ ${command}\n`);
      last = await runCommand(command, copy.dir, o.timeoutS ?? defaultTimeout(m.suite));
      const { output, ...run } = last;
      base.runs.push(run);
      seconds += run.seconds;
      if (run.timedOut) {
        status = 'timeout';
        break;
      }
      if (run.exitCode !== 0) {
        status = 'killed';
        break;
      }
    }
    const evidence = status === 'killed' && last ? parseEvidence(last.output) : undefined;
    // With several kill commands, say which one killed it: the earlier ones did not.
    const which = status === 'killed' && base.runs.length > 1 ? `${last!.command}: ` : '';
    const summary =
      status === 'killed'
        ? which + (summarize(evidence!) || `exit code ${last!.exitCode ?? last!.signal}`)
        : status === 'timeout'
          ? `no verdict within ${o.timeoutS ?? defaultTimeout(m.suite)} s`
          : 'every kill command passed';
    const ok = (status === 'killed' && expected === 'kill') || (status === 'survived' && expected === 'survive');
    return {
      ...base,
      status,
      ok,
      command: last?.command,
      secondsToKill: Math.round(seconds * 10) / 10,
      totalSeconds: Math.round((Date.now() - t0) / 100) / 10,
      summary,
      evidence,
      outputTail: last ? tail(last.output) : undefined,
    };
  } finally {
    if (o.keep) console.log(`  kept ${copy.dir}`);
    else copy.remove();
    copyRef.current = undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------------------

function table(results: MutantResult[]): string {
  const rows = results.map((r) => [
    r.id,
    r.suite,
    r.status + (r.ok ? '' : r.expected === 'survive' ? ' (expected to survive!)' : ' (!)'),
    r.status === 'killed' ? `${r.secondsToKill.toFixed(1)} s` : '',
    r.summary,
  ]);
  const head = ['mutant', 'suite', 'result', 'time', 'killed by'];
  const widths = head.map((h, k) => Math.min(48, Math.max(h.length, ...rows.map((row) => row[k].length))));
  const fmt = (row: string[]) => row.map((c, k) => (k === row.length - 1 ? c : c.padEnd(widths[k]))).join('  ');
  return [fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}

function markdown(results: MutantResult[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out: string[] = [];
  for (const suite of ['unit', 'sim', 'chaos'] as Suite[]) {
    const rs = results.filter((r) => r.suite === suite);
    if (rs.length === 0) continue;
    out.push('', `| rule broken | mutant | killed by | time to kill |`, '| --- | --- | --- | --- |');
    for (const r of rs) {
      const by = r.status === 'killed' ? esc(r.summary) : `**${r.status}**${r.expected === 'survive' ? ' (expected: equivalent)' : ''}`;
      out.push(`| ${esc(r.rule)} | \`${r.id}\` | ${by} | ${r.status === 'killed' ? `${r.secondsToKill.toFixed(0)} s` : ''} |`);
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = readOptions();
  if (!o) return;
  const commit = git(['rev-parse', '--short=12', o.rev]).trim();

  if (o.list) {
    let stale = 0;
    for (const m of o.selected) {
      let state = 'applies';
      try {
        applyEdits(revFile(o.rev, m.file), m.edits, m.file);
      } catch (error) {
        state = `STALE: ${(error as Error).message}`;
        stale++;
      }
      console.log(`${m.id.padEnd(42)} ${m.suite.padEnd(5)} ${m.file}  ${state}\n    ${m.rule}\n    kill: ${m.kill.join(' || ')}`);
    }
    console.log(`\n${o.selected.length} mutant(s) at ${commit}; ${stale} stale`);
    if (stale > 0) process.exitCode = 1;
    return;
  }

  const copyRef: { current?: Copy } = {};
  const interrupt = () => {
    if (running) killGroup(running);
    copyRef.current?.remove();
    process.exit(130);
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);

  const t0 = Date.now();
  if (o.baseline) {
    const commands = o.command !== undefined ? [o.command] : [...new Set(o.selected.flatMap((m) => m.kill))];
    console.log(`mutants: baseline of ${commands.length} kill command(s) on ${commit}, unmutated`);
    const copy = makeCopy(o.rev, 'baseline');
    copyRef.current = copy;
    let failed = 0;
    try {
      for (const command of commands) {
        const run = await runCommand(command, copy.dir, o.timeoutS ?? 1800);
        const pass = run.exitCode === 0 && !run.timedOut;
        if (!pass) failed++;
        console.log(`${pass ? 'PASS' : 'FAIL'} ${run.seconds.toFixed(1)} s  ${command}${pass ? '' : `\n${tail(run.output)}`}`);
      }
    } finally {
      copy.remove();
    }
    console.log(`mutants: baseline ${failed === 0 ? 'clean' : `${failed} command(s) fail without any mutant`} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    if (failed > 0) process.exitCode = 1;
    return;
  }

  console.log(`mutants: ${o.selected.length} mutant(s) of ${commit}, one at a time, each in a throwaway worktree`);
  const results: MutantResult[] = [];
  for (const [k, m] of o.selected.entries()) {
    console.log(`[${k + 1}/${o.selected.length}] ${m.id} (${m.file}): ${m.rule}`);
    const r = await runMutant(m, o, copyRef);
    results.push(r);
    console.log(`  -> ${r.status}${r.status === 'killed' ? ` in ${r.secondsToKill.toFixed(1)} s` : ''}: ${r.summary}`);
    if (!r.ok && r.outputTail && r.status !== 'killed') console.log(r.outputTail.replace(/^/gm, '     '));
  }
  const totalS = (Date.now() - t0) / 1000;
  const bad = results.filter((r) => !r.ok);
  console.log(`\n${table(results)}\n`);
  console.log(
    `mutants: ${results.filter((r) => r.status === 'killed').length} killed, ${results.filter((r) => r.status === 'survived').length} survived ` +
      `(${results.filter((r) => r.status === 'survived' && r.expected === 'survive').length} expected), ` +
      `${results.filter((r) => r.status === 'timeout').length} timed out, ${results.filter((r) => r.status === 'error').length} stale; ` +
      `${totalS.toFixed(0)} s in all`,
  );
  if (o.markdown) console.log(markdown(results));
  if (o.out) {
    writeFileSync(o.out, JSON.stringify({ commit, startedAt: new Date(t0).toISOString(), totalSeconds: Math.round(totalS), results }, null, 2) + '\n');
    console.log(`mutants: results written to ${o.out}`);
  }
  if (bad.length > 0) {
    console.error(`mutants: not as expected: ${bad.map((r) => `${r.id} (${r.status})`).join(', ')}`);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  withUsage('mutants', main).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}

// Only for the spec: the checks behind --list, without running anything.
export function staleMutants(read: (file: string) => string = (f) => readFileSync(join(REPO, f), 'utf8')): string[] {
  const stale: string[] = [];
  for (const m of CATALOGUE) {
    if (!existsSync(join(REPO, m.file))) {
      stale.push(`${m.id}: ${m.file} does not exist`);
      continue;
    }
    try {
      applyEdits(read(m.file), m.edits, m.id);
    } catch (error) {
      stale.push((error as Error).message);
    }
  }
  return stale;
}

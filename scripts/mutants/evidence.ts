/**
 * What a kill command's output says about why it failed: jest's failing tests, the soak's failing seeds,
 * a scenario's replay seed, a chaos run's verdict. Pure functions over the captured output.
 */

export interface Evidence {
  /** Jest: the test files that failed. */
  files: string[];
  /** Jest: failing tests, as `describe › test` (in the order reported, no duplicates). */
  tests: string[];
  /** Soak: the seeds that failed, with the first line of each failure. */
  seeds: { seed: number; message: string }[];
  /** Scenario specs: the SIM_SEED values of the replay commands printed. */
  scenarioSeeds: number[];
  /** Chaos: the run's verdict line and the violation lines of its summary. */
  chaos: string[];
}

// Colour codes in case a tool ignores that its output is not a terminal.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

export function parseEvidence(output: string): Evidence {
  const lines = output.replace(ANSI, '').split(/\r?\n/);
  const files: string[] = [];
  const tests: string[] = [];
  const seeds: { seed: number; message: string }[] = [];
  const scenarioSeeds: number[] = [];
  const chaos: string[] = [];
  const add = <T>(list: T[], value: T) => {
    if (!list.includes(value)) list.push(value);
  };
  for (const line of lines) {
    let m = /^\s*FAIL\s+(?:unit\s+|e2e\s+)?(\S+\.ts)\b/.exec(line);
    if (m) add(files, m[1]);
    m = /^\s*● (.+?)\s*$/.exec(line);
    if (m && !/^Console$/.test(m[1])) add(tests, m[1]);
    m = /^seed (\d+) failed: (.*)$/.exec(line);
    if (m && !seeds.some((s) => s.seed === Number(m![1]))) seeds.push({ seed: Number(m[1]), message: m[2] });
    for (const s of line.matchAll(/SIM_SEED=(\d+)/g)) add(scenarioSeeds, Number(s[1]));
    if (/^chaos run (PASS|FAIL)\b/.test(line.trim()) || /^\s*(violation|lost writes|checker|replicas):/.test(line)) add(chaos, line.trim());
  }
  return { files, tests, seeds, scenarioSeeds, chaos };
}

/** One short line for the results table: which seed or test killed the mutant. */
export function summarize(e: Evidence, max = 3): string {
  const more = (n: number) => (n > max ? ` (+${n - max} more)` : '');
  if (e.seeds.length > 0) {
    const first = e.seeds[0].message.length > 90 ? `${e.seeds[0].message.slice(0, 87)}...` : e.seeds[0].message;
    return `seeds ${e.seeds.slice(0, max).map((s) => s.seed).join(', ')}${more(e.seeds.length)}: ${first}`;
  }
  if (e.tests.length > 0) return `${e.tests.slice(0, max).join('; ')}${more(e.tests.length)}`;
  if (e.scenarioSeeds.length > 0) return `SIM_SEED ${e.scenarioSeeds.slice(0, max).join(', ')}`;
  if (e.chaos.length > 0) return e.chaos.join('; ');
  if (e.files.length > 0) return e.files.join(', ');
  return '';
}

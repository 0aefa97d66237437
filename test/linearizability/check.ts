/**
 * Checks a history file (JSON Lines of HistoryOp, see history.ts) for linearizability.
 *
 *   node -r @swc-node/register test/linearizability/check.ts history.jsonl [--budget-ms N] [--memory-mb N] [--json]
 *
 * Prints the verdict, per-key figures and, for a violation, an explanation. Exit status: 0 linearizable,
 * 1 violation, 2 unknown (a budget ran out), 3 unreadable input or bad arguments.
 */
import { readFileSync } from 'node:fs';
import { nonNegativeOption, parseCommandLine, UsageError } from '../../scripts/lib/cli';
import { checkHistory, CheckOptions, CheckResult } from './checker';
import { HistoryFormatError, parseHistory } from './history';

export const EXIT = { linearizable: 0, violation: 1, unknown: 2, badInput: 3 } as const;

const USAGE = 'usage: check.ts <history.jsonl> [--budget-ms N] [--memory-mb N] [--json]';
const DEFAULT_BUDGET_MS = 300_000;

export interface Io {
  out(line: string): void;
  err(line: string): void;
  readFile(path: string): string;
}

const processIo: Io = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  readFile: (path) => readFileSync(path, 'utf8'),
};

/** Runs the CLI on `args` (without node and script) and returns the exit status. */
export function main(args: readonly string[], io: Io = processIo): number {
  let file: string;
  let json: boolean;
  const options: CheckOptions = { timeBudgetMs: DEFAULT_BUDGET_MS };
  try {
    const { values, positionals } = parseCommandLine({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        'budget-ms': { type: 'string' },
        'memory-mb': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      io.out(USAGE);
      return EXIT.linearizable;
    }
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'no history file given' : `unexpected argument ${positionals[1]}`);
    file = positionals[0];
    json = values.json!;
    if (values['budget-ms'] !== undefined) options.timeBudgetMs = nonNegativeOption('--budget-ms', values['budget-ms']);
    if (values['memory-mb'] !== undefined) options.memoryBudgetMb = nonNegativeOption('--memory-mb', values['memory-mb']);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`${e.message}\n${USAGE}`);
    return EXIT.badInput;
  }

  let result: CheckResult;
  try {
    result = checkHistory(parseHistory(io.readFile(file)), options);
  } catch (e) {
    if (e instanceof HistoryFormatError || (e as NodeJS.ErrnoException).code) {
      io.err(`${file}: ${(e as Error).message}`);
      return EXIT.badInput;
    }
    throw e;
  }

  if (json) io.out(JSON.stringify(result, null, 2));
  else report(file, result, io);
  return EXIT[result.verdict];
}

function report(file: string, r: CheckResult, io: Io): void {
  const keys = Object.entries(r.perKey);
  const ops = keys.reduce((sum, [, k]) => sum + k.ops, 0);
  io.out(`${file}: ${r.verdict.toUpperCase()} (${ops} operations on ${keys.length} key${keys.length === 1 ? '' : 's'} in ${r.elapsedMs.toFixed(0)} ms;` +
    ` dropped ${r.dropped.failed} failed, ${r.dropped.unknownReads} reads of unknown outcome)`);
  for (const [key, k] of keys) {
    const reason = k.reason ? ` (${k.reason})` : '';
    io.out(`  key ${JSON.stringify(key)}: ${k.verdict}${reason}, ${k.ops} ops, ${k.configurations} configurations, ${k.elapsedMs.toFixed(0)} ms`);
  }
  if (r.violation) io.out('\n' + r.violation.explanation);
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}

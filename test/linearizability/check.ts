/**
 * Checks a history file (JSON Lines of HistoryOp, see history.ts) for linearizability.
 *
 *   node -r @swc-node/register test/linearizability/check.ts history.jsonl [--budget-ms N] [--memory-mb N] [--json]
 *
 * Prints the verdict, per-key figures and, for a violation, an explanation. Exit status: 0 linearizable,
 * 1 violation, 2 unknown (a budget ran out), 3 unreadable input or bad arguments.
 */
import { readFileSync } from 'node:fs';
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
  let file: string | undefined;
  let json = false;
  const options: CheckOptions = { timeBudgetMs: DEFAULT_BUDGET_MS };
  for (let a = 0; a < args.length; a++) {
    const arg = args[a];
    const number = () => {
      const v = Number(args[++a]);
      if (!Number.isFinite(v) || v < 0) throw new UsageError(`${arg} needs a non-negative number`);
      return v;
    };
    try {
      if (arg === '--json') json = true;
      else if (arg === '--budget-ms') options.timeBudgetMs = number();
      else if (arg === '--memory-mb') options.memoryBudgetMb = number();
      else if (arg.startsWith('-') || file !== undefined) throw new UsageError(`unexpected argument ${arg}`);
      else file = arg;
    } catch (e) {
      io.err(`${(e as Error).message}\n${USAGE}`);
      return EXIT.badInput;
    }
  }
  if (file === undefined) {
    io.err(USAGE);
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

class UsageError extends Error {}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}

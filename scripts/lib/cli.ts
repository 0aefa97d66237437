/**
 * The one way this repository's scripts and runners read their command line (`npm run cluster`, `npm run
 * chaos`, `npm run bench`, the other benchmarks, the history checker): `node:util` parseArgs, strict (an
 * unknown flag, a flag without its value or an unexpected argument is an error), with errors turned into
 * one readable line. Each script keeps its own usage text, printed for `-h`/`--help`. kvctl, a shipped
 * command-line client with subcommands, uses commander instead.
 */
import { parseArgs, ParseArgsConfig } from 'node:util';

/** A bad command line: the script prints the message (and where to find the usage) and exits 2. */
export class UsageError extends Error {}

/** parseArgs (strict), its errors rethrown as UsageErrors with a readable message. */
export function parseCommandLine<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError(readable(error as NodeJS.ErrnoException));
  }
}

function readable(error: NodeJS.ErrnoException): string {
  const message = error.message;
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      // "Unknown option '--x'. To specify a positional argument starting with a '-', place it ..."
      const flag = /'([^']+)'/.exec(message)?.[1];
      return flag ? `unknown option '${flag}'` : message;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      // "Option '--x <value>' argument missing", "Option '-n, --nodes <value>' argument is ambiguous ..."
      const flag = /'(?:-\w, )?(-[^' ]+)/.exec(message)?.[1];
      if (flag && /argument missing/.test(message)) return `option '${flag}' needs a value`;
      return lowerFirst(message);
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const argument = /'([^']*)'/.exec(message)?.[1];
      return argument !== undefined ? `unexpected argument '${argument}'` : lowerFirst(message);
    }
    default:
      return lowerFirst(message);
  }
}

const lowerFirst = (text: string) => text.charAt(0).toLowerCase() + text.slice(1);

/** `value` as an integer in [min, max]; a UsageError naming the flag otherwise. */
export function integerOption(flag: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = value === undefined || value.trim() === '' ? NaN : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`${flag} must be ${range} (got ${value})`);
  }
  return n;
}

/** `value` as a number >= 0; a UsageError naming the flag otherwise. */
export function nonNegativeOption(flag: string, value: string | undefined): number {
  const n = value === undefined || value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag} needs a non-negative number (got ${value})`);
  return n;
}

/**
 * Runs a script's main: a UsageError prints `<name>: <message>` and a pointer to `--help` on stderr and
 * exits with `usageExit` (2 unless the script documents another code); anything else propagates.
 */
export async function withUsage<T>(name: string, main: () => T | Promise<T>, usageExit = 2): Promise<T> {
  try {
    return await main();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${name}: ${error.message}\n${name}: \`--help\` lists the options\n`);
    process.exit(usageExit);
  }
}

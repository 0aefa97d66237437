import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { KvClient, ListPage } from './kv-client';
import { ExitCode, KvctlError } from './kvctl-error';
import { formatMembersTable } from './members-table';
import type * as SnapshotCommands from './snapshot-commands';
import { formatStatusTable } from './status-table';
import { tlsFetch } from './tls-options';
import { formatWatchEvent, watchCommand } from './watch-command';

export const DEFAULT_ENDPOINTS = 'http://localhost:3001,http://localhost:3002,http://localhost:3003';

/** Where kvctl writes and what it reads: the process's streams, or a test's. */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The whole of standard input (for `put <key>` without a value), or undefined when it is a terminal. */
  readStdin: () => Promise<string | undefined>;
}

interface GlobalOptions {
  endpoints: string;
  json: boolean;
  timeout: number;
  token?: string;
  cacert?: string;
  cert?: string;
  key?: string;
}

/** The version in raft-kv's package.json, the first one up from this file (sources, dist/ or the Docker image). */
function version(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'raft-kv' && pkg.version) return pkg.version;
    } catch {
      // no package.json here: look further up
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

function positiveInt(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new KvctlError(`--timeout must be a positive number of milliseconds (got '${raw}')`, ExitCode.Usage);
  return value;
}

/** A log index given on the command line (--if-index): an integer ≥ 0. */
function logIndex(raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value)) {
    throw new KvctlError(`--if-index must be a log index, an integer >= 0 (got '${raw}')`, ExitCode.Usage);
  }
  return value;
}

function count(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new KvctlError(`${name} must be a positive integer (got '${raw}')`, ExitCode.Usage);
  return value;
}

/** The most keys one `GET /kv` page may ask for. */
const LIST_PAGE = 1000;

/**
 * Follows the cursor from page to page until the prefix is exhausted or `limit` keys are in. Each page is
 * one consistent read; keys written between pages may be missed (behind the cursor) or seen.
 */
export async function listAll(
  client: Pick<KvClient, 'list'>,
  prefix: string,
  options: { limit?: number; keysOnly?: boolean; stale?: boolean },
): Promise<ListPage> {
  const items: ListPage['items'] = [];
  let after: string | undefined;
  for (;;) {
    const wanted = options.limit === undefined ? LIST_PAGE : Math.min(LIST_PAGE, options.limit - items.length);
    const page = await client.list(prefix, { after, limit: wanted, keysOnly: options.keysOnly, stale: options.stale });
    items.push(...page.items);
    const done = options.limit !== undefined && items.length >= options.limit;
    if (!page.more || page.next === null || done) {
      return { items, more: page.more, next: page.more ? items[items.length - 1].key : null };
    }
    after = page.next;
  }
}

/** A value on one line: as it is, or JSON-quoted when it holds a line break or tab (which would split the line). */
function printable(value: string): string {
  return /[\n\r\t]/.test(value) ? JSON.stringify(value) : value;
}

function nonNegativeInt(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new KvctlError(`expected a whole number (got '${raw}')`, ExitCode.Usage);
  return value;
}

/** A TTL given on the command line (--ttl): whole seconds ≥ 1 (the node checks the upper bound). */
function ttlSeconds(raw: string): number {
  if (!/^[1-9]\d{0,9}$/.test(raw)) throw new KvctlError(`--ttl must be a whole number of seconds >= 1 (got '${raw}')`, ExitCode.Usage);
  return Number(raw);
}

/** The exit code of a command that succeeded as a request but reports a problem (status without a leader). */
interface Outcome {
  exitCode: ExitCode;
}

function buildProgram(io: Io, outcome: Outcome): Command {
  const program = new Command('kvctl');
  const client = () => {
    const opts = program.opts<GlobalOptions>();
    return new KvClient({
      endpoints: opts.endpoints.split(',').filter((e) => e.trim() !== ''),
      timeoutMs: opts.timeout,
      token: opts.token,
      fetch: tlsFetch({ cacert: opts.cacert, cert: opts.cert, key: opts.key }),
    });
  };
  const json = () => program.opts<GlobalOptions>().json;
  const print = (value: unknown) => io.stdout(`${JSON.stringify(value)}\n`);

  program
    .description('Command-line client for the raft-kv cluster: finds the leader itself and follows redirects.')
    .version(version(), '-V, --version')
    .addOption(
      new Option('-e, --endpoints <urls>', 'comma-separated node URLs; any one node is enough')
        .env('KVCTL_ENDPOINTS')
        .default(DEFAULT_ENDPOINTS),
    )
    .option('--json', 'print JSON, for scripts', false)
    .addOption(new Option('--token <token>', 'API token, for nodes started with API_TOKENS_FILE').env('KVCTL_TOKEN'))
    .addOption(new Option('--cacert <file>', "PEM file of the CA that signed the nodes' certificates (https:// endpoints)").env('KVCTL_CACERT'))
    .addOption(new Option('--cert <file>', 'PEM client certificate, for nodes that ask for one (with --key)').env('KVCTL_CERT'))
    .addOption(new Option('--key <file>', 'PEM private key of --cert').env('KVCTL_KEY'))
    .addOption(new Option('-t, --timeout <ms>', 'give up after this long, retries included').argParser(positiveInt).default(10_000))
    .showHelpAfterError('(run kvctl --help for usage)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes: 0 done; 1 failed (no node reachable, no leader, server error, a damaged snapshot file,
a membership change refused); 2 invalid arguments (also: a file that exists, a directory that is not
empty); 3 key or member not found; 4 write or membership change outcome unknown (not confirmed in time;
it may still take effect; a put or delete is retried with its Idempotency-Key until --timeout first, and
applies at most once); 5 condition failed (put --if-index/--create, delete --if-index): nothing written.

Examples:
  kvctl put username alice
  kvctl get username
  kvctl list user/
  kvctl list --keys-only --limit 10
  kvctl --endpoints http://localhost:3002 status
  kvctl --endpoints https://localhost:3001 --cacert ca.pem get username
  kvctl --json get username          (with createIndex and modIndex)
  kvctl put --create lock me         (only if 'lock' does not exist)
  kvctl put --if-index 42 lock you   (only if 'lock' is unchanged since index 42)
  kvctl watch username
  kvctl watch --prefix config/ --from-index 120
  kvctl snapshot save backup.snap
  kvctl member list
  kvctl member add node4 http://10.0.0.4:3001`,
    );

  program
    .command('put')
    .description('write a value (read from standard input when not given)')
    .argument('<key>')
    .argument('[value]')
    .addOption(new Option('--if-index <n>', "write only if the key's modIndex is still <n> (If-Match; else exit 5)").argParser(logIndex))
    .option('--create', 'write only if the key does not exist (If-None-Match: *; else exit 5)', false)
    .addOption(new Option('--ttl <seconds>', 'the key expires this many seconds later (the leader deletes it)').argParser(ttlSeconds))
    .action(async (key: string, value: string | undefined, options: { ifIndex?: number; create: boolean; ttl?: number }) => {
      const data = value ?? (await io.readStdin());
      if (data === undefined) throw new KvctlError('missing value: give it as an argument or on standard input', ExitCode.Usage);
      const result = await client().put(key, data, { ifIndex: options.ifIndex, create: options.create, ttl: options.ttl });
      if (json()) print(result);
      else io.stdout(`OK (index ${result.index})\n`);
    });

  program
    .command('get')
    .description('read a value (linearizable: confirmed by the leader)')
    .argument('<key>')
    .option('--stale', "read the first reachable node's own copy at once, possibly behind the leader", false)
    .action(async (key: string, options: { stale: boolean }) => {
      const result = await client().get(key, { stale: options.stale });
      if (json()) print(result);
      else io.stdout(`${result.value}\n`);
    });

  program
    .command('list')
    .alias('ls')
    .description('list the keys starting with [prefix] (all keys without one) and their values, in UTF-8 byte order')
    .argument('[prefix]', 'the keys to list start with it', '')
    .option('-l, --limit <n>', 'at most this many keys (default: every one, fetched a page at a time)', (raw) => count('--limit', raw))
    .option('-k, --keys-only', 'print the keys only', false)
    .option('--stale', "read the first reachable node's own copy at once, possibly behind the leader", false)
    .action(async (prefix: string, options: { limit?: number; keysOnly: boolean; stale: boolean }) => {
      const result = await listAll(client(), prefix, options);
      if (json()) print(result);
      else io.stdout(result.items.map((item) => (options.keysOnly ? `${item.key}\n` : `${item.key}\t${printable(item.value ?? '')}\n`)).join(''));
    });

  program
    .command('delete')
    .alias('del')
    .description('delete a key (succeeds whether or not it exists, unless --if-index)')
    .argument('<key>')
    .addOption(new Option('--if-index <n>', "delete only if the key exists with modIndex <n> (If-Match; else exit 5)").argParser(logIndex))
    .action(async (key: string, options: { ifIndex?: number }) => {
      const result = await client().delete(key, { ifIndex: options.ifIndex });
      if (json()) print(result);
      else io.stdout(`OK (index ${result.index}${result.existed === false ? '; the key did not exist' : ''})\n`);
    });

  program
    .command('watch')
    .description(
      'print each change of a key (or of every key under --prefix) as it is applied: one line per event, ' +
        'reconnecting with Last-Event-ID (no change missed or repeated) until interrupted',
    )
    .argument('[key]')
    .option('--prefix <prefix>', 'watch every key starting with this prefix instead of one key')
    .option('--from-index <index>', 'replay the changes from this log index on first (exit 1 if no node keeps them)', nonNegativeInt)
    .option('--count <n>', 'exit after this many events', nonNegativeInt)
    .action(async (key: string | undefined, options: { prefix?: string; fromIndex?: number; count?: number }) => {
      const opts = program.opts<GlobalOptions>();
      const stop = new AbortController();
      const onSigint = () => stop.abort();
      process.once('SIGINT', onSigint);
      try {
        await watchCommand({
          endpoints: opts.endpoints.split(',').filter((e) => e.trim() !== ''),
          key,
          prefix: options.prefix,
          fromIndex: options.fromIndex,
          count: options.count,
          token: opts.token,
          fetch: tlsFetch({ cacert: opts.cacert, cert: opts.cert, key: opts.key }),
          timeoutMs: opts.timeout,
          signal: stop.signal,
          onEvent: (event) => (json() ? print(event) : io.stdout(formatWatchEvent(event))),
          onNotice: io.stderr,
        });
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
    });

  program
    .command('status')
    .description('every node: id, URL, state, term, leader, commit and applied index (exit 1 without a leader)')
    .action(async () => {
      const view = await client().status();
      if (json()) print(view);
      else io.stdout(formatStatusTable(view));
      if (view.nodes.every((n) => !n.status)) {
        throw new KvctlError(`cannot reach any node: ${view.nodes.map((n) => `${n.endpoint}: ${n.error}`).join('; ')}`, ExitCode.Failed);
      }
      if (!view.leader) outcome.exitCode = ExitCode.Failed;
    });

  const member = program
    .command('member')
    .description('the cluster membership: list the members, add one (a learner unless --voter), promote a learner, remove one');

  member
    .command('list')
    .alias('ls')
    .description("every member: id, URL, role; on the leader's view, its match index and last contact")
    .action(async () => {
      const view = await client().members();
      if (json()) print(view);
      else io.stdout(formatMembersTable(view));
    });

  member
    .command('add')
    .description('add a member at <url> (where the others reach it), as a learner to promote once caught up, or --voter at once')
    .argument('<nodeId>')
    .argument('<url>')
    .option('--voter', 'add it as a voter at once (it counts in quorums before it has caught up)', false)
    .action(async (nodeId: string, url: string, options: { voter: boolean }) => {
      const { added, result } = await client().addMember(nodeId, url, options);
      const what = `${nodeId} (${result.member?.url ?? url}) as a ${result.member?.role ?? (options.voter ? 'voter' : 'learner')}`;
      if (json()) print(result);
      else io.stdout(added ? `Added ${what} (index ${result.index})\n` : `Already a member: ${what}\n`);
    });

  member
    .command('promote')
    .description('make a learner a voter (refused until it has caught up with the leader)')
    .argument('<nodeId>')
    .action(async (nodeId: string) => {
      const result = await client().promoteMember(nodeId);
      if (json()) print(result);
      else io.stdout(`${nodeId} is a voter (index ${result.index})\n`);
    });

  member
    .command('remove')
    .alias('rm')
    .description('remove a member (refused when the voters left could not form a quorum of the members reachable now)')
    .argument('<nodeId>')
    .action(async (nodeId: string) => {
      const result = await client().removeMember(nodeId);
      if (json()) print(result);
      else io.stdout(`Removed ${nodeId} (index ${result.index}); members: ${result.members.map((m) => m.nodeId).join(', ')}\n`);
    });

  const snapshot = program
    .command('snapshot')
    .description('backups of the whole map: save one from the cluster, check a file, restore it into a new data directory');
  // Loaded on first use: it brings the storage library, which the other commands do not need.
  const commands = (): Promise<typeof SnapshotCommands> => import('./snapshot-commands');

  snapshot
    .command('save')
    .description("download a consistent snapshot from the leader to <file> (via <file>.tmp: fsynced, verified, renamed)")
    .argument('<file>')
    .option('-f, --force', 'replace <file> if it exists', false)
    .action(async (file: string, options: { force: boolean }) => {
      const { saveSnapshot, formatSnapshotReport } = await commands();
      const report = await saveSnapshot(client(), file, options);
      if (json()) print(report);
      else io.stdout(`Snapshot saved to ${file}\n${formatSnapshotReport(report)}`);
    });

  snapshot
    .command('status')
    .description('verify a snapshot file (every checksum, the digest, the end) and print its metadata (exit 1 if damaged)')
    .argument('<file>')
    .action(async (file: string) => {
      const { snapshotStatus, formatSnapshotReport } = await commands();
      const report = await snapshotStatus(file);
      if (json()) print(report);
      else io.stdout(`${file}\n${formatSnapshotReport(report)}`);
    });

  snapshot
    .command('restore')
    .description("verify a snapshot file and make a new member's data directory from it (refuses a directory that is not empty)")
    .argument('<file>')
    .requiredOption('--wal-dir <dir>', "the new node's WAL_DIR (created; must be empty or absent)")
    .requiredOption('--node-id <id>', "the NODE_ID the node will be started with")
    .action(async (file: string, options: { walDir: string; nodeId: string }) => {
      const { restoreSnapshot, formatRestoreReport } = await commands();
      const report = await restoreSnapshot(file, options, io.stderr);
      if (json()) print(report);
      else io.stdout(formatRestoreReport(report));
    });

  return program;
}

/** Runs kvctl with process-style arguments (`argv[0]` node, `argv[1]` the script); returns the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  const outcome: Outcome = { exitCode: ExitCode.Ok };
  const program = buildProgram(io, outcome);
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      return ExitCode.Usage;
    }
    await program.parseAsync(argv);
    return outcome.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0) return ExitCode.Ok;
      return ExitCode.Usage;
    }
    if (error instanceof KvctlError) {
      io.stderr(`kvctl: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr(`kvctl: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    return ExitCode.Failed;
  }
}

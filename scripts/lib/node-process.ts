/**
 * One kv-node process: the one way this repository's scripts and suites start, watch and end nodes.
 * `npm run cluster` (scripts/cluster.ts), the end-to-end tests (test/support/local-cluster.ts), the chaos
 * suite (test/chaos/cluster.ts) and the benchmark (through LocalCluster) all run their nodes through it.
 *
 * What it does: builds a node's environment (nodeEnv, clusterEnvs; joinEnv for a node that joins); spawns
 * the production build (`dist/`, `npm run build`), optionally through a wrapper such as `ip netns exec`; sends the node's output
 * to a log file, or reads it line by line (to print it, prefixed, and keep the last lines for failures);
 * waits until it answers; stops it (SIGTERM, then SIGKILL after a timeout), kills it (SIGKILL), pauses and
 * resumes it (SIGSTOP, SIGCONT), and starts it again on the same data directory.
 *
 * Contract: it signals only the pids it spawned, and only while they run (never a process group, never by
 * name). Every node still running when this process exits is SIGKILLed, so that a crashed script or test run
 * leaves no node behind holding its port and its data directory's lock.
 *
 * Plain Node (no Nest, no test framework): scripts load it with `node -r @swc-node/register`, jest with
 * @swc/jest; the node's build (`nest build`, apps/ and libs/) never includes it.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { NodeStatus } from '../../apps/kvctl/src/kv-client';

export const REPO_ROOT = resolve(__dirname, '../..');
/** The production build's entry point (`npm run build`). */
export const NODE_MAIN = join(REPO_ROOT, 'dist/apps/kv-node/apps/kv-node/src/main.js');
/** How long stop() waits after SIGTERM before it sends SIGKILL (a leader hands over first: a few seconds). */
export const STOP_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------------------------------------------------
// Environment

/** One member of a cluster, as its peers and its process see it. */
export interface Member {
  /** NODE_ID. */
  name: string;
  /** HTTP_PORT: where the process listens. */
  port: number;
  /** ADVERTISE_URL: the member's identity, what its peers list in PEER_URLS. */
  url: string;
  /** WAL_DIR. */
  dir: string;
  /** BIND_HOST; unset: the node's default. */
  bindHost?: string;
}

/**
 * The environment that makes a process this member of a cluster of `members`: NODE_ID, HTTP_PORT,
 * ADVERTISE_URL, WAL_DIR, BIND_HOST when given, PEER_URLS (every other member's URL, in order), then
 * `extra`, which overrides any of them (a test may give two nodes one NODE_ID on purpose).
 */
export function nodeEnv(member: Member, members: readonly Member[], extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    NODE_ID: member.name,
    HTTP_PORT: String(member.port),
    ...(member.bindHost !== undefined ? { BIND_HOST: member.bindHost } : {}),
    ADVERTISE_URL: member.url,
    PEER_URLS: members
      .filter((m) => m !== member)
      .map((m) => m.url)
      .join(','),
    WAL_DIR: member.dir,
  };
  return { ...env, ...extra };
}

/**
 * The environment of a member that joins a running cluster: NODE_ID, HTTP_PORT, BIND_HOST when given,
 * ADVERTISE_URL, WAL_DIR and JOIN (the URL of a member to ask), no PEER_URLS: it learns the members from the
 * cluster. `join` undefined: a restart on its own data, which needs no JOIN. Then `extra`, which overrides.
 */
export function joinEnv(member: Member, join: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  const { PEER_URLS: _peers, ...env } = nodeEnv(member, [member]);
  return { ...env, ...(join !== undefined ? { JOIN: join } : {}), ...extra };
}

/** nodeEnv for every member; `extra(i)` gives node i's extra variables. */
export function clusterEnvs(members: readonly Member[], extra: (i: number) => Record<string, string> = () => ({})): Record<string, string>[] {
  return members.map((m, i) => nodeEnv(m, members, extra(i)));
}

// ---------------------------------------------------------------------------------------------------------
// Output

/** Nest's start-up chatter, which formatLogLine hides unless asked to show it. */
const NOISE = /^(InstanceLoader|RoutesResolver|RouterExplorer|NestFactory|NestApplication)$/;

export interface FormatOptions {
  /** Also show Nest's start-up lines (module loading, route mapping). */
  verbose?: boolean;
  /** Colours a text with an SGR code (31 red, 33 yellow); the default leaves it plain. */
  paint?: (code: number, text: string) => string;
}

/**
 * One line a node wrote, made readable: a JSON log entry (LOG_FORMAT=json) becomes
 * `HH:MM:SS.mmm LEVEL [context] message`, followed by its stack's lines; anything else is kept as is.
 * Returns the lines to show: none for Nest's start-up chatter unless `verbose`.
 */
export function formatLogLine(line: string, options: FormatOptions = {}): string[] {
  const paint = options.paint ?? ((_code: number, text: string) => text);
  if (!line.startsWith('{')) return [line];
  let entry: { level?: string; timestamp?: number; message?: unknown; context?: string; stack?: unknown };
  try {
    entry = JSON.parse(line);
  } catch {
    return [line]; // not a log entry: as is
  }
  if (entry === null || typeof entry !== 'object') return [line];
  if (entry.context && NOISE.test(entry.context) && !options.verbose) return [];
  const time = new Date(entry.timestamp ?? Date.now()).toISOString().slice(11, 23);
  const level = (entry.level === 'log' ? 'info' : (entry.level ?? 'info')).toUpperCase().padEnd(5);
  const coloured = level.startsWith('ERR') || level.startsWith('FATAL') ? paint(31, level) : level.startsWith('WARN') ? paint(33, level) : level;
  const message = typeof entry.message === 'string' ? entry.message : JSON.stringify(entry.message);
  const lines = [`${time} ${coloured} ${entry.context ? `[${entry.context}] ` : ''}${message}`];
  if (Array.isArray(entry.stack)) lines.push(...entry.stack.filter(Boolean).map(String));
  else if (typeof entry.stack === 'string') lines.push(entry.stack);
  return lines.flatMap((l) => l.split('\n'));
}

/** The lines as one text, each prefixed (`node1 | ...`) and newline-terminated; '' for none. */
export function prefixLines(prefix: string, lines: readonly string[]): string {
  return lines.map((l) => `${prefix}${l}\n`).join('');
}

/** The last `capacity` lines pushed: a node's recent output, for a failure's message. */
export class LineBuffer {
  private readonly lines: string[] = [];

  constructor(readonly capacity = 5000) {}

  push(line: string): void {
    this.lines.push(line);
    // Trim in batches: one splice per capacity/2 lines instead of one shift per line.
    if (this.lines.length > this.capacity * 1.5) this.lines.splice(0, this.lines.length - this.capacity);
  }

  /** The last `count` lines (default: all kept), newline-terminated. */
  text(count = this.capacity): string {
    const kept = this.lines.slice(-Math.min(count, this.capacity));
    return kept.length === 0 ? '' : `${kept.join('\n')}\n`;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The process

export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stop() or kill() ended it; false: it ended on its own, or a signal we did not send. */
  expected: boolean;
  /** Set when the process could not be started at all (spawn failed). */
  error?: string;
}

/** How a node ended, in a few words: `stopped`, `exited (code 1)`, `killed (SIGKILL)`, `cannot start: ...`. */
export function describeExit(exit: Pick<NodeExit, 'code' | 'signal' | 'error'>): string {
  if (exit.error !== undefined) return `cannot start: ${exit.error}`;
  if (exit.signal) return `killed (${exit.signal})`;
  return exit.code === 0 ? 'stopped' : `exited (code ${exit.code})`;
}

export interface NodeProcessOptions {
  /** NODE_ID, for messages. */
  name: string;
  /** The node's variables (nodeEnv); added to this process's environment unless `inheritEnv` is false. */
  env: Record<string, string>;
  /** Where this process reaches the node's HTTP API (status(), waitServing()). */
  clientUrl: string;
  inheritEnv?: boolean;
  /** The entry point to run (default NODE_MAIN). */
  main?: string;
  /** Node's own flags, before the entry point (`-r` preloads). */
  execArgv?: string[];
  /** Turns the command line (node, flags, main) into the one to spawn, e.g. `ip netns exec ns ...`. */
  wrap?: (argv: string[]) => { file: string; args: string[] };
  cwd?: string;
  /**
   * Output: with `logFile`, the node writes straight to that file (appended; each start first writes a line
   * `----- <time> <logLabel>: start #n -----`); otherwise it is read line by line, kept (the last
   * `keepLines`, see logs()) and passed to `onLine`.
   */
  logFile?: string;
  logLabel?: string;
  onLine?: (line: string) => void;
  keepLines?: number;
  /** 'pipe': the node's stdin is a pipe this process holds open (see scripts/cluster-watchdog.js). */
  stdin?: 'ignore' | 'pipe';
  /** Its own process group, so that a terminal's Ctrl-C reaches only this process, not the node. */
  detached?: boolean;
  /** Creates WAL_DIR before each start. */
  makeDir?: boolean;
  /** Called once per incarnation when it has ended, expectedly or not. */
  onExit?: (exit: NodeExit) => void;
}

/** Every node process running now, from any NodeProcess in this process: SIGKILLed when this process exits. */
const live = new Set<NodeProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const node of live) node.killSync();
  });
}

/**
 * One node, started and restarted on the same data directory. Each start() spawns a new process (an
 * incarnation); pid, running and paused describe the current one, lastExit the previous one's end.
 */
export class NodeProcess {
  /** The current incarnation; undefined before the first start and once it has exited. */
  child?: ChildProcess;
  /** How the last incarnation ended; undefined while one runs or before any ran. */
  lastExit?: NodeExit;
  paused = false;
  /** How many times start() spawned a process. */
  starts = 0;
  private expecting = false;
  private exited: Promise<NodeExit> = Promise.resolve({ code: null, signal: null, expected: true });
  private readonly buffer: LineBuffer;

  constructor(readonly options: NodeProcessOptions) {
    this.buffer = new LineBuffer(options.keepLines);
  }

  get name(): string {
    return this.options.name;
  }

  get env(): Record<string, string> {
    return this.options.env;
  }

  get url(): string {
    return this.options.clientUrl;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The command line start() spawns. */
  command(): { file: string; args: string[] } {
    const argv = [process.execPath, ...(this.options.execArgv ?? []), this.options.main ?? NODE_MAIN];
    return this.options.wrap ? this.options.wrap(argv) : { file: argv[0], args: argv.slice(1) };
  }

  /** Spawns a new incarnation; does nothing while one runs. */
  start(): void {
    if (this.child) return;
    const o = this.options;
    if (o.makeDir && o.env.WAL_DIR) mkdirSync(o.env.WAL_DIR, { recursive: true });
    this.starts++;
    let out: 'pipe' | number = 'pipe';
    if (o.logFile) {
      out = openSync(o.logFile, 'a');
      writeSync(out, `----- ${new Date().toISOString()} ${o.logLabel ?? 'launcher'}: start #${this.starts} -----\n`);
    }
    const { file, args } = this.command();
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd: o.cwd ?? REPO_ROOT,
        env: o.inheritEnv === false ? o.env : { ...process.env, ...o.env },
        stdio: [o.stdin ?? 'ignore', out, out],
        detached: o.detached ?? false,
      });
    } finally {
      if (typeof out === 'number') closeSync(out);
    }
    this.child = child;
    this.paused = false;
    this.expecting = false;
    this.lastExit = undefined;
    live.add(this);
    installExitHook();
    child.stdin?.on('error', () => undefined); // the node may exit before the pipe is flushed
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        this.buffer.push(line);
        o.onLine?.(line);
      });
    }
    this.exited = new Promise((done) => {
      let ended = false;
      const end = (exit: Omit<NodeExit, 'expected'>) => {
        if (ended) return;
        ended = true;
        if (this.child === child) this.child = undefined;
        live.delete(this);
        this.paused = false;
        const result = { ...exit, expected: this.expecting };
        this.lastExit = result;
        o.onExit?.(result);
        done(result);
      };
      child.on('exit', (code, signal) => end({ code, signal }));
      // A spawn failure (no such file): no 'exit' follows.
      child.on('error', (error) => {
        if (child.pid === undefined || child.exitCode !== null) end({ code: null, signal: null, error: error.message });
      });
    });
  }

  /** Sends a signal to the current incarnation, if one runs. */
  signal(signal: NodeJS.Signals): void {
    if (!this.child) return;
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }

  /**
   * A clean shutdown: SIGTERM (a leader hands over, the WAL is closed), SIGKILL if it has not exited after
   * `timeoutMs`. Resolves once it has exited (at once if none runs).
   */
  async stop(timeoutMs = STOP_TIMEOUT_MS): Promise<NodeExit | undefined> {
    if (!this.child) return undefined;
    this.expecting = true;
    this.signal('SIGTERM');
    if (this.paused) this.signal('SIGCONT'); // a stopped process acts on SIGTERM only once continued
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A crash: SIGKILL (works on a paused process too). Resolves once it has exited. */
  async kill(): Promise<NodeExit | undefined> {
    if (!this.child) return undefined;
    this.expecting = true;
    this.signal('SIGKILL');
    return this.exited;
  }

  /** SIGKILL without waiting: for exit handlers. */
  killSync(): void {
    if (!this.child) return;
    this.expecting = true;
    this.signal('SIGKILL');
  }

  /** SIGSTOP: the process freezes, its sockets stay open (a long GC pause, a stalled VM). */
  pause(): void {
    if (!this.child || this.paused) return;
    this.signal('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.child || !this.paused) return;
    this.signal('SIGCONT');
    this.paused = false;
  }

  /** Stops the current incarnation (if any) cleanly and starts a new one on the same data directory. */
  async restart(timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    await this.stop(timeoutMs);
    this.start();
  }

  /** Resolves with how the current incarnation ended (the last one's end if none runs); rejects after timeoutMs. */
  async waitForExit(timeoutMs = 15_000): Promise<NodeExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error(`timed out after ${timeoutMs} ms waiting for ${this.name} to exit`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Its `GET /status` answer; throws unless it answers 200 within timeoutMs. */
  status(timeoutMs = 2000): Promise<StatusBody> {
    return this.get<StatusBody>('/status', timeoutMs);
  }

  /** GET `path` on the node: the JSON body of a 200 answer; throws on anything else. */
  async get<T>(path: string, timeoutMs = 2000): Promise<T> {
    const response = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${this.name} ${path} answered ${response.status}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }

  /**
   * Waits until the node answers `path` (default /status; `/health/ready` once it also knows a leader) with
   * 200. Rejects if the process exits first, or after timeoutMs, with the end of its output.
   */
  async waitServing(timeoutMs = 30_000, path = '/status'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!this.child) throw new Error(`${this.name} ${this.lastExit ? describeExit(this.lastExit) : 'is not running'}\n${this.tail()}`);
      try {
        await this.get(path, 1000);
        return;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((ok) => setTimeout(ok, 100));
    }
    throw new Error(`${this.name} did not answer ${path} within ${timeoutMs} ms (${last})\n${this.tail()}`);
  }

  /** Everything kept of its output (every incarnation), or the log file's contents. */
  logs(): string {
    if (this.options.logFile) return existsSync(this.options.logFile) ? readFileSync(this.options.logFile, 'utf8') : '';
    return this.buffer.text();
  }

  /** The last lines of its output. */
  tail(lines = 40): string {
    if (this.options.logFile) return this.logs().split('\n').slice(-lines - 1).join('\n');
    return this.buffer.text(lines);
  }
}

/** A node's `GET /status` answer: the shape kvctl reads (docs/api.md). */
export type StatusBody = NodeStatus;

/**
 * `npm run cluster`: a local cluster of kv-node processes in one terminal, no Docker.
 *
 *   npm run cluster [-- --nodes 5] [--base-port 3001] [--data-dir ./data] [--clean]
 *   npm run cluster -- stop|start|restart|kill [node1 ...]
 *   npm run cluster -- ps
 *   npm run cluster -- add [nodeN]
 *
 * The first form is the supervisor: it starts the production build (rebuilt first when the sources are
 * newer), node N on port base+N-1 with its data in DIR/nodeN, prints every node's output prefixed and
 * coloured by node, says when the cluster is ready and how to try it, and stops every node cleanly on
 * Ctrl-C. The other forms talk to that supervisor through a Unix socket in the data directory, so that
 * the README's walkthroughs read the same as with Docker Compose (`docker-compose stop node1`). `add` runs
 * one more node in the terminal it is typed in, joining the running cluster (JOIN): Ctrl-C there stops it.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, fstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { integerOption, parseCommandLine, UsageError } from './lib/cli';
import { addedMember, addTarget, ClusterInfo, joinThrough, nextNodeName } from './lib/cluster-add';
import {
  clusterEnvs,
  describeExit,
  formatLogLine,
  joinEnv,
  Member,
  NODE_MAIN as MAIN,
  NodeProcess,
  prefixLines,
  REPO_ROOT as ROOT,
  StatusBody,
} from './lib/node-process';

const KVCTL_MAIN = join(ROOT, 'dist/apps/kvctl/apps/kvctl/src/main.js');
const WATCHDOG = join(__dirname, 'cluster-watchdog.js');
const COLOURS = [36, 33, 35, 32, 34, 96, 93, 95, 92];
const READY_TIMEOUT_MS = 30_000;

const USAGE = `usage:
  npm run cluster [-- --nodes 3] [--base-port 3001] [--data-dir ./data] [--host localhost] [--clean]
      Starts a local cluster in this terminal. Ctrl-C stops every node.
  npm run cluster -- stop|start|restart|kill [node1 ...]
  npm run cluster -- ps
      Controls the running cluster from another terminal, as docker-compose does its services:
      stop (clean shutdown), kill (SIGKILL, a crash), start, restart; every node when none is named.
  npm run cluster -- add [nodeN]
      Runs one more node in this terminal and joins it to the running cluster (JOIN=<a member's URL>):
      the next free nodeN, on port base+N-1, data in DIR/nodeN; it starts as a learner and becomes a
      voter once caught up. Ctrl-C stops only that node. Naming an added node whose data is there
      starts it again (no JOIN). \`ps\`, stop and start do not know added nodes.

options:
  -n, --nodes N        number of nodes, 1 to 9 (default 3)
  -p, --base-port P    node1 listens on port P, node2 on P+1, ... (default 3001)
  -d, --data-dir DIR   node N keeps its data in DIR/nodeN (default $CLUSTER_DATA_DIR, else ./data)
      --host HOST      host name in the nodes' URLs (default localhost, bound to 127.0.0.1;
                       any other name binds 0.0.0.0)

environment:
  CLUSTER_TOKEN        the nodes' shared secret for peer traffic (16+ characters); unset: a random
                       one, new for each run
      --clean          delete the nodes' data before starting
      --no-build       never rebuild the node, even when dist/ is older than the sources
  -v, --verbose        also print Nest's start-up lines
  -h, --help           this text
`;

type Command = 'up' | 'stop' | 'start' | 'restart' | 'kill' | 'ps' | 'add';
const COMMANDS: Command[] = ['up', 'stop', 'start', 'restart', 'kill', 'ps', 'add'];

interface Options {
  command: Command;
  targets: string[];
  nodes: number;
  basePort: number;
  dataDir: string;
  host: string;
  clean: boolean;
  build: boolean;
  verbose: boolean;
}

function parseOptions(argv: string[]): Options {
  const parsed = parseCommandLine({
    args: argv,
    allowPositionals: true,
    options: {
      nodes: { type: 'string', short: 'n', default: '3' },
      'base-port': { type: 'string', short: 'p', default: '3001' },
      'data-dir': { type: 'string', short: 'd', default: process.env.CLUSTER_DATA_DIR || './data' },
      host: { type: 'string', default: 'localhost' },
      clean: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const [first, ...rest] = positionals;
  const command = (first ?? 'up') as Command;
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command '${first}' (expected one of: ${COMMANDS.join(', ')})`);
  if ((command === 'up' || command === 'ps') && rest.length > 0) throw new UsageError(`'${command}' takes no node names`);
  if (command === 'add') addTarget(rest);
  const nodes = integerOption('--nodes', values.nodes, 1, 9);
  const basePort = Number(values['base-port']);
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + nodes - 1 > 65535) {
    throw new UsageError(`--base-port must be a port number (got ${values['base-port']})`);
  }
  return {
    command,
    targets: rest,
    nodes,
    basePort,
    dataDir: resolve(values['data-dir']!),
    host: values.host!,
    clean: values.clean!,
    build: !values['no-build'],
    verbose: values.verbose!,
  };
}

/** The supervisor's control socket: in the data directory, unless that path is too long for a socket. */
function socketPath(dataDir: string): string {
  const path = join(dataDir, 'cluster.sock');
  if (Buffer.byteLength(path) < 100) return path;
  return join(tmpdir(), `raftkv-cluster-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}.sock`);
}

const useColour = Boolean(process.env.FORCE_COLOR) || (Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
const paint = (code: number, text: string) => (useColour ? `\x1b[${code}m${text}\x1b[0m` : text);
const say = (line: string) => process.stdout.write(`${paint(1, 'cluster')}: ${line}\n`);

// ---------------------------------------------------------------------------------------------------
// Control commands (another terminal): one JSON request line, then text lines back, then the exit code.
// ---------------------------------------------------------------------------------------------------

interface ControlRequest {
  /** `info`: the ClusterInfo `add` needs, as one JSON line (not a user command). */
  command: Exclude<Command, 'up' | 'add'> | 'info';
  targets: string[];
}

type ControlReply = { out: string } | { exit: number };

/**
 * Sends one request to the supervisor of the cluster whose data is in `dataDir`; `onLine` gets each text line
 * it answers. Resolves with the exit code it gives; rejects with a UsageError when no supervisor answers there.
 */
function control(dataDir: string, request: ControlRequest, onLine: (line: string) => void): Promise<number> {
  const path = socketPath(dataDir);
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let exitCode: number | undefined;
    socket.on('connect', () => {
      socket.write(`${JSON.stringify(request)}\n`);
      const lines = createInterface({ input: socket });
      lines.on('error', () => undefined); // reported by the socket's own handler below
      lines.on('line', (line) => {
        const reply = JSON.parse(line) as ControlReply;
        if ('out' in reply) onLine(reply.out);
        else exitCode = reply.exit;
      });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(
          new UsageError(
            `no cluster is running with its data in ${dataDir}\n` +
              `  start one with \`npm run cluster\` (or pass the --data-dir it was started with)`,
          ),
        );
      } else {
        reject(new UsageError(`cannot reach the cluster's supervisor at ${path}: ${error.message}`));
      }
    });
    socket.on('close', () => {
      if (exitCode === undefined) reject(new UsageError('the supervisor closed the connection without an answer'));
      else resolve(exitCode);
    });
  });
}

async function runControl(options: Options): Promise<void> {
  const request: ControlRequest = { command: options.command as ControlRequest['command'], targets: options.targets };
  let code: number;
  try {
    code = await control(options.dataDir, request, (line) => process.stdout.write(`${line}\n`));
  } catch (error) {
    process.stderr.write(`cluster: ${(error as Error).message}\n`);
    process.exit(1);
  }
  process.exit(code);
}

// ---------------------------------------------------------------------------------------------------
// The supervisor.
// ---------------------------------------------------------------------------------------------------

async function fetchStatus(node: NodeProcess): Promise<StatusBody | undefined> {
  return node.status(1000).catch(() => undefined);
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/**
 * One node of the cluster: a NodeProcess with the watchdog preloaded (scripts/cluster-watchdog.js: the node
 * stops when this supervisor is gone), in its own process group, its output printed prefixed.
 */
class Node {
  readonly process: NodeProcess;
  /** Set while this supervisor is stopping or killing the node on purpose. */
  private stopping = false;
  /** How the node last ended: shown by `ps`; undefined while running or never started. */
  ended?: string;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly url: string,
    readonly port: number,
    readonly bindHost: string,
    env: Record<string, string>,
    private readonly prefix: string,
    verbose: boolean,
    onUnexpectedExit: (node: Node) => void,
  ) {
    this.process = new NodeProcess({
      name,
      env,
      clientUrl: url,
      main: MAIN,
      execArgv: ['-r', WATCHDOG],
      // The watchdog's pipe: it closes when this supervisor dies, however it dies.
      stdin: 'pipe',
      // Its own process group, so that Ctrl-C reaches only the supervisor, which then stops the nodes one
      // signal each (a node's second signal means "exit at once").
      detached: true,
      // Only the last lines are kept in memory: the terminal has the whole output.
      keepLines: 200,
      onLine: (line) => {
        process.stdout.write(prefixLines(this.prefix, formatLogLine(line, { verbose, paint })));
      },
      onExit: (exit) => {
        this.ended = describeExit(exit);
        process.stdout.write(prefixLines(this.prefix, [this.ended]));
        if (!this.stopping) onUnexpectedExit(this);
      },
    });
  }

  get running(): boolean {
    return this.process.running;
  }

  start(): void {
    if (this.process.running) return;
    this.stopping = false;
    this.ended = undefined;
    this.process.start();
  }

  /** SIGTERM (clean shutdown) or SIGKILL (a crash); resolves once the process has exited. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (!this.process.running) return;
    this.stopping = true;
    await (signal === 'SIGKILL' ? this.process.kill() : this.process.stop());
  }
}

interface ExistingCluster {
  node: string;
  members: string[];
}

/**
 * The initial member set recorded in DIR/nodeN/meta.json by a previous run, if any node has one: each
 * initial voter as `name=url` (members are known by NODE_ID; the URLs are where the node reached them).
 */
function recordedCluster(dataDir: string): ExistingCluster | undefined {
  if (!existsSync(dataDir)) return undefined;
  for (const entry of readdirSync(dataDir).sort()) {
    const meta = join(dataDir, entry, 'meta.json');
    if (!/^node\d+$/.test(entry) || !existsSync(meta)) continue;
    try {
      const json = JSON.parse(readFileSync(meta, 'utf8').split('\n')[1] ?? '') as { initialVoters?: unknown; addresses?: Record<string, unknown> };
      if (Array.isArray(json.initialVoters) && json.initialVoters.includes(entry)) {
        return { node: entry, members: json.initialVoters.map((id) => `${String(id)}=${String(json.addresses?.[String(id)] ?? '?')}`) };
      }
    } catch {
      // unreadable: the node itself will say what is wrong with it
    }
  }
  return undefined;
}

async function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((ok) => {
    const server = createServer();
    server.once('error', () => ok(false));
    server.listen(port, host, () => server.close(() => ok(true)));
  });
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds the node and kvctl unless dist/ has both and is newer than every source file. */
function buildIfNeeded(): void {
  const sources = Math.max(...['apps', 'libs', 'config'].map((d) => newestSource(join(ROOT, d))));
  if (existsSync(MAIN) && existsSync(KVCTL_MAIN) && statSync(MAIN).mtimeMs >= sources) return;
  say(existsSync(MAIN) ? 'the sources changed since the last build; building (npm run build)...' : 'building the node (npm run build)...');
  const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) throw new UsageError('the build failed');
}

/**
 * Started by another program through a pipe (a test, a CI script) rather than from a terminal: calls
 * `stop` when that program goes away and the pipe closes, so that no node is left running.
 */
function whenParentPipeCloses(stop: () => void): void {
  let stdin;
  try {
    stdin = fstatSync(0);
  } catch {
    return;
  }
  if (!stdin.isFIFO() && !stdin.isSocket()) return;
  process.stdin.on('end', stop);
  process.stdin.on('error', () => undefined);
  process.stdin.resume();
}

class Supervisor {
  readonly nodes: Node[];
  private server?: Server;
  private shuttingDown = false;
  private lastSignalAt = 0;
  private readonly socket: string;
  /** Whether the nodes' CLUSTER_TOKEN was generated for this run (not taken from the environment). */
  private readonly generatedToken: boolean;
  /** The nodes' CLUSTER_TOKEN (given to `add`, whose node must hold it too). */
  private readonly token: string;
  private readonly bindHost: string;
  /** Commands run one at a time, so that two terminals cannot interleave a stop and a start. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: Options) {
    this.socket = socketPath(options.dataDir);
    const names = Array.from({ length: options.nodes }, (_, i) => `node${i + 1}`);
    const urls = names.map((_, i) => `http://${options.host}:${options.basePort + i}`);
    const local = options.host === 'localhost' || options.host === '127.0.0.1';
    const bindHost = local ? '127.0.0.1' : '0.0.0.0';
    const width = Math.max(...names.map((n) => n.length));
    const members: Member[] = names.map((name, i) => ({
      name,
      port: options.basePort + i,
      url: urls[i],
      dir: join(options.dataDir, name),
      bindHost,
    }));
    // Peer traffic carries a shared secret (docs/operations.md, "Who can do what"): the user's CLUSTER_TOKEN,
    // else a random one for this run. Every node of a run is started by this supervisor, so they all share it.
    this.generatedToken = !process.env.CLUSTER_TOKEN;
    const token = (this.token = process.env.CLUSTER_TOKEN || randomBytes(24).toString('base64url'));
    this.bindHost = bindHost;
    const envs = clusterEnvs(members, () => ({ LOG_FORMAT: process.env.LOG_FORMAT || 'json', CLUSTER_TOKEN: token }));
    this.nodes = members.map((m, i) => {
      const prefix = `${paint(COLOURS[i % COLOURS.length], `${m.name.padEnd(width)} |`)} `;
      return new Node(m.name, i, m.url, m.port, bindHost, envs[i], prefix, options.verbose, (node) => this.unexpectedExit(node));
    });
  }

  /** Refuses to start where it cannot work, with one line saying why and what to do. */
  async preflight(): Promise<void> {
    const { dataDir } = this.options;
    if (await this.supervisorAnswers()) {
      throw new UsageError(`a cluster is already running with its data in ${dataDir} (\`npm run cluster -- ps\` lists it)`);
    }
    if (this.options.clean) {
      for (const entry of existsSync(dataDir) ? readdirSync(dataDir) : []) {
        if (/^node\d+$/.test(entry)) rmSync(join(dataDir, entry), { recursive: true, force: true });
      }
    }
    const recorded = recordedCluster(dataDir);
    const wanted = this.nodes.map((n) => `${n.name}=${n.url}`).sort();
    if (recorded && recorded.members.slice().sort().join(',') !== wanted.join(',')) {
      throw new UsageError(
        `${dataDir} holds the data of another cluster (${recorded.node}'s members: ${recorded.members.join(', ')}; ` +
          `asked for: ${wanted.join(', ')}). Start it with its own options, use another --data-dir, or --clean to delete it.`,
      );
    }
    const busy: number[] = [];
    for (const node of this.nodes) {
      if (!(await portIsFree(node.port, node.bindHost))) busy.push(node.port);
    }
    if (busy.length > 0) {
      throw new UsageError(`port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} already in use (another cluster? pick others with --base-port)`);
    }
    mkdirSync(dataDir, { recursive: true });
  }

  private supervisorAnswers(): Promise<boolean> {
    return new Promise((ok) => {
      const probe = createConnection(this.socket);
      probe.once('connect', () => {
        probe.destroy();
        ok(true);
      });
      probe.once('error', () => ok(false));
    });
  }

  async run(): Promise<void> {
    await this.preflight();
    if (this.options.build) buildIfNeeded();
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => this.onSignal(signal));
    this.stopWithParentPipe();
    await this.listen();
    this.printBanner();
    for (const node of this.nodes) node.start();
    const ready = await this.waitReady(this.nodes);
    if (this.shuttingDown) return;
    if (ready.ok) this.printReady(ready.leader!, ready.term!);
    else say(`not ready after ${READY_TIMEOUT_MS / 1000} s: ${ready.reason}`);
  }

  private stopWithParentPipe(): void {
    whenParentPipeCloses(() => {
      if (this.shuttingDown) return;
      say('standard input closed (the program that started the cluster is gone): stopping every node');
      void this.shutdown(0);
    });
  }

  private printBanner(): void {
    const { dataDir, nodes } = this.options;
    const width = Math.max(...this.nodes.map((n) => n.url.length));
    const lines = [
      '',
      `${paint(1, 'cluster')}: starting ${nodes} node${nodes > 1 ? 's' : ''}, data in ${dataDir}`,
      ...this.nodes.map(
        (n) => `  ${paint(COLOURS[n.index % COLOURS.length], n.name)}  ${n.url.padEnd(width)}   Swagger UI ${n.url}/docs   metrics ${n.url}/metrics`,
      ),
      `  peer traffic: ${this.generatedToken ? 'a CLUSTER_TOKEN generated for this run' : 'the CLUSTER_TOKEN of this environment'}, from the members' addresses only`,
      '',
      'Ctrl-C stops every node. From another terminal: npm run cluster -- stop|start|restart|kill [node...], ps',
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }

  private printReady(leader: Node, term: number): void {
    const lines = [
      '',
      `${paint(1, 'cluster')}: ready; ${leader.name} is the leader (term ${term}). Try, in another terminal:`,
      `  curl -L -X PUT ${leader.url}/kv/username -H "Content-Type: application/json" -d '{"value":"alice"}'`,
      `  curl -L ${leader.url}/kv/username`,
      `  curl ${leader.url}/status`,
      `  npx kvctl --endpoints ${this.nodes.map((n) => n.url).join(',')} status`,
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }

  /**
   * Waits until every running node follows one leader and each of `nodes` (if running) has applied
   * everything the leader had committed when first seen: the cluster serves, and those nodes caught up.
   */
  async waitReady(nodes: Node[], timeoutMs = READY_TIMEOUT_MS): Promise<{ ok: boolean; leader?: Node; term?: number; reason?: string }> {
    const deadline = Date.now() + timeoutMs;
    let reason = 'no node answers yet';
    let target: number | undefined;
    while (Date.now() < deadline && !this.shuttingDown) {
      const running = this.nodes.filter((n) => n.running);
      if (running.length * 2 <= this.nodes.length) {
        return { ok: false, reason: `only ${running.length} of ${this.nodes.length} nodes run: a majority is needed to elect a leader` };
      }
      const statuses = await Promise.all(running.map((n) => fetchStatus(n.process)));
      const leaderStatus = statuses.find((s) => s?.isLeader);
      const leader = leaderStatus && running.find((n) => n.name === leaderStatus.nodeId);
      if (!leader || !leaderStatus) {
        reason = 'no leader elected yet';
      } else {
        target ??= leaderStatus.commitIndex;
        const lagging = running.filter((n, i) => {
          const s = statuses[i];
          return !s || s.leader !== leader.name || (nodes.includes(n) && s.appliedIndex < target!);
        });
        if (lagging.length === 0) return { ok: true, leader, term: leaderStatus.term };
        reason = `waiting for ${lagging.map((n) => n.name).join(', ')} to follow ${leader.name} and catch up`;
      }
      await sleep(200);
    }
    return { ok: false, reason };
  }

  private unexpectedExit(node: Node): void {
    if (this.shuttingDown) return;
    if (this.nodes.every((n) => !n.running) && this.nodes.every((n) => n.ended !== 'stopped' && !n.ended?.startsWith('killed'))) {
      say('every node failed; stopping');
      void this.shutdown(1);
      return;
    }
    say(`${node.name} ${node.ended} unexpectedly; \`npm run cluster -- start ${node.name}\` starts it again`);
  }

  private onSignal(signal: NodeJS.Signals): void {
    const now = Date.now();
    // Ctrl-C reaches this process twice: from the terminal, and forwarded by npm. One press is one signal.
    if (now - this.lastSignalAt < 1000) return;
    this.lastSignalAt = now;
    if (this.shuttingDown) {
      say('killing every node');
      for (const node of this.nodes) node.process.killSync();
      process.exit(1);
    }
    say(`${signal}: stopping every node (press Ctrl-C again to kill them)`);
    void this.shutdown(0);
  }

  private async shutdown(code: number): Promise<void> {
    this.shuttingDown = true;
    await this.queue.catch(() => undefined);
    const running = this.nodes.filter((n) => n.running);
    await Promise.all(running.map((n) => n.stop()));
    this.server?.close();
    try {
      unlinkSync(this.socket);
    } catch {
      // already gone
    }
    const failed = running.filter((n) => n.ended !== 'stopped');
    say(code === 0 && failed.length === 0 ? 'every node stopped cleanly' : 'stopped');
    process.exit(code === 0 && failed.length > 0 ? 1 : code);
  }

  private async listen(): Promise<void> {
    try {
      unlinkSync(this.socket); // stale: preflight found no supervisor answering on it
    } catch {
      // none
    }
    this.server = createServer((socket) => this.serve(socket));
    await new Promise<void>((ok, fail) => {
      this.server!.once('error', fail);
      this.server!.listen(this.socket, ok);
    });
  }

  private serve(socket: Socket): void {
    socket.on('error', () => undefined);
    const lines = createInterface({ input: socket });
    lines.on('error', () => undefined);
    lines.once('line', (line) => {
      lines.close();
      const reply = (message: ControlReply) => {
        if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
      };
      let request: ControlRequest;
      try {
        request = JSON.parse(line) as ControlRequest;
      } catch {
        reply({ out: 'cluster: malformed request' });
        reply({ exit: 2 });
        socket.end();
        return;
      }
      const run = () =>
        this.execute(request, (out) => reply({ out }))
          .then((exit) => reply({ exit }))
          .catch((error: Error) => {
            reply({ out: `cluster: ${error.message}` });
            reply({ exit: 1 });
          })
          .finally(() => socket.end());
      this.queue = this.queue.then(run, run);
    });
  }

  /** Runs one control command; returns its exit code. */
  private async execute(request: ControlRequest, out: (line: string) => void): Promise<number> {
    if (this.shuttingDown) {
      out('cluster: shutting down');
      return 1;
    }
    if (request.command === 'info') {
      const info: ClusterInfo = {
        basePort: this.options.basePort,
        host: this.options.host,
        bindHost: this.bindHost,
        token: this.token,
        nodes: this.nodes.map((n) => ({ name: n.name, url: n.url, running: n.running })),
      };
      out(JSON.stringify(info));
      return 0;
    }
    if (request.command === 'ps') {
      const width = Math.max(...this.nodes.map((n) => n.url.length));
      out(`${'NAME'.padEnd(6)} ${'URL'.padEnd(width)}  ${'PID'.padEnd(7)} STATE`);
      for (const n of this.nodes) {
        const state = n.running ? 'running' : n.ended ?? 'stopped';
        out(`${n.name.padEnd(6)} ${n.url.padEnd(width)}  ${String(n.process.pid ?? '-').padEnd(7)} ${state}`);
      }
      return 0;
    }
    const unknown = request.targets.filter((t) => !this.nodes.some((n) => n.name === t));
    if (unknown.length > 0) {
      out(`cluster: no node named ${unknown.join(', ')} (this cluster has ${this.nodes.map((n) => n.name).join(', ')})`);
      return 2;
    }
    const targets = request.targets.length > 0 ? this.nodes.filter((n) => request.targets.includes(n.name)) : this.nodes;
    const verb = { stop: 'Stopping', kill: 'Killing', start: 'Starting', restart: 'Restarting' }[request.command];
    say(`${verb.toLowerCase()} ${targets.map((n) => n.name).join(', ')} (asked from another terminal)`);

    if (request.command === 'stop' || request.command === 'kill') {
      const wasRunning = targets.map((n) => n.running);
      await Promise.all(targets.map((n) => n.stop(request.command === 'kill' ? 'SIGKILL' : 'SIGTERM')));
      targets.forEach((n, i) => out(`${verb} ${n.name} ... ${wasRunning[i] ? 'done' : 'not running'}`));
      return 0;
    }

    if (request.command === 'restart') await Promise.all(targets.map((n) => n.stop('SIGTERM')));
    const toStart = targets.filter((n) => !n.running);
    for (const n of toStart) n.start();
    const ready = await this.waitReady(toStart);
    for (const n of targets) {
      if (!toStart.includes(n)) out(`${verb} ${n.name} ... already running`);
      else if (!n.running) out(`${verb} ${n.name} ... failed: ${n.ended} (its output is in the cluster's terminal)`);
      else out(`${verb} ${n.name} ... ${ready.ok ? 'done' : `started, not ready: ${ready.reason}`}`);
    }
    if (toStart.some((n) => !n.running)) return 1;
    return ready.ok || this.nodes.filter((n) => n.running).length * 2 <= this.nodes.length ? 0 : 1;
  }
}

// ---------------------------------------------------------------------------------------------------
// `add`: one more node in this terminal, joining the running cluster.
// ---------------------------------------------------------------------------------------------------

async function clusterInfo(dataDir: string): Promise<ClusterInfo> {
  const lines: string[] = [];
  const code = await control(dataDir, { command: 'info', targets: [] }, (line) => lines.push(line));
  if (code !== 0 || lines.length !== 1) throw new UsageError(`the cluster's supervisor did not describe the cluster: ${lines.join(' ')}`);
  return JSON.parse(lines[0]) as ClusterInfo;
}

const answersStatus = (url: string): Promise<boolean> =>
  fetch(`${url}/status`, { signal: AbortSignal.timeout(1000) }).then(
    (response) => response.ok,
    () => false,
  );

/** The role the node has in its own view of the membership (GET /cluster/members), once it has one. */
async function roleOf(url: string, name: string, token: string): Promise<string | undefined> {
  try {
    const response = await fetch(`${url}/cluster/members`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(1000) });
    if (!response.ok) return undefined;
    const view = (await response.json()) as { members?: Array<{ nodeId: string; role: string }> };
    return view.members?.find((m) => m.nodeId === name)?.role;
  } catch {
    return undefined;
  }
}

/**
 * Starts nodeN (the next free one unless named) beside the cluster whose supervisor runs on `dataDir`, with
 * JOIN set to a node of it that answers, or without JOIN on the node's own data; prints its output like the
 * cluster's nodes', says when it is a learner and a voter, and stops it (by pid) on Ctrl-C.
 */
async function runAdd(options: Options): Promise<void> {
  const info = await clusterInfo(options.dataDir);
  const taken = [...info.nodes.map((n) => n.name), ...(existsSync(options.dataDir) ? readdirSync(options.dataDir) : [])];
  const name = addTarget(options.targets) ?? nextNodeName(taken);
  if (info.nodes.some((n) => n.name === name)) {
    throw new UsageError(`${name} is one of the cluster's own nodes (\`npm run cluster -- start ${name}\` starts it)`);
  }
  const member = addedMember(name, info, options.dataDir);
  const restart = existsSync(member.dir) && readdirSync(member.dir).length > 0;
  if (!(await portIsFree(member.port, info.bindHost))) throw new UsageError(`port ${member.port} is already in use (does ${name} run already?)`);
  const join = restart ? undefined : await joinThrough(info, answersStatus);
  if (!restart && !join) throw new UsageError('no node of the cluster answers: start them (`npm run cluster -- start`) before adding one');
  if (options.build) buildIfNeeded();
  mkdirSync(member.dir, { recursive: true });

  const env = joinEnv(member, join, { LOG_FORMAT: process.env.LOG_FORMAT || 'json', CLUSTER_TOKEN: info.token });
  const index = Number(name.slice('node'.length)) - 1;
  const prefix = `${paint(COLOURS[index % COLOURS.length], `${name} |`)} `;
  const node: Node = new Node(name, index, member.url, member.port, info.bindHost, env, prefix, options.verbose, () => {
    // Exit 0 is also how a node removed from the cluster ends.
    say(node.ended === 'stopped' ? `${name} exited` : `${name} ${node.ended}`);
    process.exit(node.ended === 'stopped' ? 0 : 1);
  });

  let stopping = false;
  let lastSignalAt = 0;
  const stop = (signal: string) => {
    const now = Date.now();
    // Ctrl-C reaches this process twice: from the terminal, and forwarded by npm. One press is one signal.
    if (now - lastSignalAt < 1000) return;
    lastSignalAt = now;
    if (stopping) {
      say(`killing ${name}`);
      node.process.killSync();
      process.exit(1);
    }
    stopping = true;
    say(`${signal}: stopping ${name} (press Ctrl-C again to kill it); the cluster keeps running`);
    void node.stop().then(() => process.exit(node.ended === 'stopped' ? 0 : 1));
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));
  whenParentPipeCloses(() => stop('standard input closed'));

  const how = restart ? `starting it again on its data in ${member.dir}` : `joining through ${join}, data in ${member.dir}`;
  process.stdout.write(
    `\n${paint(1, 'cluster')}: adding ${paint(COLOURS[index % COLOURS.length], name)} ${member.url} (${how})\n` +
      `  Ctrl-C stops ${name} only. From another terminal: npx kvctl --endpoints ${member.url} member list\n\n`,
  );
  node.start();
  let role: string | undefined;
  const deadline = Date.now() + 2 * READY_TIMEOUT_MS;
  while (!stopping && node.running && role !== 'voter' && Date.now() < deadline) {
    const now = await roleOf(member.url, name, info.token);
    if (now !== undefined && now !== role) say(now === 'voter' ? `${name} is a voter` : `${name} is a ${now}; it becomes a voter once caught up`);
    role = now ?? role;
    await sleep(500);
  }
}

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
    if (options.command === 'add') return await runAdd(options);
    if (options.command !== 'up') return await runControl(options);
    await new Supervisor(options).run();
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`cluster: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

void main();

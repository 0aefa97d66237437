/**
 * The node processes of a chaos run: the production build (`dist/`, `npm run build`), one process per node,
 * started on the run's network (cluster-net.ts), each with its own data directory and log file under the
 * run directory. The build is copied into the run directory first (snapshotBuild): every incarnation of
 * every node runs the same code, even if `dist/` is rebuilt (and, with it, deleted) during a long run. The nemesis kills, restarts, pauses and resumes them through this class; anything else
 * that ends a node (an exit code, a signal we did not send) is recorded as a crash, which fails the run.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { eventually, http, NODE_MAIN, sleep, StatusBody } from '../support/local-cluster';
import { registerCleanup } from './cleanup';
import { ClusterNet, NodeEndpoint } from './cluster-net';

export interface NodeTimings {
  heartbeatMs: number;
  electionMs: number;
  /** REQUEST_TIMEOUT_MS; a list gives node i the (i mod length)-th value. */
  requestMs: number | readonly number[];
}

/**
 * Defaults for chaos: fast failure detection (elections within about a second), so that faults and
 * recoveries come every few seconds; and request timeouts that differ between nodes. Long ones (5 s, the
 * production default) outlast most faults, so pending requests are answered late, after the fault healed:
 * where a driver's bookkeeping goes wrong. Short ones (1 s, 2 s) give up during faults, and their writes,
 * answered "outcome unknown", may still commit later.
 */
export const CHAOS_TIMINGS: NodeTimings = { heartbeatMs: 50, electionMs: 500, requestMs: [5000, 1000, 2000] };

/** Node i's request timeout. */
export function requestTimeout(timings: NodeTimings, i: number): number {
  return typeof timings.requestMs === 'number' ? timings.requestMs : timings.requestMs[i % timings.requestMs.length];
}

export interface Crash {
  node: string;
  /** Harness clock (ms since the run started). */
  at: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines the node wrote. */
  tail: string;
}

export class ChaosNode {
  process?: ChildProcess;
  paused = false;
  /** Set while we are killing it: an exit then is expected. */
  private killing = false;
  private exited?: Promise<void>;
  starts = 0;

  constructor(
    readonly index: number,
    readonly endpoint: NodeEndpoint,
    readonly dir: string,
    readonly logPath: string,
    private readonly env: Record<string, string>,
    private readonly argv: { file: string; args: string[] },
    private readonly onCrash: (crash: Omit<Crash, 'at'>) => void,
  ) {}

  get name(): string {
    return this.endpoint.name;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  start(): void {
    if (this.process) return;
    mkdirSync(this.dir, { recursive: true });
    const log = openSync(this.logPath, 'a');
    writeSync(log, `----- ${new Date().toISOString()} harness: start #${++this.starts} -----\n`);
    const child = spawn(this.argv.file, this.argv.args, {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.process = child;
    this.paused = false;
    this.killing = false;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        if (this.process === child) this.process = undefined;
        if (!this.killing) this.onCrash({ node: this.name, code, signal, tail: this.tail() });
        resolve();
      });
      child.on('error', () => undefined);
    });
  }

  /** SIGKILL (works on a paused process too); resolves once it is gone. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.killing = true;
    child.kill('SIGKILL');
    await this.exited;
    this.paused = false;
  }

  pause(): void {
    if (!this.process || this.paused) return;
    this.process.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.process || !this.paused) return;
    this.process.kill('SIGCONT');
    this.paused = false;
  }

  killSync(): void {
    if (!this.process) return;
    this.killing = true;
    this.process.kill('SIGKILL');
  }

  status(timeoutMs = 1000): Promise<StatusBody> {
    return http<StatusBody>('GET', `${this.endpoint.clientUrl}/status`, undefined, { timeoutMs }).then((r) => {
      if (r.status !== 200) throw new Error(`${this.name} /status answered ${r.status}`);
      return r.body;
    });
  }

  tail(lines = 30): string {
    if (!existsSync(this.logPath)) return '';
    return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines - 1).join('\n');
  }
}

/** The code a run executes. */
export interface BuildSnapshot {
  /** The copied entry point. */
  main: string;
  /** sha256 over the build's .js files (paths and contents): compare with a clean build of a commit. */
  hash: string;
  /** Where the copy finds its packages (the repository's node_modules). */
  nodePath: string;
  /** When dist/ was built (the entry point's mtime). */
  builtAt: string;
  /** The build that was copied. */
  source: string;
  /**
   * This repository's HEAD when the run started, and the node's source files that differed from it then
   * ('n/a' and none for a build from elsewhere).
   */
  commit: string;
  dirty: string[];
}

const REPO = resolve(__dirname, '../..');
/** dist/apps/kv-node: the node's whole build (NODE_MAIN is apps/kv-node/src/main.js inside it). */
const BUILD_ROOT = resolve(NODE_MAIN, '../../../..');

/**
 * Copies the node's build (`source`: a `dist/apps/kv-node`, by default this repository's) into
 * `runDir/build` and checks that it is complete (a concurrent `npm run build` empties dist/ for a while:
 * then wait for it). Throws when there is no build after a minute.
 */
export async function snapshotBuild(runDir: string, source = BUILD_ROOT): Promise<BuildSnapshot> {
  const target = join(runDir, 'build');
  const main = join(target, relative(BUILD_ROOT, NODE_MAIN));
  let builtAt = '';
  for (let attempt = 0; ; attempt++) {
    try {
      builtAt = statSync(join(source, relative(BUILD_ROOT, NODE_MAIN))).mtime.toISOString();
      rmSync(target, { recursive: true, force: true });
      cpSync(source, target, { recursive: true });
      if (existsSync(main)) break;
    } catch {
      // dist/ changed under us: try again.
    }
    if (attempt >= 30) throw new Error(`${join(source, relative(BUILD_ROOT, NODE_MAIN))} does not exist: run \`npm run build\` first`);
    await sleep(2000);
  }
  const git = (...args: string[]) =>
    new Promise<string>((done) => {
      const child = spawn('git', args, { cwd: REPO, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('error', () => done(''));
      child.on('close', () => done(out));
    });
  const hash = buildHash(target);
  if (resolve(source) !== BUILD_ROOT) return { main, hash, nodePath: join(REPO, 'node_modules'), builtAt, source, commit: 'n/a', dirty: [] };
  const commit = (await git('rev-parse', 'HEAD')).trim() || 'unknown';
  // `git status --porcelain` lines are "XY path": keep the paths.
  const dirty = (await git('status', '--porcelain', '--', 'apps/kv-node', 'libs', 'config'))
    .split('\n')
    .filter((line) => line.length > 3)
    .map((line) => line.slice(3));
  return { main, hash, nodePath: join(REPO, 'node_modules'), builtAt, source, commit, dirty };
}

/** sha256 over every .js file under `dir` (relative path and contents, in sorted order). */
export function buildHash(dir: string): string {
  const hash = createHash('sha256');
  const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.js')).sort();
  for (const f of files) hash.update(f).update('\0').update(readFileSync(join(dir, f))).update('\0');
  return hash.digest('hex').slice(0, 16);
}

export interface ClusterOptions {
  build: BuildSnapshot;
  net: ClusterNet;
  /** Data directories and logs go under here. */
  runDir: string;
  timings: NodeTimings;
  logLevel?: string;
  /** Harness clock, for crash records. */
  now: () => number;
}

export class ChaosCluster {
  readonly nodes: ChaosNode[];
  readonly crashes: Crash[] = [];
  private readonly unregister: () => void;

  constructor(readonly options: ClusterOptions) {
    const { net, runDir, timings } = options;
    const urls = net.endpoints.map((e) => e.url);
    this.nodes = net.endpoints.map((endpoint, i) => {
      const dir = join(runDir, 'data', endpoint.name);
      const env = {
        NODE_ID: endpoint.name,
        HTTP_PORT: String(endpoint.httpPort),
        BIND_HOST: endpoint.bindHost,
        ADVERTISE_URL: endpoint.url,
        PEER_URLS: urls.filter((_, j) => j !== i).join(','),
        WAL_DIR: dir,
        LOG_LEVEL: options.logLevel ?? 'info',
        HEARTBEAT_INTERVAL_MS: String(timings.heartbeatMs),
        ELECTION_TIMEOUT_MS: String(timings.electionMs),
        REQUEST_TIMEOUT_MS: String(requestTimeout(timings, i)),
        NODE_PATH: options.build.nodePath,
      };
      const argv = net.wrap(i, [process.execPath, options.build.main]);
      return new ChaosNode(i, endpoint, dir, join(runDir, `${endpoint.name}.log`), env, argv, (crash) =>
        this.crashes.push({ ...crash, at: options.now() }),
      );
    });
    this.unregister = registerCleanup(() => this.nodes.forEach((n) => n.killSync()));
  }

  start(): void {
    for (const n of this.nodes) n.start();
  }

  /** Statuses of the nodes that answer within the timeout (others are undefined). */
  async statuses(timeoutMs = 1000): Promise<(StatusBody | undefined)[]> {
    return Promise.all(this.nodes.map((n) => (n.running && !n.paused ? n.status(timeoutMs).catch(() => undefined) : undefined)));
  }

  /** The node that claims leadership in the highest term, if any answers. */
  async leader(): Promise<ChaosNode | undefined> {
    const statuses = await this.statuses(500);
    let best: StatusBody | undefined;
    for (const s of statuses) if (s?.isLeader && (!best || s.term > best.term)) best = s;
    return best && this.nodes.find((n) => n.name === best!.nodeId);
  }

  /** Waits until every node runs and all agree on one leader in one term. */
  async waitForLeader(timeoutMs: number): Promise<ChaosNode> {
    return eventually(
      'a leader that every node agrees on',
      async () => {
        const statuses = await this.statuses();
        if (statuses.some((s) => s === undefined)) return undefined;
        const leaders = statuses.filter((s) => s!.isLeader);
        if (leaders.length !== 1) return undefined;
        const l = leaders[0]!;
        if (!statuses.every((s) => s!.leader === l.nodeId && s!.term === l.term)) return undefined;
        return this.nodes.find((n) => n.name === l.nodeId);
      },
      timeoutMs,
      100,
    );
  }

  /**
   * Waits until every node has the same last log index, commit index and applied index, twice in a row
   * (so nothing was still moving). Returns that index.
   */
  async waitConverged(timeoutMs: number): Promise<number> {
    let previous: string | undefined;
    return eventually(
      'every node to apply the same log',
      async () => {
        const statuses = await this.statuses();
        if (statuses.some((s) => s === undefined)) return undefined;
        const s0 = statuses[0]!;
        const same = statuses.every(
          (s) => s!.commitIndex === s0.commitIndex && s!.appliedIndex === s0.commitIndex && s!.lastLogIndex === s0.commitIndex,
        );
        const fingerprint = statuses.map((s) => `${s!.term}/${s!.commitIndex}`).join(',');
        const stable = same && fingerprint === previous;
        previous = same ? fingerprint : undefined;
        if (!stable) await sleep(100);
        return stable ? s0.commitIndex : undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** Kills every node and stops watching them. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    this.unregister();
  }
}

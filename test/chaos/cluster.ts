/**
 * The node processes of a chaos run: the production build (`dist/`, `npm run build`), one process per node,
 * started on the run's network (cluster-net.ts), each with its own data directory and log file under the
 * run directory. The build is copied into the run directory first (snapshotBuild): every incarnation of
 * every node runs the same code, even if `dist/` is rebuilt (and, with it, deleted) during a long run. The
 * processes are NodeProcesses (scripts/lib/node-process.ts), wrapped by the network (`ip netns exec`). The
 * nemesis kills, restarts, pauses and resumes them through this class; anything else that ends a node (an
 * exit code, a signal we did not send) is recorded as a crash, which fails the run.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { clusterEnvs, joinEnv, Member, NodeExit, NodeProcess } from '../../scripts/lib/node-process';
import { eventually, NODE_MAIN, sleep, StatusBody } from '../support/local-cluster';
import { registerCleanup } from './cleanup';
import { ClusterNet, NodeEndpoint } from './cluster-net';
import { ChaosTls, HarnessFetch } from './tls';

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

/**
 * Where a node stands in the membership nemesis's eyes: an ordinary `member`; `removing` from the moment
 * its removal is asked (an exit 0 is then its answer to it); `joining` from its start with JOIN until it is
 * a voter (an exit 1 that says the join was refused is then no crash); `removed` once it exited after its
 * removal (never started again: its data directory refuses to).
 */
export type MemberPhase = 'member' | 'removing' | 'joining' | 'removed';

/** A joining node that exited because the cluster refused or never answered its JOIN. */
export interface JoinRefusal {
  node: string;
  at: number;
  /** The node's one line saying why (`cannot start: cannot join the cluster of ...`). */
  reason: string;
}

/**
 * What an exit the harness did not cause means, given the node's phase and its last lines: a node being
 * removed that exits 0 has applied its removal (`removed`); a joining node that exits 1 saying it cannot
 * join was refused or never answered (`join refused`, with its reason); anything else is a crash.
 */
export function classifyExit(
  phase: MemberPhase,
  exit: Pick<NodeExit, 'code' | 'signal'>,
  tail: string,
): { kind: 'removed' } | { kind: 'join refused'; reason: string } | { kind: 'crash' } {
  if (phase === 'removing' && exit.code === 0 && exit.signal === null) return { kind: 'removed' };
  const refusal = /cannot start: (cannot join the cluster of .*)/.exec(tail)?.[1];
  if (phase === 'joining' && exit.code === 1 && exit.signal === null && refusal) return { kind: 'join refused', reason: refusal };
  return { kind: 'crash' };
}

/**
 * One node of a chaos run: a NodeProcess that writes its output to `<runDir>/<name>.log` (every
 * incarnation, each start marked by a `<label>: start #n` line) and runs inside its network's wrapper.
 * A node re-added by the membership nemesis is a new ChaosNode on the same endpoint and log file, with a
 * new data directory and its own label (`harness, rejoin 1`).
 */
export class ChaosNode extends NodeProcess {
  phase: MemberPhase = 'member';
  /** How the harness reaches the node (with TLS: trusting the run's CA, test/chaos/tls.ts). */
  httpFetch: HarnessFetch = fetch;

  constructor(
    readonly index: number,
    readonly endpoint: NodeEndpoint,
    readonly dir: string,
    readonly logPath: string,
    env: Record<string, string>,
    main: string,
    wrap: (argv: string[]) => { file: string; args: string[] },
    onUnexpectedExit: (node: ChaosNode, exit: NodeExit) => void,
    logLabel = 'harness',
  ) {
    super({
      name: endpoint.name,
      env,
      clientUrl: endpoint.clientUrl,
      main,
      wrap,
      logFile: logPath,
      logLabel,
      makeDir: true,
      onExit: (exit) => {
        if (!exit.expected) onUnexpectedExit(this, exit);
      },
    });
  }

  override status(timeoutMs = 1000): Promise<StatusBody> {
    return super.status(timeoutMs);
  }

  /** NodeProcess.get through httpFetch: the global fetch would not trust the run's CA. */
  override async get<T>(path: string, timeoutMs = 2000): Promise<T> {
    const response = await this.httpFetch(`${this.url}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`${this.name} ${path} answered ${response.status}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
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
  /** More environment for every node (the snapshot settings, snapshots.ts). */
  env?: Record<string, string>;
  /**
   * TLS (test/chaos/tls.ts): every node, rejoined ones included, gets its certificate and the CA (mutual
   * TLS); the harness's requests trust the CA. The network's URLs must be https:// (openNet's `tls`).
   */
  tls?: ChaosTls;
  /** Harness clock, for crash records. */
  now: () => number;
}

export class ChaosCluster {
  /** Node i's current process (replace() puts a re-added node's in its place). */
  readonly nodes: ChaosNode[];
  readonly crashes: Crash[] = [];
  /** Nodes that exited 0 after their removal (membership nemesis), with the harness time. */
  readonly removedExits: { node: string; at: number }[] = [];
  readonly joinRefusals: JoinRefusal[] = [];
  /**
   * CLUSTER_TOKEN of every node: what a joining node must hold, and what the membership nemesis sends to
   * the admin routes (`Authorization: Bearer`).
   */
  readonly token = randomBytes(16).toString('hex');
  private readonly members: Member[];
  private rejoins = 0;
  private readonly unregister: () => void;

  constructor(readonly options: ClusterOptions) {
    const { net, runDir } = options;
    this.members = net.endpoints.map((e) => ({
      name: e.name,
      port: e.httpPort,
      url: e.url,
      dir: join(runDir, 'data', e.name),
      bindHost: e.bindHost,
    }));
    const envs = clusterEnvs(this.members, (i) => this.extraEnv(i));
    this.nodes = net.endpoints.map((endpoint, i) => this.node(i, this.members[i].dir, envs[i]));
    net.trackProcesses?.(() => this.nodes.map((n) => n.pid));
    this.unregister = registerCleanup(() => this.nodes.forEach((n) => n.killSync()));
  }

  /** Node i's variables besides its identity and peers (the same for every incarnation). */
  private extraEnv(i: number): Record<string, string> {
    const { options } = this;
    return {
      LOG_LEVEL: options.logLevel ?? 'info',
      HEARTBEAT_INTERVAL_MS: String(options.timings.heartbeatMs),
      ELECTION_TIMEOUT_MS: String(options.timings.electionMs),
      REQUEST_TIMEOUT_MS: String(requestTimeout(options.timings, i)),
      NODE_PATH: options.build.nodePath,
      CLUSTER_TOKEN: this.token,
      ...options.tls?.env(i),
      ...options.env,
    };
  }

  private node(i: number, dir: string, env: Record<string, string>, label?: string): ChaosNode {
    const { net, runDir, build } = this.options;
    const endpoint = net.endpoints[i];
    const node = new ChaosNode(i, endpoint, dir, join(runDir, `${endpoint.name}.log`), env, build.main, (argv) => net.wrap(i, argv), (n, e) => this.exited(n, e), label);
    if (this.options.tls) node.httpFetch = this.options.tls.fetch;
    return node;
  }

  /** A node ended without the harness's kill: the membership nemesis's expected ends, or a crash. */
  private exited(node: ChaosNode, exit: NodeExit): void {
    const at = this.options.now();
    const tail = node.tail(30);
    const end = classifyExit(node.phase, exit, tail);
    if (end.kind === 'removed') {
      node.phase = 'removed';
      this.removedExits.push({ node: node.name, at });
    } else if (end.kind === 'join refused') {
      this.joinRefusals.push({ node: node.name, at, reason: end.reason });
    } else {
      this.crashes.push({ node: node.name, at, code: exit.code, signal: exit.signal, tail });
    }
  }

  /**
   * Puts a new process in node i's place, on a new empty data directory (`data/<name>.<n>`), started with
   * JOIN=`joinUrl` and no PEER_URLS, under the same NODE_ID, address and log file; phase `joining`. The
   * previous process must have ended (a removed node refuses to start on its old directory anyway).
   */
  replace(i: number, joinUrl: string): ChaosNode {
    if (this.nodes[i].running) throw new Error(`${this.nodes[i].name} still runs: it cannot be replaced`);
    const n = ++this.rejoins;
    const member = { ...this.members[i], dir: join(this.options.runDir, 'data', `${this.members[i].name}.${n}`) };
    const node = this.node(i, member.dir, joinEnv(member, joinUrl, this.extraEnv(i)), `harness, rejoin ${n} with JOIN=${joinUrl}`);
    node.phase = 'joining';
    this.nodes[i] = node;
    node.start();
    return node;
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

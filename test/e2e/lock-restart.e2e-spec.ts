/**
 * A supervisor that restarts a node the moment it was killed (kill -9): the killed process is then still a
 * zombie (its parent has not reaped it), which kill(pid, 0) reports as alive. The node must take its stale
 * directory lock over at once and serve, cycle after cycle; while two live processes on one WAL_DIR must
 * still refuse.
 *
 * Each node runs under its own `sh`, which starts it in the background, prints its pid and blocks reading
 * stdin: dash does not reap children meanwhile, so a node killed with SIGKILL stays a zombie until the test
 * lets that sh `wait`. Only processes this test started are signalled, by pid.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePorts, http, NODE_MAIN } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(240_000);

const CYCLES = 10;

let root: string;
const supervisors = new Set<Supervised>();

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'raftkv-lock-restart-'));
});

afterAll(async () => {
  for (const s of supervisors) await s.reap();
  rmSync(root, { recursive: true, force: true });
});

function procState(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** One node process, started by an `sh` that does not reap it. */
class Supervised {
  pid = 0;
  output = '';
  private readonly sh: ChildProcess;
  private readonly exited: Promise<unknown>;

  constructor(env: Record<string, string>) {
    // The node's output goes to stderr, so stdout carries only its pid.
    this.sh = spawn('/bin/sh', ['-c', '"$0" "$1" >&2 & echo $!; read _; wait', process.execPath, NODE_MAIN], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    supervisors.add(this);
    let pidText = '';
    this.sh.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pidText += chunk;
      if (pidText.includes('\n')) this.pid = Number(pidText.trim());
    });
    this.sh.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve) => this.sh.once('exit', resolve));
  }

  async started(): Promise<number> {
    return eventually('the node pid', async () => (this.pid > 0 ? this.pid : undefined), 10_000, 10);
  }

  /** Lets sh `wait` for the node (killing the node first if it still runs): no zombie is left behind. */
  async reap(): Promise<void> {
    if (!supervisors.delete(this)) return;
    const state = this.pid > 0 ? procState(this.pid) : undefined;
    if (state !== undefined && state !== 'Z') process.kill(this.pid, 'SIGKILL');
    this.sh.stdin!.end('\n');
    await this.exited;
  }
}

function nodeEnv(port: number, dir: string): Record<string, string> {
  const url = `http://127.0.0.1:${port}`;
  return {
    NODE_ID: 'node1',
    HTTP_PORT: String(port),
    BIND_HOST: '127.0.0.1',
    ADVERTISE_URL: url,
    PEER_URLS: '',
    WAL_DIR: dir,
    LOG_LEVEL: 'info',
    HEARTBEAT_INTERVAL_MS: '50',
    ELECTION_TIMEOUT_MS: '500',
  };
}

describe('a node restarted the moment it was killed', () => {
  it(`takes over the dead holder's lock at once and serves, ${CYCLES} times in a row`, async () => {
    const [port] = await freePorts(1);
    const dir = join(root, 'restarts');
    const url = `http://127.0.0.1:${port}`;
    let current = new Supervised(nodeEnv(port, dir));
    await current.started();
    for (let cycle = 0; cycle <= CYCLES; cycle++) {
      // It serves: a write commits, and every earlier cycle's write is still there.
      await eventually(
        `the node to accept a write (cycle ${cycle})`,
        async () => ((await http('PUT', `${url}/kv/cycle-${cycle}`, { value: String(cycle) }, { timeoutMs: 2000 })).status === 200 ? true : undefined),
        30_000,
      ).catch((err: Error) => {
        err.message += `\n----- node output -----\n${current.output}`;
        throw err;
      });
      for (let earlier = 0; earlier <= cycle; earlier++) {
        expect((await http('GET', `${url}/kv/cycle-${earlier}`)).body).toEqual(keyValue(`cycle-${earlier}`, String(earlier)));
      }
      if (cycle > 0) {
        expect(current.output).toMatch(/took over the stale lock .*LOCK \(pid \d+ on host .*\): process \d+ has exited \(a zombie its parent has not reaped yet\)/);
      }
      if (cycle === CYCLES) break;

      const killed = current;
      process.kill(killed.pid, 'SIGKILL');
      await eventually('the killed node to be a zombie', async () => (procState(killed.pid) === 'Z' ? true : undefined), 10_000, 5);
      current = new Supervised(nodeEnv(port, dir));
      await current.started();
      // The killed node stays a zombie until the new one has opened the WAL: it is the case under test.
      await eventually('the new node to open its WAL', async () => (/took over the stale lock|cannot start/.test(current.output) ? true : undefined), 30_000, 20);
      expect(procState(killed.pid)).toBe('Z');
      expect(current.output).not.toContain('cannot start');
      await killed.reap();
    }
    await current.reap();
  });

  it('a second live process on the same WAL_DIR still refuses, naming the holder, and the first keeps serving', async () => {
    const [port, otherPort] = await freePorts(2);
    const dir = join(root, 'shared');
    const first = new Supervised(nodeEnv(port, dir));
    const firstPid = await first.started();
    const url = `http://127.0.0.1:${port}`;
    await eventually('the first node to serve', async () => ((await http('PUT', `${url}/kv/k`, { value: 'v' }, { timeoutMs: 2000 })).status === 200 ? true : undefined), 30_000);

    const second = spawn(process.execPath, [NODE_MAIN], { env: { ...process.env, ...nodeEnv(otherPort, dir) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    second.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise((resolve) => second.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain(`node1: cannot start: WAL directory ${dir} is in use by another process (pid ${firstPid} on host`);

    expect((await http('GET', `${url}/kv/k`)).body).toEqual(keyValue('k', 'v'));
    await first.reap();
  });
});

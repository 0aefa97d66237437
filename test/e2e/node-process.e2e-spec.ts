/**
 * The node launcher (scripts/lib/node-process.ts) on a real node of the production build (`npm run build`):
 * start, wait until it serves, pause and resume, stop, restart on the same data directory, kill, and the
 * clean-up of a launcher process that dies with its nodes still running; and the node's own clean stop while
 * it still starts.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Member, NodeExit, nodeEnv, NodeProcess } from '../../scripts/lib/node-process';
import { eventually, freePorts, http } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(90_000);

const ROOT = resolve(__dirname, '../..');
let dir: string;
const started: NodeProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'raftkv-launcher-'));
});

afterAll(async () => {
  await Promise.all(started.map((n) => n.kill()));
  rmSync(dir, { recursive: true, force: true });
});

async function singleNode(options: Partial<ConstructorParameters<typeof NodeProcess>[0]> = {}): Promise<NodeProcess> {
  const [port] = await freePorts(1);
  const name = `solo${started.length + 1}`;
  const member: Member = { name, port, url: `http://127.0.0.1:${port}`, dir: join(dir, name), bindHost: '127.0.0.1' };
  const node = new NodeProcess({
    name,
    env: nodeEnv(member, [member], { HEARTBEAT_INTERVAL_MS: '50', ELECTION_TIMEOUT_MS: '300' }),
    clientUrl: member.url,
    ...options,
  });
  started.push(node);
  return node;
}

/** Whether the process exists and is not a zombie (an orphan's end is reaped by whoever init is here). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('NodeProcess on a real node', () => {
  it('starts a node, stops it cleanly, restarts it on its data, pauses and resumes it, and kills it', async () => {
    const exits: NodeExit[] = [];
    const node = await singleNode({ onExit: (exit) => exits.push(exit) });
    node.start();
    await node.waitServing(30_000);
    const leader = await eventually('the single node to lead', async () => ((await node.status()).isLeader ? true : undefined));
    expect(leader).toBe(true);
    expect((await http('PUT', `${node.url}/kv/k`, { value: 'v1' })).status).toBe(200);
    expect(node.logs()).toMatch(/solo1/);

    const pid = node.pid!;
    const stopped = await node.stop(10_000);
    expect({ ...stopped, tail: stopped?.code === 0 ? '' : node.tail(30) }).toMatchObject({ code: 0, signal: null, expected: true, tail: '' });
    expect(alive(pid)).toBe(false);
    expect(node.running).toBe(false);

    await node.restart();
    expect(node.starts).toBe(2);
    expect(node.pid).not.toBe(pid);
    await node.waitServing(30_000);
    await eventually('the restarted node to lead', async () => ((await node.status()).isLeader ? true : undefined));
    expect((await http('GET', `${node.url}/kv/k`)).body).toEqual(keyValue('k', 'v1'));

    node.pause();
    expect(node.paused).toBe(true);
    await expect(node.status(500)).rejects.toThrow();
    node.resume();
    expect(node.paused).toBe(false);
    await node.waitServing(10_000);

    const killed = await node.kill();
    expect(killed).toMatchObject({ code: null, signal: 'SIGKILL', expected: true });
    expect(exits.map((e) => e.expected)).toEqual([true, true]);
  });

  it('reports an end it did not cause as unexpected, and writes to a log file with a line per start', async () => {
    const logFile = join(dir, 'solo2.log');
    const exits: NodeExit[] = [];
    const node = await singleNode({ logFile, logLabel: 'test', onExit: (exit) => exits.push(exit) });
    node.start();
    await node.waitServing(30_000);
    process.kill(node.pid!, 'SIGKILL'); // not through the launcher: a crash
    const exit = await node.waitForExit(10_000);
    expect(exit).toMatchObject({ signal: 'SIGKILL', expected: false });
    expect(exits).toHaveLength(1);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toMatch(/^----- \S+ test: start #1 -----$/m);
    expect(log).toMatch(/solo2/);
    expect(node.tail(5).split('\n').length).toBeLessThanOrEqual(6);
  });

  it('SIGKILLs the nodes it still runs when the process that started them exits, and only those', async () => {
    const [port] = await freePorts(1);
    const walDir = join(dir, 'orphan');
    // A script that starts a node through the launcher, prints its pid once it is ready, and exits. Ready, not
    // merely answering /status: the HTTP API answers while the node still records its cluster in WAL_DIR
    // (meta.json, checked below), and a kill in between left no meta.json on a loaded machine.
    const script = `
      const { NodeProcess, nodeEnv } = require('./scripts/lib/node-process');
      const member = { name: 'orphan', port: ${port}, url: 'http://127.0.0.1:${port}', dir: ${JSON.stringify(walDir)}, bindHost: '127.0.0.1' };
      const node = new NodeProcess({ name: 'orphan', env: nodeEnv(member, [member]), clientUrl: member.url });
      node.start();
      node.waitServing(30000, '/health/ready').then(() => { console.log('pid', node.pid); process.exit(0); }, (e) => { console.error(e); process.exit(1); });
    `;
    const child = spawn(process.execPath, ['-r', '@swc-node/register', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((ok) => child.on('exit', ok));
    expect({ code, out }).toMatchObject({ code: 0 });
    const pid = Number(/pid (\d+)/.exec(out)![1]);
    await eventually('the orphaned node to be gone', async () => (alive(pid) ? undefined : true), 10_000, 50);
    expect(existsSync(join(walDir, 'meta.json'))).toBe(true);
  });

  // The HTTP API answers while the node still records its cluster and before its Raft node starts: a stop
  // then used to let the start go on after the WAL was closed ("this node stopped serving: write-ahead log
  // ... is closed"). The window is short: a few attempts, each stopped as soon as /status answers.
  it('a SIGTERM as soon as the API answers, while the node still starts, exits 0 and logs no error', async () => {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const node = await singleNode();
      node.start();
      await eventually('the API to answer', () => node.status(500).then(() => true, () => undefined), 30_000, 5);
      const exit = await node.stop(10_000);
      const errors = node.logs().split('\n').filter((line) => /\bERROR\b/.test(line));
      expect({ attempt, code: exit?.code, errors }).toEqual({ attempt, code: 0, errors: [] });
    }
  });
});

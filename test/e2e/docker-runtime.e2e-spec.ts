/**
 * The Docker image's runtime stage, without Docker: this machine has no Docker engine, so the test lays out
 * what docker/Dockerfile's runtime stage copies (dist/, package.json, bin/, and the production
 * dependencies that `npm ci --omit=dev` installs: package-lock.json's packages not marked dev), then runs
 * it as the image does: its CMD, its ENV, an unprivileged user, its HEALTHCHECK, kvctl through the
 * /usr/local/bin link, SIGTERM. What this cannot show, and only a Docker build would: that the base
 * image and `npm ci` behave as expected inside it.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execForm, parseDockerfile, runtimeEnv } from '../support/dockerfile';
import { eventually, freePorts, http } from '../support/local-cluster';

jest.setTimeout(90_000);

const ROOT = resolve(__dirname, '../..');
const { stages } = parseDockerfile();
const runtime = stages[stages.length - 1];
const imageEnv = runtimeEnv(runtime);

let root: string;
let app: string;
let dataDir: string;
/** Runs commands as an unprivileged user when this test runs as root, as the image's `USER node` does. */
let asUser: string[] = [];
const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

/** The production dependency closure of package-lock.json: what `npm ci --omit=dev` installs. */
function productionPackages(): string[] {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([path, entry]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path) && !entry.dev)
    .map(([path]) => path);
}

/** Lays out the runtime stage's files under `app`, COPY by COPY. */
function layOutRuntimeStage(): void {
  for (const copy of runtime.body.filter((i) => i.keyword === 'COPY')) {
    const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    const from = /--from=(\S+)/.exec(copy.args)?.[1];
    const [source, target] = [parts[0], parts[parts.length - 1]];
    if (from && source.endsWith('/node_modules')) {
      const stage = stages.find((s) => s.name === from)!;
      expect(stage.body.some((i) => i.keyword === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args))).toBe(true);
      for (const pkg of productionPackages()) {
        if (!existsSync(join(ROOT, pkg))) continue; // an optional package for another platform
        mkdirSync(join(app, pkg, '..'), { recursive: true });
        // Hard links: nothing here writes to them, and copying 100 MB would be slow.
        const result = spawnSync('cp', ['-al', join(ROOT, pkg), join(app, pkg)]);
        expect(result.status).toBe(0);
      }
    } else if (from && source.endsWith('/dist')) {
      cpSync(join(ROOT, 'dist'), join(app, target), { recursive: true });
    } else if (!from) {
      cpSync(join(ROOT, source), join(app, target === './' ? source : target), { recursive: true });
    } else {
      throw new Error(`COPY this test does not know how to lay out: ${copy.args}`);
    }
  }
  // The image links kvctl into the PATH.
  const link = /ln -s (\S+) (\S+)/.exec(runtime.body.filter((i) => i.keyword === 'RUN').map((i) => i.args).join(' '))!;
  expect(link[1]).toBe('/app/bin/kvctl.js');
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  symlinkSync(join(app, 'bin/kvctl.js'), join(root, 'usr/local/bin/kvctl'));
}

function run(command: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(asUser[0] ?? command[0], [...asUser.slice(1), ...(asUser.length > 0 ? command : command.slice(1))], {
    cwd: app,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function finish(child: ChildProcess, timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`still running after ${timeoutMs} ms: ${output}`)), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      ok({ code, output });
    });
  });
}

function startNode(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = run(execForm(runtime, 'CMD'), { ...imageEnv, ...env });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'raftkv-image-'));
  chmodSync(root, 0o755);
  app = join(root, 'app');
  mkdirSync(app);
  layOutRuntimeStage();
  dataDir = join(root, 'data');
  mkdirSync(dataDir);
  if (process.getuid?.() === 0 && spawnSync('setpriv', ['--help']).status === 0) {
    const uid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dataDir, uid, gid);
    asUser = ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups'];
  } else {
    console.warn('docker-runtime: not root (or no setpriv): the node runs as the current user, not an unprivileged one');
  }
});

afterAll(() => {
  children.forEach((c) => c.kill('SIGKILL'));
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("the image's runtime stage, laid out and run without Docker", () => {
  let port: number;
  let node: ReturnType<typeof startNode>;

  it('holds production dependencies only', () => {
    const dev = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies);
    for (const name of dev) expect({ name, shipped: existsSync(join(app, 'node_modules', name)) }).toEqual({ name, shipped: false });
    expect(existsSync(join(app, 'node_modules/@nestjs/core'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/commander'))).toBe(true);
  });

  let lonely: ReturnType<typeof startNode>;
  let alone: number;
  let nobodyHome: number;

  it('starts the node with the image\'s CMD and ENV, unprivileged, and reports ready', async () => {
    let peerA: number;
    let peerB: number;
    [port, alone, peerA, peerB, nobodyHome] = await freePorts(5);
    node = startNode({ HTTP_PORT: String(port), WAL_DIR: dataDir, NODE_ID: 'node1', ADVERTISE_URL: `http://127.0.0.1:${port}`, PEER_URLS: '' });
    // Beside it, one member of a 3-node cluster whose peers never come: it serves, but knows no leader.
    mkdirSync(join(root, 'data-alone'));
    if (asUser.length > 0) chownSync(join(root, 'data-alone'), Number(asUser[1].split('=')[1]), Number(asUser[2].split('=')[1]));
    lonely = startNode({
      HTTP_PORT: String(alone),
      WAL_DIR: join(root, 'data-alone'),
      NODE_ID: 'node1',
      ADVERTISE_URL: `http://127.0.0.1:${alone}`,
      PEER_URLS: `http://127.0.0.1:${peerA},http://127.0.0.1:${peerB}`,
    });
    await eventually(
      'the node to be ready',
      async () => {
        if (node.child.exitCode !== null) throw new Error(`the node exited: ${node.output()}`);
        const answer = await http('GET', `http://127.0.0.1:${port}/health/ready`, undefined, { timeoutMs: 1000 }).catch(() => undefined);
        return answer?.status === 200 ? true : undefined;
      },
      30_000,
    );
    expect(node.output()).toContain(`node1 serving on ${imageEnv.BIND_HOST}:${port}`);
  });

  it('passes its HEALTHCHECK when ready, fails it when not ready or not serving', async () => {
    const healthcheck = execForm(runtime, 'HEALTHCHECK');
    expect((await finish(run(healthcheck, { HTTP_PORT: String(port) }))).code).toBe(0);
    // A node that serves but knows no leader, and a port where nothing serves, fail it.
    await eventually('the lonely node to serve', async () =>
      (await http('GET', `http://127.0.0.1:${alone}/health/live`, undefined, { timeoutMs: 1000 }).catch(() => undefined))?.status === 200 ? true : undefined,
    );
    const [lonelyCheck, nobodyCheck] = await Promise.all([
      finish(run(healthcheck, { HTTP_PORT: String(alone) })),
      finish(run(healthcheck, { HTTP_PORT: String(nobodyHome) })),
    ]);
    expect(lonelyCheck.code).toBe(1);
    expect(nobodyCheck.code).toBe(1);
    lonely.child.kill('SIGKILL');
  });

  it('runs kvctl from the PATH link, against the node', async () => {
    const kvctl = join(root, 'usr/local/bin/kvctl');
    const env = { KVCTL_ENDPOINTS: `http://127.0.0.1:${port}` };
    expect(await finish(run([kvctl, 'put', 'greeting', 'hello'], env))).toMatchObject({ code: 0, output: expect.stringMatching(/^OK \(index \d+\)\n$/) });
    expect(await finish(run([kvctl, 'get', 'greeting'], env))).toEqual({ code: 0, output: 'hello\n' });
  });

  it('stops cleanly on its STOPSIGNAL, with its data in WAL_DIR', async () => {
    const signal = runtime.body.find((i) => i.keyword === 'STOPSIGNAL')?.args ?? 'SIGTERM';
    const exited = finish(node.child);
    process.kill(node.child.pid!, signal as NodeJS.Signals); // setpriv execs the node: same process
    expect((await exited).code).toBe(0);
    expect(existsSync(join(dataDir, 'meta.json'))).toBe(true);
    // Written by the unprivileged user it ran as, where this test runs as root.
    if (asUser.length > 0) expect(statSync(join(dataDir, 'meta.json')).uid).toBe(Number(asUser[1].split('=')[1]));
  });
});

/**
 * A full disk, for real: a node's WAL_DIR on a small tmpfs, filled to the brim with a filler file. The node
 * does not crash and acknowledges nothing it could not persist: writes answer 507, stale reads are served,
 * /health/ready fails with the reason, raftkv_storage_full is 1. Once the filler is deleted the node resumes
 * without a restart, and nothing acknowledged is lost, then or after a restart (the log is not torn).
 *
 * Needs root (mount); CI runs as root. Each test unmounts what it mounted.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterNode, eventually, http, LocalCluster } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(180_000);

const TMPFS_SIZE = '8m';

function mountTmpfs(dir: string): void {
  if (process.getuid?.() !== 0) throw new Error('test/e2e/full-disk.e2e-spec.ts mounts a tmpfs: run it as root (CI does)');
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs', dir]);
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir]);
  } catch {
    // Not mounted (the mount failed, or already unmounted).
  }
}

/** Fills the file system holding `dir` until it refuses a single byte more; returns the filler's path. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size, 0x61);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

async function metric(node: ClusterNode, name: string): Promise<number | undefined> {
  const text = (await http('GET', `${node.url}/metrics`)).body as string;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/** Writes k0, k1, ... until one answers 507 (at most `max`); returns the acknowledged ones. */
async function writeUntilRefused(node: ClusterNode, prefix: string, max = 5000): Promise<{ acknowledged: Map<string, string>; refusal: { status: number; body: any } }> {
  const acknowledged = new Map<string, string>();
  const value = 'x'.repeat(1000);
  for (let i = 0; i < max; i++) {
    const answer = await http('PUT', `${node.url}/kv/${prefix}${i}`, { value: `${i}-${value}` });
    if (answer.status === 200) {
      acknowledged.set(`${prefix}${i}`, `${i}-${value}`);
      continue;
    }
    return { acknowledged, refusal: { status: answer.status, body: answer.body } };
  }
  throw new Error(`${max} writes of 1 KB were all acknowledged: the disk never filled`);
}

describe('a single node whose disk fills up', () => {
  let cluster: LocalCluster | undefined;
  let dir = '';

  afterAll(async () => {
    if (cluster) await Promise.all(cluster.nodes.map((n) => n.kill()));
    unmount(dir);
    await cluster?.stop();
  });

  it('refuses writes with 507, keeps serving reads, resumes once space returns, and loses nothing', async () => {
    cluster = await LocalCluster.start({
      nodes: 1,
      beforeStart: (dirs) => {
        dir = dirs[0];
        mountTmpfs(dir);
      },
    });
    const node = await cluster.waitForLeader();
    expect((await http('PUT', `${node.url}/kv/before`, { value: 'written before the disk filled' })).status).toBe(200);
    const filler = fill(dir);

    const { acknowledged, refusal } = await writeUntilRefused(node, 'k');
    // The write whose save the disk refused was proposed already: it waits in the held save and its outcome is
    // unknown (it commits once space returns). Every later write is refused at once, nothing proposed.
    if (refusal.status === 503) expect(refusal.body.outcome).toBe('unknown');
    else expect(refusal).toMatchObject({ status: 507, body: { error: expect.stringMatching(/disk is full/i), outcome: 'failed' } });
    // Still up, still refusing, and saying why everywhere an operator looks.
    expect(await http('PUT', `${node.url}/kv/refused`, { value: 'v' })).toMatchObject({
      status: 507,
      body: { error: expect.stringMatching(/disk is full/i), outcome: 'failed' },
    });
    expect(node.running).toBe(true);
    const ready = await http('GET', `${node.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(ready.body)).toMatch(/full|ENOSPC/i);
    expect(await metric(node, 'raftkv_storage_full')).toBe(1);
    // Reads are served: stale at once; a linearizable read on the frozen leader says why it cannot be served.
    expect((await http('GET', `${node.url}/kv/before?consistency=stale`)).body).toEqual(keyValue('before', 'written before the disk filled'));
    const last = [...acknowledged.keys()].pop();
    if (last) expect((await http('GET', `${node.url}/kv/${last}?consistency=stale`)).status).toBe(200);
    const linearizable = await http('GET', `${node.url}/kv/before`);
    expect([200, 503]).toContain(linearizable.status);

    // Space returns: the node resumes by itself.
    rmSync(filler);
    await cluster.explained(
      eventually('writes to be accepted again', async () => ((await http('PUT', `${node.url}/kv/after`, { value: 'space is back' })).status === 200 ? true : undefined), 30_000, 250),
    );
    expect((await http('GET', `${node.url}/health/ready`)).status).toBe(200);
    expect(await metric(node, 'raftkv_storage_full')).toBe(0);
    expect((await http('PUT', `${node.url}/kv/refused`, { value: 'now accepted' })).status).toBe(200);
    acknowledged.set('before', 'written before the disk filled').set('after', 'space is back').set('refused', 'now accepted');

    // Nothing acknowledged is lost, now and after a restart on the same (untorn) log.
    const check = async () => {
      for (const [key, value] of acknowledged) expect((await http('GET', `${node.url}/kv/${key}`)).body).toEqual(keyValue(key, value));
    };
    await check();
    await node.stop();
    node.start();
    await cluster.waitForLeader();
    await check();
    console.log(`full disk (single node): ${acknowledged.size - 3} writes acknowledged before the 507, then resumed; all ${acknowledged.size} present after a restart`);
  });
});

describe('a follower whose disk fills up in a three-node cluster', () => {
  let cluster: LocalCluster | undefined;
  let dir = '';

  afterAll(async () => {
    if (cluster) await Promise.all(cluster.nodes.map((n) => n.kill()));
    unmount(dir);
    await cluster?.stop();
  });

  it('is frozen while the others go on, serves its stale reads, and catches up once space returns', async () => {
    cluster = await LocalCluster.start({
      nodes: 3,
      beforeStart: (dirs) => {
        dir = dirs[2];
        mountTmpfs(dir);
      },
    });
    let leader = await cluster.waitForLeader();
    const full = cluster.node('node3');
    if (leader === full) {
      // The full one should be a follower here: have it hand leadership over (SIGTERM), then restart it.
      await full.stop();
      full.start();
      leader = await cluster.waitForLeader();
    }
    expect((await http('PUT', `${leader.url}/kv/before`, { value: 'v0' })).status).toBe(200);
    await eventually('node3 to apply it', async () => ((await http('GET', `${full.url}/kv/before?consistency=stale`)).status === 200 ? true : undefined));
    const filler = fill(dir);

    // The cluster keeps taking writes with node3 frozen (two of three can commit).
    const acknowledged = new Map<string, string>([['before', 'v0']]);
    const value = 'y'.repeat(1000);
    for (let i = 0; i < 300; i++) {
      const answer = await http('PUT', `${leader.url}/kv/w${i}`, { value: `${i}-${value}` });
      expect(answer.status).toBe(200);
      acknowledged.set(`w${i}`, `${i}-${value}`);
    }
    await cluster.explained(eventually('node3 to report its full disk', async () => ((await metric(full, 'raftkv_storage_full')) === 1 ? true : undefined)));
    expect(full.running).toBe(true);
    expect((await http('GET', `${full.url}/health/ready`)).status).toBe(503);
    expect((await http('GET', `${full.url}/kv/before?consistency=stale`)).body).toEqual(keyValue('before', 'v0'));

    rmSync(filler);
    await cluster.explained(
      eventually('node3 to catch up', async () => ((await http('GET', `${full.url}/kv/w299?consistency=stale`)).status === 200 ? true : undefined), 30_000, 250),
    );
    expect((await http('GET', `${full.url}/health/ready`)).status).toBe(200);
    for (const [key, v] of acknowledged) expect((await http('GET', `${full.url}/kv/${key}`)).body).toEqual(keyValue(key, v));
  });
});

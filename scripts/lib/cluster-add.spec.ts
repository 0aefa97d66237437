import { addedMember, addTarget, joinThrough, nextNodeName } from './cluster-add';
import { UsageError } from './cli';
import { joinEnv } from './node-process';

const info = { basePort: 3001, host: 'localhost', bindHost: '127.0.0.1' };

describe('npm run cluster -- add: which node', () => {
  it('takes no name (the next free one) or one nodeN, and refuses anything else with a usage error', () => {
    expect(addTarget([])).toBeUndefined();
    expect(addTarget(['node7'])).toBe('node7');
    expect(() => addTarget(['node4', 'node5'])).toThrow(new UsageError("'add' starts one node at a time (got node4, node5)"));
    for (const bad of ['db1', 'node0', 'node', 'node01', 'node4x']) {
      expect(() => addTarget([bad])).toThrow(UsageError);
    }
    expect(() => addTarget(['db1'])).toThrow(/of the form nodeN, whose port is the cluster's base port \+ N - 1 \(got 'db1'\)/);
  });

  it('picks the node after the highest one among the running nodes and the data directories', () => {
    expect(nextNodeName(['node1', 'node2', 'node3'])).toBe('node4');
    // node4 was added before (its directory is there): the next one is node5, whatever else the directory holds.
    expect(nextNodeName(['node1', 'node2', 'node3', 'node4', 'cluster.sock', 'backup', 'node10.old'])).toBe('node5');
    expect(nextNodeName(['node2', 'node9'])).toBe('node10');
    expect(nextNodeName([])).toBe('node1');
  });

  it("lays nodeN out as the cluster does: port base + N - 1, data in DIR/nodeN, the cluster's host", () => {
    expect(addedMember('node4', info, '/data')).toEqual({
      name: 'node4',
      port: 3004,
      url: 'http://localhost:3004',
      dir: '/data/node4',
      bindHost: '127.0.0.1',
    });
    expect(addedMember('node12', { basePort: 4000, host: 'kv.lan', bindHost: '0.0.0.0' }, '/d').url).toBe('http://kv.lan:4011');
    expect(() => addedMember('node9', { ...info, basePort: 65530 }, '/d')).toThrow(/port 65538, which does not exist/);
  });

  it('joins through the first running node that answers', async () => {
    const nodes = [
      { name: 'node1', url: 'http://localhost:3001', running: false },
      { name: 'node2', url: 'http://localhost:3002', running: true },
      { name: 'node3', url: 'http://localhost:3003', running: true },
    ];
    const asked: string[] = [];
    const answers = (url: string) => (asked.push(url), Promise.resolve(url.endsWith('3003')));
    expect(await joinThrough({ nodes }, answers)).toBe('http://localhost:3003');
    expect(asked).toEqual(['http://localhost:3002', 'http://localhost:3003']);
    expect(await joinThrough({ nodes }, () => Promise.resolve(false))).toBeUndefined();
  });
});

describe('joinEnv', () => {
  const member = addedMember('node4', info, '/data');

  it('gives a joining node the seed variables but PEER_URLS, and JOIN', () => {
    expect(joinEnv(member, 'http://localhost:3001', { CLUSTER_TOKEN: 'secret-token-0123456' })).toEqual({
      NODE_ID: 'node4',
      HTTP_PORT: '3004',
      BIND_HOST: '127.0.0.1',
      ADVERTISE_URL: 'http://localhost:3004',
      WAL_DIR: '/data/node4',
      JOIN: 'http://localhost:3001',
      CLUSTER_TOKEN: 'secret-token-0123456',
    });
  });

  it('leaves JOIN out on a restart, and lets the extras override', () => {
    const env = joinEnv(member, undefined, { HTTP_PORT: '9999' });
    expect(env).not.toHaveProperty('JOIN');
    expect(env).not.toHaveProperty('PEER_URLS');
    expect(env.HTTP_PORT).toBe('9999');
  });
});

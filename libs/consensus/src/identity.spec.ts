/**
 * The identity record of a data directory (format 2: members by NODE_ID): what the first start records,
 * what later starts accept, and the one-line refusals for a directory this node must not start on.
 */
import { IdentityMismatchError } from './errors';
import { clusterIdFor, identityMeta, readIdentity, recordIdentity, recordRemoved } from './identity';
import { ClusterIdentity } from './membership';
import { RaftStorage } from './ports';

class FakeMetaStore implements Pick<RaftStorage, 'meta' | 'setMeta'> {
  readonly written: Record<string, unknown>[] = [];
  constructor(public meta: Record<string, unknown> | undefined = undefined) {}
  async setMeta(meta: Record<string, unknown>): Promise<void> {
    this.written.push(meta);
    this.meta = meta;
  }
}

const identity: ClusterIdentity = {
  clusterId: 'c0ffee0123456789',
  nodeId: 'node1',
  initialVoters: ['node1', 'node2', 'node3'],
  addresses: { node1: 'http://localhost:3001', node2: 'http://127.0.0.1:3002', node3: 'http://node3:3003' },
};

const recorded = {
  format: 2,
  nodeId: 'node1',
  clusterId: 'c0ffee0123456789',
  initialVoters: ['node1', 'node2', 'node3'],
  addresses: { node1: 'http://localhost:3001', node2: 'http://127.0.0.1:3002', node3: 'http://node3:3003' },
};

function refusal(meta: Record<string, unknown>, nodeId = 'node1'): string {
  let error: unknown;
  try {
    readIdentity(meta, nodeId, 'http://localhost:3001');
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(IdentityMismatchError);
  const message = (error as Error).message;
  expect(message).not.toContain('\n');
  return message;
}

describe('clusterIdFor', () => {
  it('is 16 hex digits, the same whatever the order of the voters', () => {
    const id = clusterIdFor(['node2', 'node1', 'node3']);
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(clusterIdFor(['node3', 'node2', 'node1'])).toBe(id);
  });

  it.each([
    ['other voters', () => clusterIdFor(['node1', 'node2'])],
    ['a CLUSTER_TOKEN', () => clusterIdFor(['node1', 'node2', 'node3'], 'a-token-of-16-characters')],
    // The separator keeps the token from being read as one more voter, and the reverse.
    ['voters that spell the token', () => clusterIdFor(['node1', 'node2', 'node3', 'a-token-of-16-characters'])],
  ])('differs with %s', (_what, other) => {
    expect(other()).not.toBe(clusterIdFor(['node1', 'node2', 'node3']));
  });

  it('differs with another token', () => {
    expect(clusterIdFor(['a'], 'token-one-of-16-chars')).not.toBe(clusterIdFor(['a'], 'token-two-of-16-chars'));
  });
});

describe('recordIdentity and readIdentity', () => {
  it('records format 2: nodeId, clusterId, initialVoters, addresses', async () => {
    const store = new FakeMetaStore();
    await recordIdentity(store, identity);
    expect(store.written).toEqual([recorded]);
    expect(identityMeta(identity)).toEqual(recorded);
  });

  it('reads back what was recorded', async () => {
    const store = new FakeMetaStore();
    await recordIdentity(store, identity);
    expect(readIdentity(store.meta!, 'node1', 'http://localhost:3001')).toEqual(identity);
    // A node that joined also keeps the index of its addition.
    const joined = new FakeMetaStore();
    await recordIdentity(joined, { ...identity, joinedAt: 17 });
    expect(readIdentity(joined.meta!, 'node1', 'http://localhost:3001')).toEqual({ ...identity, joinedAt: 17 });
    expect(refusal({ ...recorded, joinedAt: 0 })).toMatch(/joinedAt is not an index/);
  });

  it("replaces this node's own address with the one it advertises now, and keeps the others", () => {
    const read = readIdentity(recorded, 'node1', 'http://10.0.0.1:3001');
    expect(read.addresses).toEqual({ ...recorded.addresses, node1: 'http://10.0.0.1:3001' });
  });

  it('refuses a directory of another node, naming both', () => {
    const message = refusal(recorded, 'node2');
    expect(message).toBe(
      "the data directory belongs to node 'node1' (cluster c0ffee0123456789), this process is 'node2'; " +
        "point WAL_DIR at this node's own directory, or fix NODE_ID",
    );
  });

  it('refuses the directory of a removed node, and says how to add it back', async () => {
    const store = new FakeMetaStore({ ...recorded });
    await recordRemoved(store);
    expect(store.meta).toEqual({ ...recorded, removed: true });
    expect(refusal(store.meta!)).toBe(
      "this node was removed from the cluster; start it with an empty WAL_DIR and JOIN to add it back (node 'node1', cluster c0ffee0123456789)",
    );
  });

  it('cannot mark a directory without a record removed', async () => {
    await expect(recordRemoved(new FakeMetaStore())).rejects.toThrow(/no identity record/);
  });

  it('refuses a directory written by the URL-identity version (format 1), and gives the upgrade path', () => {
    const old = {
      nodeId: 'node1',
      url: 'http://localhost:3001',
      clusterId: 'abcdef0123456789',
      members: ['http://localhost:3001', 'http://localhost:3002', 'http://localhost:3003'],
    };
    const message = refusal(old);
    expect(message).toContain('written by an earlier version that identified members by their URL');
    expect(message).toContain('kvctl snapshot save FILE');
    expect(message).toContain('kvctl snapshot restore FILE --wal-dir NEW_DIR --node-id ID');
  });

  it('refuses an unknown format', () => {
    expect(refusal({ ...recorded, format: 3 })).toMatch(/identity record of format 3, which this version does not know/);
  });

  it.each([
    ['no nodeId', { nodeId: undefined }],
    ['no clusterId', { clusterId: '' }],
    ['initialVoters is not a list of NODE_IDs', { initialVoters: [] }],
    ['initialVoters is not a list of NODE_IDs', { initialVoters: ['node1', 7] }],
    ['no addresses', { addresses: ['http://localhost:3001'] }],
    ['an address is not a URL', { addresses: { node1: 3001 } }],
    ['removed is not true', { removed: 'yes' }],
  ])('refuses a damaged record (%s)', (what, change) => {
    const message = refusal({ ...recorded, ...change });
    expect(message).toContain(`is damaged (${what})`);
  });
});

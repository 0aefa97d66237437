/**
 * checkIdentity: the first start records who the data directory belongs to; later starts must match it,
 * and every difference is named in the error.
 */
import { IdentityMismatchError } from './errors';
import { checkIdentity, NodeIdentity } from './identity';
import { RaftStorage } from './ports';

class FakeRaftStorage implements Pick<RaftStorage, 'meta' | 'setMeta'> {
  readonly setMetaCalls: Record<string, unknown>[] = [];
  constructor(public meta: Record<string, unknown> | undefined = undefined) {}
  async setMeta(meta: Record<string, unknown>): Promise<void> {
    this.setMetaCalls.push(meta);
    this.meta = meta;
  }
}

const identity: NodeIdentity = {
  id: 'http://10.0.0.1:7000',
  name: 'node-1',
  members: ['http://10.0.0.1:7000', 'http://10.0.0.2:7000', 'http://10.0.0.3:7000'],
  clusterId: 'c-abc',
};

const recorded = {
  nodeId: 'node-1',
  url: 'http://10.0.0.1:7000',
  clusterId: 'c-abc',
  members: ['http://10.0.0.1:7000', 'http://10.0.0.2:7000', 'http://10.0.0.3:7000'],
};

async function mismatch(meta: Record<string, unknown>, id: NodeIdentity = identity): Promise<IdentityMismatchError> {
  const storage = new FakeRaftStorage(meta);
  const error = await checkIdentity(storage, id).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IdentityMismatchError);
  expect(storage.setMetaCalls).toEqual([]);
  return error as IdentityMismatchError;
}

describe('checkIdentity', () => {
  it('first start: records the identity', async () => {
    const storage = new FakeRaftStorage();
    await checkIdentity(storage, identity);
    expect(storage.setMetaCalls).toEqual([recorded]);
  });

  it('a later start with the same configuration passes and writes nothing', async () => {
    const storage = new FakeRaftStorage({ ...recorded });
    await expect(checkIdentity(storage, identity)).resolves.toBeUndefined();
    expect(storage.setMetaCalls).toEqual([]);
  });

  it('what the first start recorded is accepted by the next one', async () => {
    const storage = new FakeRaftStorage();
    await checkIdentity(storage, identity);
    await expect(checkIdentity(storage, identity)).resolves.toBeUndefined();
    expect(storage.setMetaCalls).toHaveLength(1);
  });

  describe('each mismatch is named', () => {
    it.each([
      {
        name: 'node id',
        meta: { ...recorded, nodeId: 'node-2' },
        says: ["it belongs to node 'node-2', this process is 'node-1'"],
        not: ['created for URL', 'belongs to a cluster'],
      },
      {
        name: 'url',
        meta: { ...recorded, url: 'http://10.0.0.9:7000' },
        says: ['it was created for URL http://10.0.0.9:7000, this node advertises http://10.0.0.1:7000'],
        not: ['belongs to node', 'belongs to a cluster'],
      },
      {
        name: 'cluster',
        meta: { ...recorded, clusterId: 'c-other', members: ['http://x:1', 'http://y:1'] },
        says: [
          'it belongs to a cluster of [http://x:1, http://y:1], this node is configured for ' +
            '[http://10.0.0.1:7000, http://10.0.0.2:7000, http://10.0.0.3:7000]',
        ],
        not: ['belongs to node', 'created for URL'],
      },
      {
        name: 'all three at once',
        meta: { nodeId: 'node-7', url: 'http://elsewhere:1', clusterId: 'c-zzz', members: ['http://elsewhere:1'] },
        says: ["belongs to node 'node-7'", 'created for URL http://elsewhere:1', 'belongs to a cluster of [http://elsewhere:1]'],
        not: [],
      },
      {
        name: 'cluster, with members recorded in an unexpected shape',
        meta: { ...recorded, clusterId: 'c-old', members: 'http://a:1' },
        says: ['it belongs to a cluster of [http://a:1]'],
        not: ['belongs to node'],
      },
    ])('$name', async ({ meta, says, not }) => {
      const error = await mismatch(meta);
      expect(error.message).toContain("the data directory does not match this node's configuration");
      expect(error.message).toContain('Fix NODE_ID / ADVERTISE_URL / PEER_URLS');
      for (const s of says) expect(error.message).toContain(s);
      for (const s of not) expect(error.message).not.toContain(s);
    });
  });

  it('the cluster id decides cluster identity, not the member list order', async () => {
    const storage = new FakeRaftStorage({ ...recorded, members: [...recorded.members].reverse() });
    await expect(checkIdentity(storage, identity)).resolves.toBeUndefined();
  });
});

/**
 * MAX_DATA_BYTES on a 3-node cluster: writes that grow the data are accepted until the next would pass the
 * quota, which the leader answers 507 (nothing written, the body says how full the store is). An overwrite
 * with a shorter value and a delete are still accepted, and once they made room new writes work again.
 * A follower redirects a write to the leader, which decides; Node's fetch follows that redirect to the 507.
 * /status, /metrics, kvctl and the OpenAPI document say the same.
 */
import { runKvctl } from '../support/kvctl-process';
import { ClusterNode, eventually, http, LocalCluster } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(60_000);

/** Each write below adds key + value = 50 bytes: four fit in the quota, a fifth does not. */
const QUOTA = 220;
const VALUE = 'v'.repeat(47);
const key = (i: number) => `k-${i}`;

let cluster: LocalCluster;
let leader: ClusterNode;
let follower: ClusterNode;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3, env: { MAX_DATA_BYTES: String(QUOTA) } });
  leader = await cluster.waitForLeader();
  follower = cluster.nodes.find((n) => n !== leader)!;
});

afterAll(async () => {
  await cluster?.stop();
});

const refusal = (dataBytes: number) => ({
  error: `Data quota exceeded: the store holds ${dataBytes} of MAX_DATA_BYTES ${QUOTA} bytes; delete keys to make room`,
  outcome: 'failed',
  dataBytes,
  quotaBytes: QUOTA,
});

describe('MAX_DATA_BYTES', () => {
  it('accepts writes up to the quota, answers 507 to the one that would pass it, and writes nothing of it', async () => {
    for (let i = 0; i < 4; i++) {
      expect((await http('PUT', `${leader.url}/kv/${key(i)}`, { value: VALUE })).status).toBe(200);
    }
    const refused = await http('PUT', `${leader.url}/kv/${key(4)}`, { value: VALUE });
    expect({ status: refused.status, body: refused.body }).toEqual({ status: 507, body: refusal(200) });
    expect(refused.headers.get('retry-after')).toBeNull();
    expect((await http('GET', `${leader.url}/kv/${key(4)}`)).status).toBe(404);
    // A longer value for an existing key grows the data too.
    const longer = await http('PUT', `${leader.url}/kv/${key(0)}`, { value: `${VALUE}${'x'.repeat(21)}` });
    expect({ status: longer.status, body: longer.body }).toEqual({ status: 507, body: refusal(200) });
  });

  it('reports the size and the quota in /status on every node, and in /metrics', async () => {
    for (const node of cluster.nodes) {
      await eventually(`${node.name} to report dataBytes 200`, async () => {
        const status = (await http('GET', `${node.url}/status`)).body;
        return status.dataBytes === 200 && status.quotaBytes === QUOTA ? status : undefined;
      });
    }
    const metrics = (await http('GET', `${leader.url}/metrics`)).body as string;
    expect(metrics).toMatch(/^raftkv_data_bytes 200$/m);
    expect(metrics).toMatch(new RegExp(`^raftkv_data_quota_bytes ${QUOTA}$`, 'm'));
  });

  it('through a follower: redirected to the leader, which refuses; fetch follows the redirect to the same 507', async () => {
    const redirected = await http('PUT', `${follower.url}/kv/${key(4)}`, { value: VALUE });
    expect(redirected.status).toBe(307);
    const location = redirected.headers.get('location')!;
    expect(location).toBe(`${leader.url}/kv/${key(4)}`);
    const atLeader = await http('PUT', location, { value: VALUE });
    expect({ status: atLeader.status, body: atLeader.body }).toEqual({ status: 507, body: refusal(200) });

    const followed = await fetch(`${follower.url}/kv/${key(4)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: VALUE }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(followed.redirected).toBe(true);
    expect({ status: followed.status, body: await followed.json() }).toEqual({ status: 507, body: refusal(200) });
  });

  it('documents the 507 on PUT and the new /status fields in the OpenAPI document', async () => {
    const doc = (await http('GET', `${leader.url}/docs-json`)).body;
    expect(doc.paths['/kv/{key}'].put.responses['507'].content['application/json'].schema.$ref).toBe(
      '#/components/schemas/DataQuotaExceededDto',
    );
    expect(Object.keys(doc.components.schemas.DataQuotaExceededDto.properties).sort()).toEqual(['dataBytes', 'error', 'outcome', 'quotaBytes']);
    expect(doc.components.schemas.StatusDto.properties).toEqual(
      expect.objectContaining({ dataBytes: expect.anything(), quotaBytes: expect.anything() }),
    );
    expect(doc.components.schemas.StatusDto.required).toContain('dataBytes');
    expect(doc.components.schemas.StatusDto.required).not.toContain('quotaBytes');
  });

  it('kvctl shows the refusal and exits 1', async () => {
    const result = await runKvctl(['--endpoints', cluster.nodes.map((n) => n.url).join(','), 'put', key(4), VALUE]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('answered 507: Data quota exceeded: the store holds 200 of MAX_DATA_BYTES 220 bytes');
  });

  it('accepts an overwrite with a shorter value and a delete, then new writes again', async () => {
    const shorter = await http('PUT', `${leader.url}/kv/${key(0)}`, { value: 'short' }); // 200 - 42 = 158
    expect(shorter.status).toBe(200);
    const sameSize = await http('PUT', `${follower.url}/kv/${key(1)}`, { value: 'w'.repeat(47) });
    expect(sameSize.status).toBe(307);
    expect((await http('PUT', sameSize.headers.get('location')!, { value: 'w'.repeat(47) })).status).toBe(200);
    expect((await http('DELETE', `${leader.url}/kv/${key(2)}`)).body).toMatchObject({ success: true, existed: true }); // 108
    expect((await http('PUT', `${leader.url}/kv/${key(4)}`, { value: VALUE })).status).toBe(200); // 158
    expect((await http('PUT', `${leader.url}/kv/${key(5)}`, { value: VALUE })).status).toBe(200); // 208
    expect((await http('GET', `${leader.url}/kv/${key(5)}`)).body).toEqual(keyValue(key(5), VALUE));
    const full = await http('PUT', `${leader.url}/kv/${key(6)}`, { value: VALUE });
    expect({ status: full.status, body: full.body }).toEqual({ status: 507, body: refusal(208) });
    // Deleting is allowed at any size, through a follower too (fetch follows the redirect).
    const deleted = await fetch(`${follower.url}/kv/${key(5)}`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
    expect({ status: deleted.status, body: await deleted.json() }).toMatchObject({ status: 200, body: { existed: true } });
    expect((await http('GET', `${leader.url}/status`)).body.dataBytes).toBe(158);
  });
});

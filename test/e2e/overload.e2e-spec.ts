/**
 * Bounded waiting: with MAX_PENDING_REQUESTS=1, a burst of concurrent writes to the leader is answered at
 * once with 503 "Overloaded" (Retry-After, outcome failed) for those beyond the bound, and nothing of those
 * is written; the others commit as usual. Linearizable reads are bounded the same way.
 */
import { ClusterNode, http, LocalCluster } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(60_000);

let cluster: LocalCluster;
let leader: ClusterNode;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3, env: { MAX_PENDING_REQUESTS: '1' } });
  leader = await cluster.waitForLeader();
});

afterAll(async () => {
  await cluster?.stop();
});

describe('MAX_PENDING_REQUESTS', () => {
  it('answers writes beyond the bound 503 Overloaded at once, writes none of them, and commits the others', async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `burst-${i}`);
    const answers = await Promise.all(keys.map((k) => http('PUT', `${leader.url}/kv/${k}`, { value: `v-${k}` })));
    const ok = keys.filter((_, i) => answers[i].status === 200);
    const refused = keys.filter((_, i) => answers[i].status === 503);
    expect(ok.length + refused.length).toBe(keys.length);
    expect(ok.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const a of answers.filter((x) => x.status === 503)) {
      expect(a.body).toEqual({ error: expect.stringMatching(/^Overloaded: .*MAX_PENDING_REQUESTS.*nothing was written/), outcome: 'failed' });
      expect(a.headers.get('retry-after')).toBe('1');
    }
    for (const k of ok) expect((await http('GET', `${leader.url}/kv/${k}`)).body).toEqual(keyValue(k, `v-${k}`));
    for (const k of refused) expect((await http('GET', `${leader.url}/kv/${k}`)).status).toBe(404);
  });

  it('answers linearizable reads beyond the bound 503 Overloaded, and serves the others', async () => {
    const answers = await Promise.all(Array.from({ length: 60 }, () => http('GET', `${leader.url}/kv/burst-0`)));
    const statuses = new Set(answers.map((a) => a.status));
    expect([...statuses].every((s) => s === 503 || s === 200 || s === 404)).toBe(true);
    const refused = answers.filter((a) => a.status === 503);
    expect(refused.length).toBeGreaterThan(0);
    expect(answers.length - refused.length).toBeGreaterThan(0);
    for (const a of refused) expect(a.body.error).toMatch(/^Overloaded: .*nothing was read/);
  });
});

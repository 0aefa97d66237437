import { ExitCode } from './kvctl-error';
import { fakeNodesPerTest, runKvctl as kvctl } from '../../../test/support/kvctl-fake-node';

/** `kvctl put --ttl N` against a fake node: the query it sends, and the arguments it refuses itself. */

const node = fakeNodesPerTest();

describe('kvctl put --ttl', () => {
  it('sends ?ttl=N on the key, with the condition headers if any', async () => {
    const seen: string[] = [];
    const n = await node((req) => {
      seen.push(`${req.method} ${req.url} ${req.headers['if-none-match'] ?? ''}`.trim());
      return { status: 200, body: { success: true, index: 7, createIndex: 7, modIndex: 7 } };
    });
    expect(await kvctl([n.url], 'put', '--ttl', '30', 'a/b', 'v')).toEqual({ code: ExitCode.Ok, stdout: 'OK (index 7)\n', stderr: '' });
    expect((await kvctl([n.url], 'put', '--create', '--ttl', '5', 'lease', 'me')).code).toBe(ExitCode.Ok);
    expect(seen).toEqual(['PUT /kv/a%2Fb?ttl=30', 'PUT /kv/lease?ttl=5 *']);
  });

  it.each(['0', '-3', '1.5', 'soon'])('refuses --ttl %s itself (exit 2), sending nothing', async (ttl) => {
    let requests = 0;
    const n = await node(() => {
      requests++;
      return { status: 200, body: {} };
    });
    const out = await kvctl([n.url], 'put', '--ttl', ttl, 'k', 'v');
    expect(out.code).toBe(ExitCode.Usage);
    expect(out.stderr).toMatch(/--ttl must be a whole number of seconds >= 1/);
    expect(requests).toBe(0);
  });
});

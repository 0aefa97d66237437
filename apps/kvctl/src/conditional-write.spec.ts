import { IncomingHttpHeaders } from 'node:http';
import { ExitCode } from './kvctl-error';
import { fakeNodesPerTest, runKvctl as kvctl } from '../../../test/support/kvctl-fake-node';

/**
 * `kvctl put --if-index / --create` and `delete --if-index` against fake nodes: the headers sent (also after
 * a follower's redirect), the output, and exit code 5 for a failed condition.
 */

const node = fakeNodesPerTest();

const conditionOf = (headers: IncomingHttpHeaders) => ({ ifMatch: headers['if-match'], ifNoneMatch: headers['if-none-match'] });

describe('kvctl conditional writes', () => {
  it('put --if-index N sends If-Match: "N", again to the leader a follower redirects to; prints as a plain put', async () => {
    const seen: Array<{ who: string; ifMatch?: string; ifNoneMatch?: string }> = [];
    const leader = await node((req) => {
      seen.push({ who: 'leader', ...conditionOf(req.headers) });
      return { status: 200, body: { success: true, index: 43, createIndex: 40, modIndex: 43 } };
    });
    const follower = await node((req) => {
      seen.push({ who: 'follower', ...conditionOf(req.headers) });
      return { status: 307, body: { error: 'Not leader', leader: 'node1', leaderUrl: leader.url }, headers: { location: `${leader.url}${req.url}` } };
    });
    const out = await kvctl([follower.url, leader.url], 'put', '--if-index', '42', 'k', 'v');
    expect(out).toEqual({ code: ExitCode.Ok, stdout: 'OK (index 43)\n', stderr: '' });
    expect(seen).toEqual([
      { who: 'follower', ifMatch: '"42"', ifNoneMatch: undefined },
      { who: 'leader', ifMatch: '"42"', ifNoneMatch: undefined },
    ]);
  });

  it('put --create sends If-None-Match: *; --json prints the indexes', async () => {
    const seen: Array<{ ifMatch?: string; ifNoneMatch?: string }> = [];
    const n = await node((req) => {
      seen.push(conditionOf(req.headers));
      return { status: 200, body: { success: true, index: 7, createIndex: 7, modIndex: 7 } };
    });
    const out = await kvctl([n.url], '--json', 'put', '--create', 'lock', 'me');
    expect(out.code).toBe(ExitCode.Ok);
    expect(JSON.parse(out.stdout)).toEqual({ success: true, index: 7, createIndex: 7, modIndex: 7 });
    expect(seen).toEqual([{ ifMatch: undefined, ifNoneMatch: '*' }]);
  });

  it('exits 5 on a 412, saying nothing was written and the current modIndex (or that the key is gone)', async () => {
    const n = await node((req) =>
      req.method === 'PUT'
        ? { status: 412, body: { error: 'Precondition failed: ...', key: 'lock', modIndex: 9, outcome: 'failed' } }
        : { status: 412, body: { error: 'Precondition failed: ...', key: 'lock', modIndex: null, outcome: 'failed' } },
    );
    expect(await kvctl([n.url], 'put', '--create', 'lock', 'me')).toEqual({
      code: ExitCode.ConditionFailed,
      stdout: '',
      stderr: 'kvctl: condition failed, nothing written: lock: its modIndex is now 9\n',
    });
    expect(await kvctl([n.url], 'delete', '--if-index', '9', 'lock')).toEqual({
      code: 5,
      stdout: '',
      stderr: 'kvctl: condition failed, nothing written: lock: the key does not exist\n',
    });
    expect(n.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['PUT /kv/lock', 'DELETE /kv/lock']);
  });

  it('delete --if-index N sends If-Match: "N"; a plain put or delete sends no condition', async () => {
    const seen: Array<{ method?: string; ifMatch?: string; ifNoneMatch?: string }> = [];
    const n = await node((req) => {
      seen.push({ method: req.method, ...conditionOf(req.headers) });
      return { status: 200, body: { success: true, index: 8, existed: true } };
    });
    expect((await kvctl([n.url], 'delete', '--if-index', '7', 'k')).stdout).toBe('OK (index 8)\n');
    await kvctl([n.url], 'put', 'k', 'v');
    await kvctl([n.url], 'delete', 'k');
    expect(seen).toEqual([
      { method: 'DELETE', ifMatch: '"7"', ifNoneMatch: undefined },
      { method: 'PUT', ifMatch: undefined, ifNoneMatch: undefined },
      { method: 'DELETE', ifMatch: undefined, ifNoneMatch: undefined },
    ]);
  });

  it.each([
    [['put', '--if-index', '-1', 'k', 'v'], /--if-index must be a log index/],
    [['put', '--if-index', 'abc', 'k', 'v'], /--if-index must be a log index/],
    [['put', '--if-index', '1.5', 'k', 'v'], /--if-index must be a log index/],
    [['put', '--if-index', '3', '--create', 'k', 'v'], /give --create or --if-index, not both/],
  ])('refuses %j with exit 2 before asking anyone', async (args, message) => {
    const n = await node(() => ({ status: 200, body: {} }));
    const out = await kvctl([n.url], ...args);
    expect(out.code).toBe(ExitCode.Usage);
    expect(out.stderr).toMatch(message);
    expect(n.requests).toEqual([]);
  });

  it("names exit code 5 in kvctl's help", async () => {
    const out = await kvctl(['http://127.0.0.1:9'], '--help');
    expect(out.stdout).toMatch(/5 condition failed \(put --if-index\/--create, delete --if-index\): nothing written/);
  });
});

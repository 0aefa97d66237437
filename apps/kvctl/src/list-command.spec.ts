import { ExitCode } from './kvctl-error';
import { fakeNodesPerTest, runKvctl as kvctl } from '../../../test/support/kvctl-fake-node';

/** `kvctl list` against a fake node serving `GET /kv` from a sorted list: pages, cursor, options, output. */

const node = fakeNodesPerTest();

/** A leader holding `keys` (value: `v:` + key), answering pages as a node does. */
async function leaderWith(keys: string[]) {
  const pages: Array<Record<string, string>> = [];
  const fake = await node((req) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname !== '/kv') return { status: 404, body: { error: 'not here' } };
    const query = Object.fromEntries(url.searchParams);
    pages.push(query);
    const limit = Number(query.limit ?? 100);
    const rest = keys.filter((k) => k.startsWith(query.prefix ?? '') && (query.after === undefined || k > query.after));
    const page = rest.slice(0, limit);
    const more = rest.length > limit;
    return {
      status: 200,
      body: {
        items: page.map((key) => (query.keysOnly === 'true' ? { key } : { key, value: `v:${key}` })),
        more,
        next: more ? page[page.length - 1] : null,
      },
    };
  });
  return { url: fake.url, pages };
}

const many = Array.from({ length: 2500 }, (_, i) => `k/${String(i).padStart(4, '0')}`);

describe('kvctl list', () => {
  it('follows the cursor to the end, 1000 keys a page, and prints key<TAB>value lines', async () => {
    const leader = await leaderWith([...many, 'other']);
    const { code, stdout } = await kvctl([leader.url], 'list', 'k/');
    expect(code).toBe(ExitCode.Ok);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2500);
    expect(lines[0]).toBe('k/0000\tv:k/0000');
    expect(lines[2499]).toBe('k/2499\tv:k/2499');
    expect(leader.pages).toEqual([
      { prefix: 'k/', limit: '1000' },
      { prefix: 'k/', limit: '1000', after: 'k/0999' },
      { prefix: 'k/', limit: '1000', after: 'k/1999' },
    ]);
  });

  it('--limit stops there (asking no more than needed); --keys-only prints names; --json says more and next', async () => {
    const leader = await leaderWith(many);
    const { code, stdout } = await kvctl([leader.url], '--json', 'list', 'k/', '--limit', '1500', '--keys-only');
    expect(code).toBe(ExitCode.Ok);
    const result = JSON.parse(stdout) as { items: Array<{ key: string }>; more: boolean; next: string | null };
    expect(result.items).toHaveLength(1500);
    expect(result.items[0]).toEqual({ key: 'k/0000' });
    expect(result).toMatchObject({ more: true, next: 'k/1499' });
    expect(leader.pages.map((p) => [p.limit, p.keysOnly])).toEqual([['1000', 'true'], ['500', 'true']]);
    const names = await kvctl([leader.url], 'list', 'k/000', '-k');
    expect(names.stdout).toBe(Array.from({ length: 10 }, (_, i) => `k/000${i}\n`).join(''));
  });

  it('without a prefix lists everything; --stale asks for the node\'s own copy; values with line breaks are quoted', async () => {
    const fake = await node(() => ({ status: 200, body: { items: [{ key: 'a', value: 'two\nlines' }, { key: 'b', value: 'plain' }], more: false, next: null } }));
    const { code, stdout } = await kvctl([fake.url], 'list', '--stale');
    expect(code).toBe(ExitCode.Ok);
    expect(stdout).toBe('a\t"two\\nlines"\nb\tplain\n');
    expect(fake.requests.map((r) => r.url)).toEqual(['/kv?prefix=&limit=1000&consistency=stale']);
  });

  it.each([['0'], ['-3'], ['x']])('refuses --limit %s as a usage error', async (limit) => {
    const { code, stderr } = await kvctl(['http://localhost:1'], 'list', 'k/', '--limit', limit);
    expect(code).toBe(ExitCode.Usage);
    expect(stderr).toContain('--limit must be a positive integer');
  });

  it("reports the node's 400 as a usage error", async () => {
    const fake = await node(() => ({ status: 400, body: { error: 'limit must be an integer from 1 to 1000 (the largest page)' } }));
    const { code, stderr } = await kvctl([fake.url], 'list');
    expect(code).toBe(ExitCode.Usage);
    expect(stderr).toContain('limit must be an integer');
  });
});

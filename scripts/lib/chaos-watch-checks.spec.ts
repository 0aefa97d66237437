/**
 * The chaos suite's watch check and apply-once check (test/chaos/watch-checks.ts) on small hand-made records,
 * and its clients' safe retries (test/chaos/clients.ts) against a scripted fetch. Here rather than beside them:
 * the unit project leaves test/chaos/ to the e2e project (jest.config.js).
 */
import { HistoryOp } from '../../test/linearizability/history';
import { Rng } from '../../test/simulation/rng';
import { ClientPool } from '../../test/chaos/clients';
import { NodeEndpoint } from '../../test/chaos/cluster-net';
import { checkWatches, IndexedWrite, summarizeFindings, WatcherLog, WatchEvent } from '../../test/chaos/watch-checks';

const put = (index: number, key: string, value: string): WatchEvent => ({ index, type: 'put', key, value });
const del = (index: number, key: string): WatchEvent => ({ index, type: 'delete', key });

let nextId = 1;
function op(fields: Partial<HistoryOp> & Pick<HistoryOp, 'op' | 'key'>): HistoryOp {
  return { id: nextId++, client: 'c1', start: 0, end: 1, outcome: 'ok', ...fields };
}

/** The log the clients made: c1-1 and c2-1 to k1, c1-2 to a fresh key, a delete of k1 that found it. */
const putA = op({ op: 'put', key: 'k1', value: 'c1-1' });
const putB = op({ op: 'put', key: 'k1', value: 'c2-1', client: 'c2' });
const putFresh = op({ op: 'put', key: 'f-c1-2', value: 'c1-2' });
const delA = op({ op: 'delete', key: 'k1', result: { found: true } });
const history = [putA, putB, putFresh, delA];
const indexed: IndexedWrite[] = [
  { op: putA, index: 3 },
  { op: putB, index: 5 },
  { op: putFresh, index: 6 },
  { op: delA, index: 8 },
];
const all = [put(3, 'k1', 'c1-1'), put(5, 'k1', 'c2-1'), put(6, 'f-c1-2', 'c1-2'), del(8, 'k1')];

const watcher = (name: string, segments: WatcherLog['segments'], filter: WatcherLog['filter'] = { prefix: '' }): WatcherLog => ({ name, filter, segments });
const kinds = (logs: WatcherLog[], h: HistoryOp[] = history, ix: IndexedWrite[] = indexed) => checkWatches(logs, h, ix).findings.map((f) => `${f.kind}@${f.index}${f.watcher ? `:${f.watcher}` : ''}`);

describe('the watch check', () => {
  it('passes watchers that saw the same changes, a prefix watcher its own keys only, and a reset that left a stretch uncovered', () => {
    const logs = [
      watcher('w1', [{ from: 1, to: 9, events: all }]),
      // Reset after index 4: re-read, then a new segment from 6 (the oldestIndex a 410 gave); 5 is in no segment.
      watcher('w2', [
        { from: 1, to: 4, events: all.slice(0, 1) },
        { from: 6, to: 9, events: all.slice(2) },
      ]),
      watcher('w3', [{ from: 1, to: 8, events: [all[0], all[1], all[3]] }], { prefix: 'k' }),
    ];
    const check = checkWatches(logs, history, indexed);
    expect(check.findings).toEqual([]);
    expect(check).toMatchObject({ events: 10, indexes: 4, acknowledged: { checked: 4, uncovered: 0 }, appliedTwice: 0 });
  });

  it('finds a gap: one watcher missed a change another saw, inside its segment', () => {
    const logs = [watcher('w1', [{ from: 1, to: 9, events: all }]), watcher('w2', [{ from: 1, to: 9, events: [all[0], all[2], all[3]] }])];
    expect(kinds(logs)).toEqual(['gap@5:w2']);
  });

  it('finds a duplicate and an event out of order in one stream', () => {
    const logs = [
      watcher('w1', [{ from: 1, to: 9, events: [all[0], all[1], all[1], all[2], all[3]] }]),
      watcher('w2', [{ from: 1, to: 9, events: [all[0], all[2], all[1], all[3]] }]),
    ];
    expect(kinds(logs)).toEqual(['duplicate@5:w1', 'out of order@5:w2']);
  });

  it('finds two watchers that disagree on the change at an index', () => {
    const logs = [watcher('w1', [{ from: 1, to: 9, events: all }]), watcher('w2', [{ from: 1, to: 9, events: [all[0], put(5, 'k1', 'c1-1'), all[2], all[3]] }])];
    // A second put of c1-1, too: the other watcher's view of it would be a double apply.
    expect(kinds(logs)).toEqual(['disagreement@5:w2']);
  });

  it('finds an acknowledged write that every watcher covering its index missed, and one that differs', () => {
    const skipped = [watcher('w1', [{ from: 1, to: 9, events: [all[0], all[2], all[3]] }]), watcher('w2', [{ from: 1, to: 9, events: [all[0], all[2], all[3]] }])];
    expect(kinds(skipped)).toEqual(['acknowledged write missing@5']);
    const other = [watcher('w1', [{ from: 1, to: 9, events: [all[0], put(5, 'k1', 'c9-9'), all[2], all[3]] }])];
    expect(kinds(other, [...history, op({ op: 'put', key: 'k1', value: 'c9-9', outcome: 'unknown' })])).toEqual(['acknowledged write differs@5']);
    // No watcher covered index 5: nothing to say, and counted as such.
    const short = checkWatches([watcher('w1', [{ from: 1, to: 4, events: [all[0]] }, { from: 6, to: 9, events: all.slice(2) }])], history, indexed);
    expect(short.findings).toEqual([]);
    expect(short.acknowledged).toEqual({ checked: 3, uncovered: 1 });
  });

  it('finds events outside their segment and on keys the watcher does not follow', () => {
    const logs = [watcher('w3', [{ from: 1, to: 5, events: [all[0], all[1], all[2]] }], { prefix: 'k' })];
    expect(kinds(logs)).toEqual(['outside its segment@6:w3', 'key not followed@6:w3']);
  });

  it('finds a value nobody wrote, and a write answered failed (or not swapped) that was applied', () => {
    const failed = op({ op: 'put', key: 'k2', value: 'c3-1', outcome: 'fail' });
    const notSwapped = op({ op: 'cas', key: 'k2', value: 'c3-2', expected: 'x', result: { swapped: false } });
    const elsewhere = op({ op: 'put', key: 'k3', value: 'c4-1', outcome: 'unknown' });
    // c4-1 was sent to k3, not k2.
    const logs = [watcher('w1', [{ from: 1, to: 12, events: [...all, put(9, 'k2', 'c3-1'), put(10, 'k2', 'c3-2'), put(11, 'k2', 'nobody'), put(12, 'k2', 'c4-1')] }])];
    expect(kinds(logs, [...history, failed, notSwapped, elsewhere])).toEqual(['failed write applied@9', 'failed write applied@10', 'value nobody wrote@11', 'value nobody wrote@12']);
  });

  it('finds a write applied twice: its value put at two indexes (a retry applied again)', () => {
    const logs = [watcher('w1', [{ from: 1, to: 9, events: [...all.slice(0, 3), put(7, 'k1', 'c1-1'), all[3]] }])];
    const check = checkWatches(logs, history, indexed);
    expect(check.findings.map((f) => f.kind)).toEqual(['applied twice']);
    expect(check.appliedTwice).toBe(1);
    expect(summarizeFindings(check.findings)).toBe('1 × applied twice (first: index 7: value "c1-1" put at indexes 3, 7 (op #1))');
  });
});

/** A fetch that answers from a script, one entry per request, and records what was sent. */
function scripted(answers: Array<Response | Error>) {
  const sent: { url: string; headers: Record<string, string> }[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    sent.push({ url, headers: { ...(init.headers as Record<string, string>) } });
    const next = answers.shift();
    // After the script: no answer, ever (a node that stays away).
    if (next === undefined) throw timeout();
    if (next instanceof Error) throw next;
    return next;
  }) as unknown as typeof globalThis.fetch;
  return { fetch, sent };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
function timeout(): Error {
  return Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' });
}
const refused = () => Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });

const endpoints: NodeEndpoint[] = [1, 2].map((i) => ({ name: `node${i}`, bindHost: '127.0.0.1', httpPort: 7000 + i, url: `http://127.0.0.1:${8000 + i}`, clientUrl: `http://127.0.0.1:${7000 + i}` }));

function pool(answers: Array<Response | Error>, options: { retryWrites?: boolean; retryBudgetMs?: number } = {}) {
  const { fetch, sent } = scripted(answers);
  const recorded: HistoryOp[] = [];
  const clients = new ClientPool({ clients: 0, keys: ['k1'], endpoints, timeoutMs: [1000, 1000], rng: new Rng(7), now: () => performance.now(), record: (o) => recorded.push(o), fetch, ...options });
  return { clients, sent, recorded };
}

describe('the clients\' safe retries', () => {
  it('retries a write of unknown outcome with the same Idempotency-Key until an answer settles it: one ok operation', async () => {
    const { clients, sent, recorded } = pool([timeout(), json(503, { error: 'timed out', outcome: 'unknown' }), json(200, { success: true, index: 42 }, { 'idempotent-replayed': 'true' })]);
    const done = await clients.write('c1', 'k1', 'c1-1', 0);
    expect(sent.map((s) => s.headers['idempotency-key'])).toEqual(['c1-1', 'c1-1', 'c1-1']);
    expect(recorded).toEqual([done]);
    expect(done).toMatchObject({ op: 'put', key: 'k1', value: 'c1-1', outcome: 'ok' });
    // From its first request to the answer that settled it: two pauses of at least 100 ms in between.
    expect(done.end! - done.start).toBeGreaterThanOrEqual(200);
    expect(clients.indexed).toEqual([{ op: done, index: 42 }]);
    expect(clients.retries).toEqual({ keyed: 1, retried: 1, attempts: 2, settled: 1, exhausted: 0, replayed: 1 });
  });

  it('keeps it unknown through a redirect and a refusal (an earlier request may still commit), following the redirect', async () => {
    const { clients, sent, recorded } = pool([timeout(), json(307, { error: 'Not leader' }, { location: 'http://127.0.0.1:8002/kv/k1' }), refused()], { retryBudgetMs: 900 });
    const done = await clients.write('c1', 'k1', 'c1-1', 0);
    expect(sent[2].url).toBe('http://127.0.0.1:7002/kv/k1');
    expect(recorded).toEqual([done]);
    expect(done.outcome).toBe('unknown');
    expect(clients.retries).toMatchObject({ retried: 1, settled: 0, exhausted: 1 });
    expect(sent.length).toBeGreaterThanOrEqual(4);
    expect(clients.indexed).toEqual([]);
  });

  it('does not retry a write whose first answer settled it, nor one that never reached a node', async () => {
    const { clients, sent } = pool([json(200, { success: true, index: 5 }), refused()]);
    expect((await clients.write('c1', 'k1', 'c1-1', 0)).outcome).toBe('ok');
    expect((await clients.write('c1', 'k1', 'c1-2', 0)).outcome).toBe('fail');
    expect(sent).toHaveLength(2);
    expect(clients.retries).toMatchObject({ keyed: 2, retried: 0 });
  });

  it('sends no Idempotency-Key and retries nothing with retries off', async () => {
    const { clients, sent } = pool([timeout()], { retryWrites: false });
    expect((await clients.write('c1', 'k1', 'c1-1', 0)).outcome).toBe('unknown');
    expect(sent).toEqual([{ url: 'http://127.0.0.1:7001/kv/k1', headers: { 'content-type': 'application/json' } }]);
    expect(clients.retries).toMatchObject({ keyed: 0, retried: 0 });
  });
});

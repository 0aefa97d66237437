import { KvControllerApp } from '../../../test/support/kv-controller-app';
import { decodeCommand } from './kv-command';
import { KvStateMachine } from './kv-state-machine';

/**
 * Idempotency-Key over HTTP (Fastify inject). Raft is a stand-in: every proposal gets the next index and is
 * applied when the test says (`hold` keeps proposals waiting, so that two requests can both be proposed
 * before either applies, as concurrent retries on a real leader are).
 */

let kv: KvControllerApp;
let stateMachine: KvStateMachine;
let proposals: Uint8Array[];

beforeEach(async () => {
  kv = await KvControllerApp.start();
  ({ stateMachine, proposals } = kv);
});

afterEach(async () => {
  await kv?.close();
});

async function request(method: 'GET' | 'PUT' | 'DELETE', url: string, headers: Record<string, string> = {}, value?: string) {
  const { status, headers: answered, body } = await kv.request(method, url, headers, value);
  return { status, replayed: answered['idempotent-replayed'], body };
}

const key = (token: string) => ({ 'idempotency-key': token });

describe('KvController: Idempotency-Key', () => {
  it('a PUT sent twice with one key applies once: the retry gets the same body and Idempotent-Replayed, without a proposal', async () => {
    const first = await request('PUT', '/kv/k', key('t-1'), 'v');
    expect(first).toEqual({ status: 200, replayed: undefined, body: { success: true, index: 1, createIndex: 1, modIndex: 1 } });
    expect(decodeCommand(proposals[0])).toMatchObject({ op: 'put', idempotency: { token: 't-1' } });
    await request('PUT', '/kv/k', {}, 'changed by another client');
    const retry = await request('PUT', '/kv/k', key('t-1'), 'v');
    expect(retry).toEqual({ status: 200, replayed: 'true', body: first.body });
    // Answered from the table on the node that received it: no third proposal.
    expect(proposals).toHaveLength(2);
    expect((await request('GET', '/kv/k')).body.value).toBe('changed by another client');
  });

  it('two identical PUTs proposed before either applies: the second is replayed at apply, with the first index', async () => {
    kv.hold();
    const a = request('PUT', '/kv/race', key('t-race'), 'v');
    const b = request('PUT', '/kv/race', key('t-race'), 'v');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(proposals).toHaveLength(2);
    kv.release();
    const [first, second] = await Promise.all([a, b]);
    expect(first).toEqual({ status: 200, replayed: undefined, body: { success: true, index: 1, createIndex: 1, modIndex: 1 } });
    expect(second).toEqual({ status: 200, replayed: 'true', body: first.body });
    expect(stateMachine.getRecord('race')).toMatchObject({ modIndex: 1 });
  });

  it('the same key for a different request answers 422, at once or at apply, and writes nothing', async () => {
    await request('PUT', '/kv/k', key('t-2'), 'v');
    const reused = await request('PUT', '/kv/k', key('t-2'), 'other');
    expect(reused.status).toBe(422);
    expect(reused.body).toEqual({ error: 'Idempotency-Key "t-2" was used for a different request; use a new key for a new request', outcome: 'failed' });
    expect((await request('DELETE', '/kv/k', key('t-2'))).status).toBe(422);

    kv.hold();
    const a = request('PUT', '/kv/m', key('t-3'), 'one');
    const b = request('PUT', '/kv/m', key('t-3'), 'two');
    await new Promise((resolve) => setTimeout(resolve, 50));
    kv.release();
    expect([(await a).status, (await b).status]).toEqual([200, 422]);
    expect(stateMachine.get('m')).toBe('one');
  });

  it('a DELETE retry answers the first outcome (existed), and a conditional write replays its 412 with the header', async () => {
    await request('PUT', '/kv/d', {}, 'v');
    const first = await request('DELETE', '/kv/d', key('t-del'));
    expect(first.body).toEqual({ success: true, index: 2, existed: true });
    const retry = await request('DELETE', '/kv/d', key('t-del'));
    expect(retry).toEqual({ status: 200, replayed: 'true', body: first.body });

    await request('PUT', '/kv/lock', {}, 'someone');
    const refused = await request('PUT', '/kv/lock', { ...key('t-cas'), 'if-none-match': '*' }, 'me');
    expect(refused.status).toBe(412);
    expect(refused.replayed).toBeUndefined();
    await request('DELETE', '/kv/lock');
    const again = await request('PUT', '/kv/lock', { ...key('t-cas'), 'if-none-match': '*' }, 'me');
    expect(again).toEqual({ status: 412, replayed: 'true', body: refused.body });
    expect((await request('GET', '/kv/lock')).status).toBe(404);
  });

  it('a ttl is part of the request: the same key with another ttl is another request', async () => {
    await request('PUT', '/kv/t?ttl=5', key('t-ttl'), 'v');
    expect((await request('PUT', '/kv/t?ttl=6', key('t-ttl'), 'v')).status).toBe(422);
    expect((await request('PUT', '/kv/t?ttl=5', key('t-ttl'), 'v')).replayed).toBe('true');
  });

  it.each(['', 'a b', 'x'.repeat(129)])('refuses Idempotency-Key %j with 400, proposing nothing', async (token) => {
    const answer = await request('PUT', '/kv/k', key(token), 'v');
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatch(/^Idempotency-Key must be one token of 1 to 128 visible ASCII characters/);
    expect(proposals).toHaveLength(0);
  });
});

import { KvControllerApp } from '../../../test/support/kv-controller-app';
import { decodeCommand } from './kv-command';
import { KvStateMachine } from './kv-state-machine';
import { MAX_TTL_SECONDS } from './write-options';

/**
 * ?ttl over HTTP (Fastify inject): the TTL and the leader's time travel in the proposed command, and GET
 * shows the time left on the serving node's clock. Raft is a stand-in that applies every proposal at once.
 */

let kv: KvControllerApp;
let stateMachine: KvStateMachine;
let proposed: Uint8Array[];
const T0 = Date.UTC(2030, 0, 1);

beforeAll(async () => {
  kv = await KvControllerApp.start();
  ({ stateMachine, proposals: proposed } = kv);
  kv.service.now = () => T0;
});

afterAll(async () => {
  await kv?.close();
  jest.useRealTimers();
});

async function request(method: 'GET' | 'PUT', url: string, value?: string) {
  const { status, body } = await kv.request(method, url, {}, value);
  return { status, body };
}

describe('KvController: ?ttl', () => {
  it("PUT ?ttl=30 proposes the TTL with the leader's time; GET shows ttl (seconds left, rounded up) and expiresAt", async () => {
    expect((await request('PUT', '/kv/session?ttl=30', 'token')).status).toBe(200);
    expect(decodeCommand(proposed.at(-1)!)).toMatchObject({ op: 'put', key: 'session', ttl: 30, at: T0 });
    jest.useFakeTimers({ now: T0 + 2500, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const read = await request('GET', '/kv/session');
    expect(read).toEqual({
      status: 200,
      body: expect.objectContaining({ value: 'token', ttl: 28, expiresAt: new Date(T0 + 30_000).toISOString() }) as unknown,
    });
    jest.setSystemTime(T0 + 31_000);
    expect((await request('GET', '/kv/session?consistency=stale')).body.ttl).toBe(0);
    jest.useRealTimers();
  });

  it('a PUT without ttl makes the key permanent: no ttl nor expiresAt in the answer', async () => {
    await request('PUT', '/kv/p?ttl=5', 'a');
    await request('PUT', '/kv/p', 'b');
    const read = await request('GET', '/kv/p');
    expect(read.body).not.toHaveProperty('ttl');
    expect(read.body).not.toHaveProperty('expiresAt');
    expect(decodeCommand(proposed.at(-1)!)).toEqual({ op: 'put', key: 'p', value: 'b' });
  });

  it.each(['0', '-1', '1.5', 'abc', '', '1e3', ' 5', String(MAX_TTL_SECONDS + 1), '99999999999'])('refuses ?ttl=%j with 400, proposing nothing', async (ttl) => {
    const before = proposed.length;
    const answer = await request('PUT', `/kv/bad?ttl=${encodeURIComponent(ttl)}`, 'v');
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatch(/^ttl must be a whole number of seconds from 1 to 315360000/);
    expect(proposed.length).toBe(before);
  });

  it('refuses a repeated ttl, and accepts the largest one', async () => {
    expect((await request('PUT', '/kv/bad?ttl=1&ttl=2', 'v')).status).toBe(400);
    expect((await request('PUT', `/kv/long?ttl=${MAX_TTL_SECONDS}`, 'v')).status).toBe(200);
  });
});

import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { Entry, EntryType, RaftNode } from '@app/consensus';
import { decodeCommand } from './kv-command';
import { KvController } from './kv.controller';
import { KV_OPTIONS, KvService } from './kv.service';
import { KvStateMachine } from './kv-state-machine';
import { MAX_TTL_SECONDS } from './write-options';

/**
 * ?ttl over HTTP (Fastify inject): the TTL and the leader's time travel in the proposed command, and GET
 * shows the time left on the serving node's clock. Raft is a stand-in that applies every proposal at once.
 */

let app: NestFastifyApplication;
let stateMachine: KvStateMachine;
const proposed: Uint8Array[] = [];
const T0 = Date.UTC(2030, 0, 1);

beforeAll(async () => {
  stateMachine = new KvStateMachine();
  let index = 0;
  const raft: Partial<RaftNode> = {
    propose: async (data: Uint8Array) => {
      proposed.push(data);
      const entry: Entry = { term: 1, index: ++index, type: EntryType.Normal, data };
      return { index, result: stateMachine.apply(entry) };
    },
    readBarrier: async () => index,
  };
  const moduleRef = await Test.createTestingModule({
    controllers: [KvController],
    providers: [
      KvService,
      { provide: KvStateMachine, useValue: stateMachine },
      { provide: RaftNode, useValue: raft },
      { provide: KV_OPTIONS, useValue: { maxKeyBytes: 64, maxValueBytes: 256 } },
    ],
  }).compile();
  moduleRef.get(KvService).now = () => T0;
  app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
});

afterAll(async () => {
  await app?.close();
  jest.useRealTimers();
});

async function request(method: 'GET' | 'PUT', url: string, value?: string) {
  const response = await app.inject({
    method,
    url,
    headers: value === undefined ? {} : { 'content-type': 'application/json' },
    payload: value === undefined ? undefined : JSON.stringify({ value }),
  });
  return { status: response.statusCode, body: response.json() as Record<string, unknown> };
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

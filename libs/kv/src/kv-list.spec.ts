/**
 * Listing keys: KvService.list over a stand-in Raft node, and `GET /kv` as a node serves it (the controller,
 * its query validation and compiled serializer on Fastify, requests injected) with its OpenAPI description.
 */
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Test } from '@nestjs/testing';
import { Entry, EntryType, RaftNode } from '@app/consensus';
import { HttpErrorsFilter } from '../../../apps/kv-node/src/http-errors.filter';
import { encodeCommand } from './kv-command';
import { KvController } from './kv.controller';
import { KV_OPTIONS, KvService, LIST_PAGE_BYTES } from './kv.service';
import { KvStateMachine } from './kv-state-machine';

/** A Raft node that commits every proposal at once, and records the read barriers asked of it. */
function fakeRaft(machine: KvStateMachine) {
  let index = 0;
  const barriers: unknown[] = [];
  const raft = {
    propose: async (data: Uint8Array) => {
      const entry: Entry = { term: 1, index: ++index, type: EntryType.Normal, data };
      return { index, result: machine.apply(entry) };
    },
    readBarrier: async (options: unknown) => {
      barriers.push(options);
      return index;
    },
  };
  return { raft: raft as unknown as RaftNode, barriers };
}

function put(machine: KvStateMachine, key: string, value: string): void {
  machine.apply({ term: 1, index: 1, type: EntryType.Normal, data: encodeCommand({ op: 'put', key, value }) });
}

/** A listed item with its value: the indexes are whatever log index wrote it. */
const item = (key: string, value: string) => ({ key, value, createIndex: expect.any(Number), modIndex: expect.any(Number) });

describe('KvService.list', () => {
  const setup = () => {
    const machine = new KvStateMachine();
    const { raft, barriers } = fakeRaft(machine);
    const kv = new KvService(raft, machine, { maxKeyBytes: 1024, maxValueBytes: 8 * 1024 * 1024 });
    return { machine, kv, barriers };
  };

  it('is linearizable by default through the follower-capable read barrier; stale reads skip it', async () => {
    const { machine, kv, barriers } = setup();
    put(machine, 'a/1', 'x');
    await expect(kv.list({ prefix: 'a/', limit: 10, keysOnly: false })).resolves.toEqual({ items: [item('a/1', 'x')], more: false, next: null });
    expect(barriers).toEqual([{ onFollower: true }]);
    await kv.list({ prefix: 'a/', limit: 10, keysOnly: false }, 'stale');
    expect(barriers).toHaveLength(1);
  });

  it('pages with a cursor: next is the last key while more, null at the end; keysOnly leaves values out', async () => {
    const { machine, kv } = setup();
    for (const key of ['u/3', 'u/1', 'u/2', 'v/1']) put(machine, key, `val-${key}`);
    const first = await kv.list({ prefix: 'u/', limit: 2, keysOnly: true });
    expect(first).toEqual({ items: [{ key: 'u/1' }, { key: 'u/2' }], more: true, next: 'u/2' });
    const second = await kv.list({ prefix: 'u/', after: first.next!, limit: 2, keysOnly: false });
    expect(second).toEqual({ items: [item('u/3', 'val-u/3')], more: false, next: null });
  });

  it('ends a page early, with more, once its keys and values reach LIST_PAGE_BYTES; always holds one item', async () => {
    const { machine, kv } = setup();
    const big = 'x'.repeat(LIST_PAGE_BYTES / 2);
    for (const key of ['b/1', 'b/2', 'b/3']) put(machine, key, big);
    const page = await kv.list({ prefix: 'b/', limit: 10, keysOnly: false });
    expect(page.items.map((i) => i.key)).toEqual(['b/1', 'b/2']);
    expect(page).toMatchObject({ more: true, next: 'b/2' });
    put(machine, 'c/1', 'y'.repeat(LIST_PAGE_BYTES * 2));
    put(machine, 'c/2', 'z');
    expect(await kv.list({ prefix: 'c/', limit: 10, keysOnly: false })).toMatchObject({ items: [{ key: 'c/1' }], more: true, next: 'c/1' });
    // Names only: the values do not count.
    expect((await kv.list({ prefix: 'b/', limit: 10, keysOnly: true })).items).toHaveLength(3);
  });

  it.each([0, -1, 1.5, NaN])('refuses a limit of %p', async (limit) => {
    const { kv } = setup();
    await expect(kv.list({ prefix: '', limit, keysOnly: false })).rejects.toThrow(RangeError);
  });
});

describe('GET /kv', () => {
  let app: NestFastifyApplication;
  let machine: KvStateMachine;

  beforeAll(async () => {
    machine = new KvStateMachine();
    const moduleRef = await Test.createTestingModule({
      controllers: [KvController],
      providers: [
        KvService,
        { provide: KvStateMachine, useValue: machine },
        { provide: RaftNode, useValue: fakeRaft(machine).raft },
        { provide: KV_OPTIONS, useValue: { maxKeyBytes: 1024, maxValueBytes: 1024 } },
      ],
    }).compile();
    app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    app.useGlobalFilters(new HttpErrorsFilter());
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    for (let i = 0; i < 150; i++) put(machine, `n/${String(i).padStart(3, '0')}`, `v${i}`);
    for (const key of ['user/1', 'user/2', 'user/🔑', 'user/\uFFFD', 'user/ключ', 'users']) put(machine, key, `value of ${key}`);
  });

  afterAll(async () => {
    await app?.close();
  });

  const get = async (url: string) => {
    const res = await app.inject({ method: 'GET', url });
    return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, any> };
  };

  it('lists a prefix in UTF-8 byte order with values, as {items, more, next}', async () => {
    expect(await get(`/kv?prefix=${encodeURIComponent('user/')}`)).toEqual({
      status: 200,
      body: {
        items: [
          item('user/1', 'value of user/1'),
          item('user/2', 'value of user/2'),
          item('user/ключ', 'value of user/ключ'),
          item('user/\uFFFD', 'value of user/\uFFFD'),
          item('user/🔑', 'value of user/🔑'),
        ],
        more: false,
        next: null,
      },
    });
  });

  it('pages 100 items by default and follows the cursor to the end; keysOnly gives names only', async () => {
    const first = await get('/kv?prefix=n/&keysOnly=true');
    expect(first.body.items).toHaveLength(100);
    expect(first.body.items[0]).toEqual({ key: 'n/000' });
    expect(first.body).toMatchObject({ more: true, next: 'n/099' });
    const rest = await get(`/kv?prefix=n/&keysOnly=false&limit=1000&after=${first.body.next}`);
    expect(rest.body.items.map((i: { key: string }) => i.key)).toEqual(Array.from({ length: 50 }, (_, i) => `n/${100 + i}`));
    expect(rest.body).toMatchObject({ more: false, next: null });
    expect(rest.body.items[0]).toEqual(item('n/100', 'v100'));
  });

  it('an empty or absent prefix lists every key; stale is accepted', async () => {
    const all = await get('/kv?limit=1000&keysOnly=true&consistency=stale');
    expect(all.body.items).toHaveLength(156);
    expect((await get('/kv?prefix=&limit=3')).body.items.map((i: { key: string }) => i.key)).toEqual(['n/000', 'n/001', 'n/002']);
  });

  it.each([
    ['limit=0', /^limit must be an integer from 1 to 1000/],
    ['limit=1001', /^limit must be an integer from 1 to 1000/],
    ['limit=abc', /^limit must be an integer from 1 to 1000/],
    ['limit=', /^limit must be an integer from 1 to 1000/],
    ['limit=-5', /^limit must be an integer from 1 to 1000/],
    ['keysOnly=yes', /^keysOnly must be true or false/],
    ['consistency=eventual', /^consistency must be one of/],
    ['prefix=a&prefix=b', /^prefix must be a string/],
    ['after=a&after=b', /^after must be a string/],
    ['offset=3', /^unknown field "offset"/],
  ])('answers 400 naming the parameter for ?%s', async (query, message) => {
    const { status, body } = await get(`/kv?${query}`);
    expect(status).toBe(400);
    expect(body.error).toMatch(message);
  });

  it('accepts the largest limit', async () => {
    expect((await get('/kv?limit=1000')).status).toBe(200);
  });

  it('is described in the OpenAPI document with its query parameters and examples', () => {
    const document = SwaggerModule.createDocument(app, new DocumentBuilder().build());
    const operation = document.paths['/kv'].get!;
    const names = (operation.parameters as Array<{ name: string; in: string }>).filter((p) => p.in === 'query').map((p) => p.name);
    expect(names.sort()).toEqual(['after', 'consistency', 'keysOnly', 'limit', 'prefix']);
    const ok = operation.responses['200'] as { content: Record<string, { examples: Record<string, { value: unknown }> }> };
    expect(Object.keys(ok.content['application/json'].examples)).toEqual(['page', 'last', 'keysOnly']);
    expect(operation.responses['400']).toBeDefined();
  });
});

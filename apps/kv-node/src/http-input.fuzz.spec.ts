import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { Entry, EntryType, RaftNode } from '@app/consensus';
import { KV_OPTIONS, KvService, KvStateMachine } from '@app/kv';
import { KvController } from '../../../libs/kv/src/kv.controller';
import fc from 'fast-check';
import { bodyLimitFor, installBodyLimit, parserLimitFor } from './body-limit';
import { HttpErrorsFilter } from './http-errors.filter';

/**
 * The public API's input layer against random requests: the KV controller with its DTO validation pipe and
 * error filters, on Fastify as main.ts sets it up (body limit, path parameter length, the global filter),
 * driven with `inject` (no socket). Raft is a stand-in that commits every proposal at once. Whatever the
 * key, query, body or Content-Type, the answer is a 2xx or a 4xx JSON error, never a 500.
 */

const MAX_KEY_BYTES = 64;
const MAX_VALUE_BYTES = 256;

let app: NestFastifyApplication;

beforeAll(async () => {
  let stateMachine: KvStateMachine | undefined;
  let index = 0;
  const raft: Partial<RaftNode> = {
    propose: async (data: Uint8Array) => {
      const entry: Entry = { term: 1, index: ++index, type: EntryType.Normal, data };
      return { index, result: stateMachine!.apply(entry) };
    },
    readBarrier: async () => index,
  };
  const moduleRef = await Test.createTestingModule({
    controllers: [KvController],
    providers: [
      KvService,
      KvStateMachine,
      { provide: RaftNode, useValue: raft },
      { provide: KV_OPTIONS, useValue: { maxKeyBytes: MAX_KEY_BYTES, maxValueBytes: MAX_VALUE_BYTES } },
    ],
  }).compile();
  stateMachine = moduleRef.get(KvStateMachine);
  const bodyLimit = bodyLimitFor(MAX_VALUE_BYTES);
  app = moduleRef.createNestApplication<NestFastifyApplication>(
    new FastifyAdapter({ bodyLimit: parserLimitFor(bodyLimit), routerOptions: { maxParamLength: 3 * MAX_KEY_BYTES } }),
    { logger: false },
  );
  installBodyLimit(app.getHttpAdapter().getInstance(), bodyLimit);
  app.useGlobalFilters(new HttpErrorsFilter());
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
});

afterAll(async () => {
  await app?.close();
});

// ---- requests ----

const anyText = (maxLength: number) =>
  fc.oneof(fc.string({ maxLength }), fc.string({ unit: 'grapheme', maxLength }), fc.string({ unit: 'binary', maxLength }));
/** Characters that mean something in a URL, and broken percent-escapes. */
const urlish = fc
  .array(fc.oneof(fc.constantFrom('%', '%zz', '%C3', '%00', '%2F', '/', '?', '&', '=', '#', '..', '.', '+', ';', ' ', '\t', '~', '[', ']', '@', ':'), fc.string({ maxLength: 4 })), { maxLength: 8 })
  .map((parts) => parts.join(''));

const key = fc.oneof(
  { weight: 4, arbitrary: anyText(MAX_KEY_BYTES + 8).map(encodeURIComponent) },
  { weight: 2, arbitrary: urlish },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(MAX_KEY_BYTES), 'x'.repeat(MAX_KEY_BYTES + 1), '%E2%82%AC'.repeat(22), 'y'.repeat(3 * MAX_KEY_BYTES + 1)) },
);

const queryPart = fc.oneof(
  fc.constantFrom('consistency=stale', 'consistency=linearizable', 'consistency=', 'consistency', 'consistency=STALE', 'consistency[]=stale'),
  fc.constantFrom('__proto__=x', '__proto__=y', '__proto__[a]=1', 'constructor=x', 'constructor[prototype][x]=1', 'toString=1', 'hasOwnProperty=1'),
  fc.tuple(fc.constantFrom('consistency', 'x', '__proto__', 'constructor'), anyText(12)).map(([k, v]) => `${k}=${encodeURIComponent(v)}`),
  urlish,
);
const query = fc.option(fc.array(queryPart, { minLength: 1, maxLength: 3 }).map((parts) => `?${parts.join('&')}`), { nil: '' });

const jsonValue = fc.oneof(anyText(MAX_VALUE_BYTES + 20), fc.jsonValue({ maxDepth: 2 }));
const body = fc.oneof(
  fc.record({ value: jsonValue }).map((b) => JSON.stringify(b)),
  fc.tuple(fc.record({ value: anyText(20) }), fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'value')), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }))
    .map(([b, extra]) => JSON.stringify({ ...extra, ...b })),
  fc.constantFrom('{"__proto__":{"value":"x"}}', '{"value":"a","__proto__":{}}', '{"constructor":{"prototype":{}},"value":"a"}', '{"value":"x"}{"value":"y"}', '{"value":"\\ud800"}'),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
  anyText(40),
  fc.constant(''),
);
const contentType = fc.oneof(
  { weight: 5, arbitrary: fc.constant('application/json') },
  { weight: 2, arbitrary: fc.constantFrom(undefined, 'text/plain', 'application/json; charset=utf-8', 'application/JSON', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'multipart/form-data', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

/** Whether a read's query is one the API accepts: none, or exactly one valid `consistency`. */
function isValidReadQuery(q: string): boolean {
  const params = [...new URLSearchParams(q.slice(1))];
  if (params.length === 0) return true;
  return params.length === 1 && params[0][0] === 'consistency' && ['linearizable', 'stale'].includes(params[0][1]);
}

const kvRequest = fc.record({
  method: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE') }, { weight: 1, arbitrary: fc.constantFrom('POST', 'PATCH', 'HEAD', 'OPTIONS') }),
  path: fc.oneof({ weight: 9, arbitrary: key.map((k) => `/kv/${k}`) }, { weight: 1, arbitrary: fc.constantFrom('/kv', '/kv/', '/kv//x', '/KV/x', '/kv/a/b') }),
  query,
  body: fc.option(body, { nil: undefined }),
  contentType,
});

describe('HTTP input layer, fuzzed', () => {
  it('answers every random request with a 2xx or a 4xx JSON error, never a 500', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(kvRequest, async ({ method, path, query: q, body: payload, contentType: type }) => {
        const headers: Record<string, string> = {};
        if (type !== undefined && payload !== undefined) headers['content-type'] = type;
        const res = await app.inject({ method: method as 'GET', url: path + q, headers, payload });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        expect(res.statusCode).toBeGreaterThanOrEqual(200);
        expect(res.statusCode).toBeLessThan(500);
        expect(res.statusCode === 200 || res.statusCode >= 400).toBe(true);
        // Nothing slips past validation: a read is served only with a valid query.
        if (method === 'GET' && res.statusCode === 200) expect(isValidReadQuery(q)).toBe(true);
        if (method === 'HEAD') return;
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        const answer = res.json();
        if (res.statusCode >= 400) expect(typeof answer.error).toBe('string');
      }),
      { numRuns: 300 },
    );
    // The run reached both sides: accepted requests and refused ones.
    expect(statuses.get(200)).toBeGreaterThan(0);
    expect(statuses.get(400)).toBeGreaterThan(0);
  });
});

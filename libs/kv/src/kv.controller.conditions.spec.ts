import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { KvControllerApp } from '../../../test/support/kv-controller-app';

/**
 * The conditional-write surface of /kv over HTTP (Fastify `inject`, no socket): headers in, ETag and 412
 * out, through the controller's response schemas (which drop any field they do not list). Raft is a stand-in
 * that commits and applies every proposal at once; what matters here is that the condition travels inside
 * the proposed command and its outcome comes back from apply.
 */

let kv: KvControllerApp;

beforeAll(async () => {
  kv = await KvControllerApp.start();
});

afterAll(async () => {
  await kv?.close();
});

async function request(method: 'GET' | 'PUT' | 'DELETE', url: string, headers: Record<string, string> = {}, value?: string) {
  const { status, headers: answered, body } = await kv.request(method, url, headers, value);
  return { status, etag: answered.etag as string | undefined, body };
}

describe('KvController: versions and conditional writes', () => {
  it('PUT answers the new modIndex (its index) and createIndex, and the ETag; GET the same, on a stale read too', async () => {
    const created = await request('PUT', '/kv/a', {}, 'one');
    expect(created.status).toBe(200);
    const index = created.body.index as number;
    expect(created.body).toEqual({ success: true, index, createIndex: index, modIndex: index });
    expect(created.etag).toBe(`"${index}"`);
    const changed = await request('PUT', '/kv/a', {}, 'two');
    expect(changed.body).toEqual({ success: true, index: index + 1, createIndex: index, modIndex: index + 1 });
    for (const url of ['/kv/a', '/kv/a?consistency=stale']) {
      const read = await request('GET', url);
      expect(read).toEqual({ status: 200, etag: `"${index + 1}"`, body: { key: 'a', value: 'two', createIndex: index, modIndex: index + 1 } });
    }
  });

  it('If-Match: the current ETag writes, an older one answers 412 with the current modIndex and changes nothing', async () => {
    const { etag } = await request('PUT', '/kv/b', {}, 'v1');
    const ok = await request('PUT', '/kv/b', { 'if-match': etag! }, 'v2');
    expect(ok.status).toBe(200);
    const stale = await request('PUT', '/kv/b', { 'if-match': etag! }, 'v3');
    expect(stale.status).toBe(412);
    expect(stale.body).toEqual({
      error: `Precondition failed: If-Match: ${etag}, but the key was last changed at index ${ok.body.modIndex}`,
      key: 'b',
      modIndex: ok.body.modIndex,
      outcome: 'failed',
    });
    expect(stale.etag).toBe(ok.etag);
    expect((await request('GET', '/kv/b')).body.value).toBe('v2');
    // Unquoted, as typed by hand.
    expect((await request('PUT', '/kv/b', { 'if-match': String(ok.body.modIndex) }, 'v4')).status).toBe(200);
  });

  it('If-None-Match: * creates once; the second answers 412 with the modIndex of the first', async () => {
    const first = await request('PUT', '/kv/lock', { 'if-none-match': '*' }, 'me');
    expect(first.status).toBe(200);
    const second = await request('PUT', '/kv/lock', { 'if-none-match': '*' }, 'you');
    expect(second.status).toBe(412);
    expect(second.body).toMatchObject({ key: 'lock', modIndex: first.body.modIndex, outcome: 'failed' });
    expect(second.body.error).toMatch(/^Precondition failed: If-None-Match: \* \(create only\), but the key was last changed at index \d+$/);
  });

  it('DELETE with If-Match: 412 (modIndex null) on a missing key, 412 on a changed one, 200 on the current one', async () => {
    const missing = await request('DELETE', '/kv/gone', { 'if-match': '"1"' });
    expect(missing).toEqual({
      status: 412,
      etag: undefined,
      body: { error: 'Precondition failed: If-Match: "1", but the key does not exist', key: 'gone', modIndex: null, outcome: 'failed' },
    });
    const { etag } = await request('PUT', '/kv/c', {}, 'v');
    await request('PUT', '/kv/c', {}, 'changed');
    expect((await request('DELETE', '/kv/c', { 'if-match': etag! })).status).toBe(412);
    const current = (await request('GET', '/kv/c')).etag!;
    expect(await request('DELETE', '/kv/c', { 'if-match': current })).toMatchObject({ status: 200, body: { success: true, existed: true } });
    expect((await request('GET', '/kv/c')).status).toBe(404);
  });

  it('If-Match: * needs the key to exist', async () => {
    expect((await request('PUT', '/kv/d', { 'if-match': '*' }, 'v')).status).toBe(412);
    await request('PUT', '/kv/d', {}, 'v');
    expect((await request('PUT', '/kv/d', { 'if-match': '*' }, 'w')).status).toBe(200);
  });

  it.each<[string, Record<string, string>]>([
    ['a weak ETag', { 'if-match': 'W/"1"' }],
    ['a list', { 'if-match': '"1", "2"' }],
    ['garbage', { 'if-match': 'yes' }],
    ['If-None-Match other than *', { 'if-none-match': '"1"' }],
    ['both headers', { 'if-match': '"1"', 'if-none-match': '*' }],
  ])('refuses %s with 400, proposing nothing', async (_name, headers) => {
    const before = kv.proposals.length;
    for (const method of ['PUT', 'DELETE'] as const) {
      const answer = await request(method, '/kv/e', headers, method === 'PUT' ? 'v' : undefined);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatch(/If-Match|If-None-Match/);
    }
    expect(kv.proposals).toHaveLength(before);
  });
});

describe('KvController: the OpenAPI document', () => {
  it('documents the condition headers, the 412, the ETag and the indexes', () => {
    const doc = SwaggerModule.createDocument(kv.app, new DocumentBuilder().build());
    const route = doc.paths['/kv/{key}'];
    for (const method of ['put', 'delete'] as const) {
      const headers = (route[method]!.parameters as Array<{ in: string; name: string }>).filter((p) => p.in === 'header').map((p) => p.name);
      expect({ method, headers }).toEqual({ method, headers: ['If-Match', 'If-None-Match', 'Idempotency-Key'] });
      expect((route[method]!.responses['412'] as { content: Record<string, { schema: { $ref: string } }> }).content['application/json'].schema.$ref).toBe(
        '#/components/schemas/PreconditionFailedDto',
      );
    }
    for (const method of ['put', 'get'] as const) {
      expect(Object.keys((route[method]!.responses['200'] as { headers: object }).headers)).toEqual(expect.arrayContaining(['ETag']));
    }
    const schemas = doc.components!.schemas as Record<string, { properties: object }>;
    expect(Object.keys(schemas.KeyValueDto.properties)).toEqual(['key', 'value', 'createIndex', 'modIndex', 'ttl', 'expiresAt']);
    expect(Object.keys(schemas.PutResultDto.properties)).toEqual(expect.arrayContaining(['success', 'index', 'createIndex', 'modIndex']));
    expect(Object.keys(schemas.PreconditionFailedDto.properties)).toEqual(['error', 'key', 'modIndex', 'outcome']);
  });
});

/**
 * The public API of one node running as a single-node cluster (the seed's `PEER_URLS=` mode): answers,
 * bad inputs, health, metrics and the OpenAPI document.
 */
import { http, LocalCluster, ClusterNode } from '../support/local-cluster';
import { keyValue } from '../support/kv-bodies';

jest.setTimeout(60_000);

let cluster: LocalCluster;
let node: ClusterNode;
let base: string;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 1, env: { MAX_KEY_BYTES: '64', MAX_VALUE_BYTES: '1024' } });
  node = await cluster.waitForLeader();
  base = node.url;
});

afterAll(async () => {
  await cluster?.stop();
});

describe('single node: the seed API', () => {
  it('PUT answers {"success": true} with the log index, and GET returns the value', async () => {
    const put = await http('PUT', `${base}/kv/username`, { value: 'alice' });
    expect(put.status).toBe(200);
    const index = put.body.index;
    // A new key: this write created it and last changed it.
    expect(put.body).toEqual({ success: true, index: expect.any(Number), createIndex: index, modIndex: index });
    const get = await http('GET', `${base}/kv/username`);
    expect(get).toMatchObject({ status: 200, body: { key: 'username', value: 'alice', createIndex: index, modIndex: index } });
  });

  it('overwrites, and serves stale reads from the local copy', async () => {
    await http('PUT', `${base}/kv/color`, { value: 'red' });
    await http('PUT', `${base}/kv/color`, { value: 'blue' });
    expect((await http('GET', `${base}/kv/color`)).body).toEqual(keyValue('color', 'blue'));
    expect((await http('GET', `${base}/kv/color?consistency=stale`)).body).toEqual(keyValue('color', 'blue'));
  });

  it('stores any string: empty, unicode, JSON-looking, and keys with encoded slashes', async () => {
    const cases: Array<[string, string]> = [
      ['empty', ''],
      ['unicode-ключ-🔑', 'значение ✓'],
      ['json', '{"nested":[1,2,3]}'],
      ['a/b', 'slash'],
    ];
    for (const [key, value] of cases) {
      const put = await http('PUT', `${base}/kv/${encodeURIComponent(key)}`, { value });
      expect(put.status).toBe(200);
      const get = await http('GET', `${base}/kv/${encodeURIComponent(key)}`);
      expect(get.body).toEqual(keyValue(key, value));
    }
  });

  it('answers 404 {"error": "Key not found", "key"} for a missing key', async () => {
    const get = await http('GET', `${base}/kv/nope`);
    expect(get).toMatchObject({ status: 404, body: { error: 'Key not found', key: 'nope' } });
  });

  it('DELETE succeeds, says whether the key existed, and is idempotent', async () => {
    await http('PUT', `${base}/kv/gone`, { value: 'x' });
    const first = await http('DELETE', `${base}/kv/gone`);
    expect(first).toMatchObject({ status: 200, body: { success: true, existed: true } });
    const second = await http('DELETE', `${base}/kv/gone`);
    expect(second).toMatchObject({ status: 200, body: { success: true, existed: false } });
    expect((await http('GET', `${base}/kv/gone`)).status).toBe(404);
  });

  it('GET /status reports the seed fields plus indexes', async () => {
    const status = await node.status();
    expect(status).toMatchObject({
      state: 'LEADER',
      leader: 'node1',
      isLeader: true,
      nodeId: 'node1',
      term: expect.any(Number),
      commitIndex: expect.any(Number),
      appliedIndex: expect.any(Number),
      lastLogIndex: expect.any(Number),
      peers: [],
    });
    expect(status.appliedIndex).toBe(status.commitIndex);
  });
});

describe('single node: bad input gets a 4xx JSON error naming the problem, and loses nothing', () => {
  it.each<[string, string, string, { raw?: string; body?: unknown; headers?: Record<string, string> }, number, RegExp]>([
    ['invalid JSON', 'PUT', '/kv/k', { raw: '{"value":', headers: { 'content-type': 'application/json' } }, 400, /not valid JSON/],
    ['a missing value', 'PUT', '/kv/k', { body: {} }, 400, /value is required/],
    ['a non-string value', 'PUT', '/kv/k', { body: { value: 42 } }, 400, /value must be a string/],
    ['a null value', 'PUT', '/kv/k', { body: { value: null } }, 400, /value is required/],
    ['an unknown field', 'PUT', '/kv/k', { body: { value: 'v', ttl: 5 } }, 400, /unknown field "ttl"/],
    ['an array body', 'PUT', '/kv/k', { body: ['v'] }, 400, /value/],
    ['an oversized value', 'PUT', '/kv/k', { body: { value: 'x'.repeat(1025) } }, 413, /value is 1025 bytes; the limit is 1024 \(MAX_VALUE_BYTES\)/],
    ['a body over the size limit', 'PUT', '/kv/k', { body: { value: 'x'.repeat(100_000) } }, 413, /too large/i],
    ['an oversized key', 'PUT', `/kv/${'k'.repeat(65)}`, { body: { value: 'v' } }, 400, /key is 65 bytes; the limit is 64/],
    ['an oversized key on GET', 'GET', `/kv/${'k'.repeat(65)}`, {}, 400, /key is 65 bytes/],
    ['an empty key', 'PUT', '/kv/', { body: { value: 'v' } }, 400, /key must not be empty/],
    ['no key at all', 'PUT', '/kv', { body: { value: 'v' } }, 400, /key must not be empty/],
    ['a bad list limit', 'GET', '/kv?limit=0', {}, 400, /limit/],
    ['an unknown consistency', 'GET', '/kv/k?consistency=eventual', {}, 400, /consistency must be one of: linearizable, stale/],
    ['an unsupported method', 'POST', '/kv/k', { body: { value: 'v' } }, 405, /Method POST is not allowed on \/kv\/:key/],
    ['an unknown route', 'GET', '/nope', {}, 404, /Not found: GET \/nope/],
    ['a text body', 'PUT', '/kv/k', { raw: 'v', headers: { 'content-type': 'text/plain' } }, 400, /value/],
    ['an unsupported content type', 'PUT', '/kv/k', { raw: 'v', headers: { 'content-type': 'application/xml' } }, 415, /Content-Type/],
  ])('%s', async (_name, method, path, request, status, error) => {
    const answer = await http(method, `${base}${path}`, request.body, { raw: request.raw, headers: request.headers });
    expect(answer.status).toBe(status);
    expect(answer.body).toEqual(expect.objectContaining({ error: expect.stringMatching(error) }));
  });

  it('still serves, with the earlier data intact', async () => {
    expect((await http('GET', `${base}/kv/username`)).body).toEqual(keyValue('username', 'alice'));
    expect((await http('GET', `${base}/kv/k`)).status).toBe(404);
  });

  it('answers 405 with an Allow header', async () => {
    const answer = await http('PATCH', `${base}/kv/k`, { value: 'v' });
    expect(answer.status).toBe(405);
    expect(answer.headers.get('allow')).toBe('GET, PUT, DELETE');
  });
});

describe('single node: operations endpoints', () => {
  it('GET /health/live and /health/ready answer 200 with the checks', async () => {
    expect(await http('GET', `${base}/health/live`)).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await http('GET', `${base}/health/ready`);
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ok',
      info: { raft: { status: 'up' }, apply: { status: 'up' }, wal: { status: 'up' } },
    });
  });

  it('GET /metrics is valid Prometheus text with the Raft, storage and HTTP metrics', async () => {
    const answer = await http<string>('GET', `${base}/metrics`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^text\/plain/);
    const samples = parseExposition(answer.body);
    const names = new Set(samples.map((s) => s.name));
    for (const name of [
      'raftkv_raft_term',
      'raftkv_raft_is_leader',
      'raftkv_raft_commit_index',
      'raftkv_raft_applied_index',
      'raftkv_raft_leader_changes_total',
      'raftkv_raft_proposals_total',
      'raftkv_raft_proposal_duration_seconds_bucket',
      'raftkv_wal_fsync_duration_seconds_bucket',
      'raftkv_wal_bytes_written_total',
      'raftkv_http_request_duration_seconds_bucket',
      'process_cpu_seconds_total',
    ]) {
      expect(names).toContain(name);
    }
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(value('raftkv_raft_is_leader')).toBe(1);
    expect(value('raftkv_raft_state', { state: 'StateLeader' })).toBe(1);
    expect(value('raftkv_raft_proposals_total', { outcome: 'committed' })).toBeGreaterThan(5);
    expect(value('raftkv_http_request_duration_seconds_count', { method: 'PUT', route: '/kv/:key', status_code: '200' })).toBeGreaterThan(5);
  });

  it('GET /docs-json is an OpenAPI 3 document describing every endpoint', async () => {
    const answer = await http('GET', `${base}/docs-json`);
    expect(answer.status).toBe(200);
    const doc = answer.body;
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/kv/{key}', '/status', '/cluster/status', '/health/live', '/health/ready', '/metrics', '/raft/stream']),
    );
    expect(doc.paths['/cluster/status'].get.tags).toEqual(['cluster']);
    expect(doc.paths['/cluster/status'].get.responses['200'].content['application/json'].schema.$ref).toBe(
      '#/components/schemas/ClusterStatusDto',
    );
    expect(Object.keys(doc.components.schemas.MemberStatusDto.properties).sort()).toEqual(['error', 'nodeId', 'reachable', 'role', 'status', 'url']);
    expect(Object.keys(doc.paths['/kv/{key}'])).toEqual(expect.arrayContaining(['get', 'put', 'delete']));
    expect(doc.paths['/kv/{key}'].put.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/PutValueDto');
    expect(doc.paths['/kv/{key}'].put.responses['307']).toBeDefined();
    expect(doc.paths['/raft/stream'].post.tags).toEqual(['raft (peer)']);
    expect(doc.components.schemas.StatusDto.properties).toEqual(
      expect.objectContaining({ state: expect.anything(), term: expect.anything(), leader: expect.anything(), isLeader: expect.anything() }),
    );
  });

  it('serves the Swagger UI at /docs', async () => {
    const answer = await http<string>('GET', `${base}/docs`);
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('swagger-ui');
  });
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of the Prometheus text format: every line is a comment or a well-formed sample. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$/.exec(line);
    if (!match) throw new Error(`not a valid exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (match[3]) {
      for (const pair of match[3].match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const eq = pair.indexOf('=');
        labels[pair.slice(0, eq)] = pair.slice(eq + 2, -1);
      }
    }
    const value = Number(match[4] === '+Inf' ? Infinity : match[4] === '-Inf' ? -Infinity : match[4]);
    if (Number.isNaN(value) && match[4] !== 'NaN') throw new Error(`bad value in: ${line}`);
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

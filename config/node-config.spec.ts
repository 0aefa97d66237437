import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, configVariables, loadNodeConfig } from './node-config';

describe("README's configuration table", () => {
  it('lists exactly the variables the node reads', () => {
    const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Configuration\n'), readme.indexOf('\n### Running nodes by hand'));
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(configVariables().sort());
  });
});

describe('loadNodeConfig', () => {
  it('takes the seed defaults from an empty environment: a single-node cluster', () => {
    const config = loadNodeConfig({});
    expect(config).toMatchObject({
      nodeId: 'node1',
      httpPort: 3001,
      walDir: './data',
      bindHost: '0.0.0.0',
      advertiseUrl: 'http://localhost:3001',
      advertiseUrlGiven: false,
      peerUrls: [],
      joinAsLearner: false,
      heartbeatIntervalMs: 100,
      electionTimeoutMs: 1000,
      requestTimeoutMs: 5000,
      headersTimeoutMs: 10000,
      bodyTimeoutMs: 10000,
      keepAliveTimeoutMs: 5000,
      maxConnections: 10000,
      snapshotEntries: 10000,
      snapshotCatchUpEntries: 5000,
      walSegmentBytes: 64 * 1024 * 1024,
      logLevel: 'info',
    });
    expect(config.clusterToken).toBeUndefined();
    expect(config.join).toBeUndefined();
    // The cluster's identity is found at first start (discovery or join), not configured.
    expect(config).not.toHaveProperty('members');
    expect(config).not.toHaveProperty('clusterId');
    // Peer streams are admitted from the members' addresses only, with nothing configured.
    expect(config.peerAllowAny).toBe(false);
    expect(config.peerAllowedAddresses).toEqual([]);
  });

  it('reads PEER_ALLOW_ANY and the addresses and ranges of PEER_ALLOWED_ADDRESSES', () => {
    const config = loadNodeConfig({ PEER_ALLOW_ANY: 'true', PEER_ALLOWED_ADDRESSES: ' 10.0.0.5, 10.1.0.0/16 ,FD00::/8,::1' });
    expect(config.peerAllowAny).toBe(true);
    expect(config.peerAllowedAddresses).toEqual(['10.0.0.5', '10.1.0.0/16', 'fd00::/8', '::1']);
    expect(loadNodeConfig({ PEER_ALLOW_ANY: 'false' }).peerAllowAny).toBe(false);
  });

  it('reads CORS_ORIGINS as the origins browsers send: lower-case, default port dropped, each once', () => {
    expect(loadNodeConfig({}).corsOrigins).toEqual([]);
    const config = loadNodeConfig({ CORS_ORIGINS: ' https://Admin.Example.com:443/ ,http://localhost:8080,http://localhost:8080' });
    expect(config.corsOrigins).toEqual(['https://admin.example.com', 'http://localhost:8080']);
  });

  it('without PEER_PORT, has one URL for clients and members, and no peer listener', () => {
    const config = loadNodeConfig({ HTTP_PORT: '3002', ADVERTISE_URL: 'http://Node2:3002/' });
    expect(config).toMatchObject({ advertiseUrl: 'http://node2:3002', clientUrl: 'http://node2:3002', advertiseUrlGiven: true });
    expect(config).not.toHaveProperty('peerPort');
    expect(config).not.toHaveProperty('peerBindHost');
  });

  it('with PEER_PORT, the member URL is the client URL on PEER_PORT, bound on BIND_HOST unless PEER_BIND_HOST says otherwise', () => {
    const config = loadNodeConfig({ HTTP_PORT: '3001', PEER_PORT: ' 4001 ', BIND_HOST: '127.0.0.1' });
    expect(config).toMatchObject({
      httpPort: 3001,
      peerPort: 4001,
      peerBindHost: '127.0.0.1',
      clientUrl: 'http://localhost:3001',
      advertiseUrl: 'http://localhost:4001',
      // Nothing was given: a join announces the port only, and the member records the caller's address.
      advertiseUrlGiven: false,
    });
    const given = loadNodeConfig({ PEER_PORT: '4001', ADVERTISE_URL: 'http://kv1.example:8443', PEER_BIND_HOST: '10.0.0.5' });
    expect(given).toMatchObject({ clientUrl: 'http://kv1.example:8443', advertiseUrl: 'http://kv1.example:4001', peerBindHost: '10.0.0.5', advertiseUrlGiven: true });
  });

  it('takes PEER_ADVERTISE_URL, normalized, as the member URL', () => {
    const config = loadNodeConfig({ HTTP_PORT: '3001', PEER_PORT: '4001', PEER_ADVERTISE_URL: 'HTTP://Peer1.Internal:5001/' });
    expect(config).toMatchObject({ advertiseUrl: 'http://peer1.internal:5001', clientUrl: 'http://localhost:3001', advertiseUrlGiven: true });
  });

  it('reads the seed three-node example: PEER_URLS as given, normalized', () => {
    const config = loadNodeConfig({ NODE_ID: 'node1', HTTP_PORT: '3001', PEER_URLS: 'http://localhost:3002,http://localhost:3003' });
    expect(config.peerUrls).toEqual(['http://localhost:3002', 'http://localhost:3003']);
  });

  it('keeps an entry that may be this node itself, whatever its spelling: discovery tells which entry is this process', () => {
    const config = loadNodeConfig({
      HTTP_PORT: '3002',
      PEER_URLS: ' http://LOCALHOST:3001/ ,http://localhost:3002,http://127.0.0.1:3003',
    });
    expect(config.peerUrls).toEqual(['http://localhost:3001', 'http://localhost:3002', 'http://127.0.0.1:3003']);
    expect(config.advertiseUrl).toBe('http://localhost:3002');
  });

  it('accepts an explicit advertised URL, and says it was given', () => {
    const config = loadNodeConfig({ ADVERTISE_URL: 'http://node1:3001/', PEER_URLS: 'http://node2:3001' });
    expect(config.advertiseUrl).toBe('http://node1:3001');
    expect(config.advertiseUrlGiven).toBe(true);
    expect(config.peerUrls).toEqual(['http://node2:3001']);
  });

  it('reads JOIN (normalized) and JOIN_AS_LEARNER', () => {
    expect(loadNodeConfig({ NODE_ID: 'node4', JOIN: 'http://Node1:3001/' })).toMatchObject({
      join: 'http://node1:3001',
      joinAsLearner: false,
      peerUrls: [],
    });
    expect(loadNodeConfig({ JOIN: 'http://node1:3001', JOIN_AS_LEARNER: 'true' }).joinAsLearner).toBe(true);
    expect(loadNodeConfig({ JOIN_AS_LEARNER: 'false' }).joinAsLearner).toBe(false);
    // Set but empty is unset, as for every variable.
    expect(loadNodeConfig({ JOIN: '', PEER_URLS: 'http://node2:3001' }).join).toBeUndefined();
  });

  it('reads MAX_DATA_BYTES as plain bytes; unset or empty means no quota', () => {
    expect(loadNodeConfig({}).maxDataBytes).toBeUndefined();
    expect(loadNodeConfig({ MAX_DATA_BYTES: '' }).maxDataBytes).toBeUndefined();
    expect(loadNodeConfig({ MAX_DATA_BYTES: '1' }).maxDataBytes).toBe(1);
    expect(loadNodeConfig({ MAX_DATA_BYTES: ' 1073741824 ' }).maxDataBytes).toBe(1024 ** 3);
    expect(loadNodeConfig({ MAX_DATA_BYTES: String(Number.MAX_SAFE_INTEGER) }).maxDataBytes).toBe(Number.MAX_SAFE_INTEGER);
  });

  it.each(['0', '-1', '1.5', '1e3', '10MB', '1GiB', 'lots', '9007199254740992'])(
    'rejects MAX_DATA_BYTES=%j with one line naming the variable and the value',
    (value) => {
      expect(() => loadNodeConfig({ MAX_DATA_BYTES: value })).toThrow(ConfigError);
      expect(() => loadNodeConfig({ MAX_DATA_BYTES: value })).toThrow(
        new RegExp(`^MAX_DATA_BYTES must be a whole number of bytes between 1 and 9007199254740991 \\(unset: no quota\\) \\(got '${value}'\\)$`),
      );
    },
  );

  it('rejects a MAX_DATA_BYTES too large to count exactly (beyond 2^53 - 1)', () => {
    expect(() => loadNodeConfig({ MAX_DATA_BYTES: '99999999999999999999' })).toThrow(/^MAX_DATA_BYTES must be a whole number/);
  });

  it('reads the idempotency window (seconds, kept in ms) and table size, with their defaults', () => {
    expect(loadNodeConfig({})).toMatchObject({ idempotencyWindowMs: 600_000, idempotencyMaxKeys: 100_000 });
    expect(loadNodeConfig({ IDEMPOTENCY_WINDOW_S: '30', IDEMPOTENCY_MAX_KEYS: ' 500 ' })).toMatchObject({ idempotencyWindowMs: 30_000, idempotencyMaxKeys: 500 });
  });

  it.each([
    [{ IDEMPOTENCY_WINDOW_S: '0' }, /^IDEMPOTENCY_WINDOW_S must be an integer number of seconds \(1-604800, a week\) \(got '0'\)$/],
    [{ IDEMPOTENCY_WINDOW_S: '604801' }, /^IDEMPOTENCY_WINDOW_S must be an integer number of seconds/],
    [{ IDEMPOTENCY_MAX_KEYS: '0' }, /^IDEMPOTENCY_MAX_KEYS must be an integer between 1 and 10000000 \(got '0'\)$/],
    [{ IDEMPOTENCY_MAX_KEYS: 'many' }, /^IDEMPOTENCY_MAX_KEYS must be an integer between 1 and 10000000/],
  ])('rejects %j', (env, message) => {
    expect(() => loadNodeConfig(env)).toThrow(message);
  });

  it('reads the slow-client limits', () => {
    const config = loadNodeConfig({ HEADERS_TIMEOUT_MS: '2000', BODY_TIMEOUT_MS: ' 1500 ', KEEP_ALIVE_TIMEOUT_MS: '100', MAX_CONNECTIONS: '64' });
    expect(config).toMatchObject({ headersTimeoutMs: 2000, bodyTimeoutMs: 1500, keepAliveTimeoutMs: 100, maxConnections: 64 });
  });

  it.each([
    [{ HEADERS_TIMEOUT_MS: '99' }, /^HEADERS_TIMEOUT_MS must be an integer number of milliseconds \(100-600000\) \(got '99'\)$/],
    [{ HEADERS_TIMEOUT_MS: 'soon' }, /^HEADERS_TIMEOUT_MS must be an integer number of milliseconds \(100-600000\) \(got 'soon'\)$/],
    [{ BODY_TIMEOUT_MS: '600001' }, /^BODY_TIMEOUT_MS must be an integer number of milliseconds \(100-600000\) \(got '600001'\)$/],
    [{ BODY_TIMEOUT_MS: '1.5' }, /^BODY_TIMEOUT_MS must be an integer number of milliseconds/],
    [{ KEEP_ALIVE_TIMEOUT_MS: '0' }, /^KEEP_ALIVE_TIMEOUT_MS must be an integer number of milliseconds \(100-600000\) \(got '0'\)$/],
    [{ MAX_CONNECTIONS: '10' }, /^MAX_CONNECTIONS must be an integer \(64-1000000\) \(got '10'\)$/],
    [{ MAX_CONNECTIONS: '-1' }, /^MAX_CONNECTIONS must be an integer \(64-1000000\)/],
    [{ MAX_CONNECTIONS: '2000000' }, /^MAX_CONNECTIONS must be an integer \(64-1000000\)/],
  ])('rejects slow-client limit %j with one line naming the variable', (env, message) => {
    expect(() => loadNodeConfig(env)).toThrow(ConfigError);
    expect(() => loadNodeConfig(env)).toThrow(message);
  });

  it('reads the watch settings, with defaults', () => {
    expect(loadNodeConfig({})).toMatchObject({ watchHistoryEntries: 10000, watchHistoryBytes: 64 * 1024 * 1024, watchHeartbeatMs: 15000, watchBufferBytes: 262144 });
    const config = loadNodeConfig({ WATCH_HISTORY_ENTRIES: '50', WATCH_HISTORY_BYTES: '4096', WATCH_HEARTBEAT_MS: '200', WATCH_BUFFER_BYTES: '65536' });
    expect(config).toMatchObject({ watchHistoryEntries: 50, watchHistoryBytes: 4096, watchHeartbeatMs: 200, watchBufferBytes: 65536 });
  });

  it.each([
    [{ WATCH_HISTORY_ENTRIES: '0' }, /^WATCH_HISTORY_ENTRIES must be an integer \(1-10000000\) \(got '0'\)$/],
    [{ WATCH_HISTORY_BYTES: '100' }, /^WATCH_HISTORY_BYTES must be a whole number of bytes/],
    [{ WATCH_HEARTBEAT_MS: 'often' }, /^WATCH_HEARTBEAT_MS must be an integer number of milliseconds \(50-600000\)/],
    [{ WATCH_BUFFER_BYTES: '1.5' }, /^WATCH_BUFFER_BYTES must be a whole number of bytes/],
  ])('rejects watch setting %j with one line naming the variable', (env, message) => {
    expect(() => loadNodeConfig(env)).toThrow(message);
  });

  it.each([
    [{ HTTP_PORT: 'abc' }, /^HTTP_PORT must be an integer between 1 and 65535 \(got 'abc'\)$/],
    [{ HTTP_PORT: '70000' }, /^HTTP_PORT must be/],
    [{ HTTP_PORT: '3.5' }, /^HTTP_PORT must be/],
    [{ NODE_ID: 'node one' }, /^NODE_ID must be/],
    [{ PEER_URLS: 'localhost:3002' }, /^PEER_URLS has 'localhost:3002': only http/],
    [{ PEER_URLS: 'not a url' }, /^PEER_URLS has an invalid URL 'not a url'/],
    [{ PEER_URLS: 'http://localhost:3002/raft' }, /^PEER_URLS has .* without path/],
    [{ PEER_URLS: 'http://localhost:3002,http://localhost:3002/' }, /^PEER_URLS lists http:\/\/localhost:3002 twice$/],
    [{ HTTP_PORT: '3002', PEER_URLS: 'http://localhost:3002,http://LOCALHOST:3002' }, /^PEER_URLS lists http:\/\/localhost:3002 twice$/],
    [{ JOIN: 'http://node1:3001', PEER_URLS: 'http://node2:3001' }, /^JOIN and PEER_URLS are both set: give PEER_URLS to form a new cluster, or JOIN/],
    [{ JOIN: 'node1:3001' }, /^JOIN has 'node1:3001': only http/],
    [{ JOIN: 'http://node1:3001/cluster' }, /^JOIN has .* without path/],
    [{ JOIN_AS_LEARNER: 'yes' }, /^JOIN_AS_LEARNER must be true or false \(got 'yes'\)$/],
    [{ HEARTBEAT_INTERVAL_MS: '5' }, /^HEARTBEAT_INTERVAL_MS must be/],
    [{ ELECTION_TIMEOUT_MS: '200' }, /^ELECTION_TIMEOUT_MS \(200\) must be at least 3 x HEARTBEAT_INTERVAL_MS \(100\)$/],
    [{ REQUEST_TIMEOUT_MS: '-1' }, /^REQUEST_TIMEOUT_MS must be/],
    [{ MAX_PENDING_REQUESTS: '0' }, /^MAX_PENDING_REQUESTS must be an integer between 1 and 1000000/],
    [{ MAX_VALUE_BYTES: '0' }, /^MAX_VALUE_BYTES must be/],
    [{ SNAPSHOT_ENTRIES: '-1' }, /^SNAPSHOT_ENTRIES must be an integer between 0 \(never\) and 100000000 \(got '-1'\)$/],
    [{ SNAPSHOT_ENTRIES: 'often' }, /^SNAPSHOT_ENTRIES must be/],
    [{ SNAPSHOT_CATCHUP_ENTRIES: '1.5' }, /^SNAPSHOT_CATCHUP_ENTRIES must be/],
    [{ WAL_SEGMENT_BYTES: '512' }, /^WAL_SEGMENT_BYTES must be an integer between 4096 and 1073741824/],
    [{ CLUSTER_TOKEN: 'short' }, /^CLUSTER_TOKEN must be at least 16 characters/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of: error, warn, info, debug, verbose/],
    [{ ADVERTISE_URL: 'ftp://x' }, /^ADVERTISE_URL has 'ftp:\/\/x'/],
    [{ PEER_ALLOW_ANY: 'yes' }, /^PEER_ALLOW_ANY must be true or false \(got 'yes'\)$/],
    [{ PEER_ALLOWED_ADDRESSES: 'node2' }, /^PEER_ALLOWED_ADDRESSES has 'node2': give IP addresses or CIDR ranges/],
    [{ PEER_ALLOWED_ADDRESSES: '10.0.0.0/33' }, /^PEER_ALLOWED_ADDRESSES has '10.0.0.0\/33'/],
    [{ PEER_ALLOWED_ADDRESSES: '10.0.0.1,fd00::/129' }, /^PEER_ALLOWED_ADDRESSES has 'fd00::\/129'/],
    [{ PEER_ALLOWED_ADDRESSES: '10.0.0.0/8/1' }, /^PEER_ALLOWED_ADDRESSES has '10.0.0.0\/8\/1'/],
    [{ CORS_ORIGINS: '*' }, /^CORS_ORIGINS has '\*': a wildcard would let any web page/],
    [{ CORS_ORIGINS: 'http://a:8080,localhost:8080' }, /^CORS_ORIGINS has 'localhost:8080': only http:\/\/ and https:\/\/ origins/],
    [{ CORS_ORIGINS: 'example.com' }, /^CORS_ORIGINS has 'example.com': not a URL/],
    [{ CORS_ORIGINS: 'https://example.com/app' }, /^CORS_ORIGINS has 'https:\/\/example.com\/app': an origin is scheme, host and port only/],
    [{ NODE_ID: 'a\nb' }, /^NODE_ID must be .* \(got 'a\\u000ab'\)$/],
    [{ PEER_URLS: 'http://a/\r\nx' }, /^PEER_URLS has 'http:\/\/a\/\\u000d\\u000ax': give a base URL/],
    [{ PEER_PORT: '0' }, /^PEER_PORT must be an integer between 1 and 65535 \(got '0'\)$/],
    [{ PEER_PORT: '65536' }, /^PEER_PORT must be an integer between 1 and 65535/],
    [{ PEER_PORT: '40o1' }, /^PEER_PORT must be an integer between 1 and 65535/],
    [{ HTTP_PORT: '3001', PEER_PORT: '3001' }, /^PEER_PORT \(3001\) must differ from HTTP_PORT/],
    [{ PEER_PORT: '4001', PEER_ADVERTISE_URL: 'http://node1:4001/raft' }, /^PEER_ADVERTISE_URL has .* without path/],
    [{ PEER_PORT: '4001', ADVERTISE_URL: 'http://node1:3001', PEER_ADVERTISE_URL: 'http://node1:3001' }, /^PEER_ADVERTISE_URL \(http:\/\/node1:3001\) must differ from the client URL/],
    [{ PEER_PORT: '4001', PEER_BIND_HOST: '  ' }, /^PEER_BIND_HOST must not be empty$/],
    [{ PEER_BIND_HOST: '127.0.0.1' }, /^PEER_BIND_HOST is set but PEER_PORT is not/],
    [{ PEER_ADVERTISE_URL: 'http://node1:4001' }, /^PEER_ADVERTISE_URL is set but PEER_PORT is not/],
  ])('rejects %j with one line naming the variable', (env, message) => {
    expect(() => loadNodeConfig(env)).toThrow(ConfigError);
    expect(() => loadNodeConfig(env)).toThrow(message);
  });
});

import { ConfigError, loadNodeConfig } from './node-config';

describe('loadNodeConfig', () => {
  it('takes the seed defaults from an empty environment: a single-node cluster', () => {
    const config = loadNodeConfig({});
    expect(config).toMatchObject({
      nodeId: 'node1',
      httpPort: 3001,
      walDir: './data',
      bindHost: '0.0.0.0',
      advertiseUrl: 'http://localhost:3001',
      peerUrls: [],
      members: ['http://localhost:3001'],
      heartbeatIntervalMs: 100,
      electionTimeoutMs: 1000,
      requestTimeoutMs: 5000,
      logLevel: 'info',
    });
    expect(config.clusterToken).toBeUndefined();
  });

  it('reads the seed three-node example and derives the same cluster id on every node', () => {
    const env = (id: string, port: number, peers: number[]) => ({
      NODE_ID: id,
      HTTP_PORT: String(port),
      PEER_URLS: peers.map((p) => `http://localhost:${p}`).join(','),
    });
    const a = loadNodeConfig(env('node1', 3001, [3002, 3003]));
    const b = loadNodeConfig(env('node2', 3002, [3001, 3003]));
    const c = loadNodeConfig(env('node3', 3003, [3001, 3002]));
    expect(a.peerUrls).toEqual(['http://localhost:3002', 'http://localhost:3003']);
    expect(a.members).toEqual(['http://localhost:3001', 'http://localhost:3002', 'http://localhost:3003']);
    expect(new Set([a.clusterId, b.clusterId, c.clusterId]).size).toBe(1);
  });

  it('normalizes URLs and tolerates the node listing itself among its peers', () => {
    const config = loadNodeConfig({
      HTTP_PORT: '3002',
      PEER_URLS: ' http://LOCALHOST:3001/ ,http://localhost:3002,http://localhost:3003',
    });
    expect(config.peerUrls).toEqual(['http://localhost:3001', 'http://localhost:3003']);
  });

  it('accepts an explicit advertised URL', () => {
    const config = loadNodeConfig({ ADVERTISE_URL: 'http://node1:3001', PEER_URLS: 'http://node2:3001' });
    expect(config.advertiseUrl).toBe('http://node1:3001');
    expect(config.members).toEqual(['http://node1:3001', 'http://node2:3001']);
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
    [{ HEARTBEAT_INTERVAL_MS: '5' }, /^HEARTBEAT_INTERVAL_MS must be/],
    [{ ELECTION_TIMEOUT_MS: '200' }, /^ELECTION_TIMEOUT_MS \(200\) must be at least 3 x HEARTBEAT_INTERVAL_MS \(100\)$/],
    [{ REQUEST_TIMEOUT_MS: '-1' }, /^REQUEST_TIMEOUT_MS must be/],
    [{ MAX_VALUE_BYTES: '0' }, /^MAX_VALUE_BYTES must be/],
    [{ CLUSTER_TOKEN: 'short' }, /^CLUSTER_TOKEN must be at least 16 characters/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of: error, warn, info, debug, verbose/],
    [{ ADVERTISE_URL: 'ftp://x' }, /^ADVERTISE_URL has 'ftp:\/\/x'/],
    [{ NODE_ID: 'a\nb' }, /^NODE_ID must be .* \(got 'a\\u000ab'\)$/],
    [{ PEER_URLS: 'http://a/\r\nx' }, /^PEER_URLS has 'http:\/\/a\/\\u000d\\u000ax': give a base URL/],
  ])('rejects %j with one line naming the variable', (env, message) => {
    expect(() => loadNodeConfig(env)).toThrow(ConfigError);
    expect(() => loadNodeConfig(env)).toThrow(message);
  });
});

import fc from 'fast-check';
import { ConfigError, loadNodeConfig } from './node-config';

/**
 * The config loader against random environments: it either returns a configuration or throws its
 * ConfigError, never anything else; valid environments parse to what they say. Bounded runs; fast-check
 * prints the seed of a failure.
 */

const VARIABLES = [
  'NODE_ID',
  'HTTP_PORT',
  'PEER_URLS',
  'WAL_DIR',
  'BIND_HOST',
  'ADVERTISE_URL',
  'JOIN',
  'JOIN_AS_LEARNER',
  'HEARTBEAT_INTERVAL_MS',
  'ELECTION_TIMEOUT_MS',
  'REQUEST_TIMEOUT_MS',
  'MAX_KEY_BYTES',
  'MAX_VALUE_BYTES',
  'MAX_DATA_BYTES',
  'CLUSTER_TOKEN',
  'LOG_LEVEL',
  'LOG_FORMAT',
];

/** Values that come close to valid ones, and values that do not. */
const hostileValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer({ min: -1e6, max: 1e6 }).map(String),
  fc.constantFrom('', ' ', '0', '-0', '1e3', '0x10', '3.5', '99999999999999999999999', 'NaN', 'Infinity', ' 42 ', '\n', 'null', 'undefined'),
  fc.constantFrom('http://', 'http://[::1]:3001', 'https://a', 'http://a:99999', 'file:///x', 'http://a/b', 'http://u:p@a', 'http://a?x', 'http://a#x', 'http://a,http://a'),
  fc.array(fc.oneof(fc.webUrl(), fc.string({ maxLength: 12 })), { maxLength: 4 }).map((parts) => parts.join(',')),
);

const hostileEnv = fc.dictionary(
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...VARIABLES) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) }),
  hostileValue,
  { maxKeys: 10 },
);

/** A valid environment and what it must parse to. */
const validEnv = fc
  .record({
    nodeId: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/),
    port: fc.integer({ min: 1, max: 65535 }),
    peerPorts: fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { maxLength: 4 }),
    heartbeat: fc.integer({ min: 10, max: 10000 }),
    electionFactor: fc.integer({ min: 3, max: 10 }),
    maxKey: fc.integer({ min: 1, max: 65536 }),
    maxData: fc.option(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
    token: fc.option(fc.string({ unit: 'grapheme-ascii', minLength: 16, maxLength: 64 }), { nil: undefined }),
    logLevel: fc.constantFrom('error', 'warn', 'info', 'debug', 'verbose'),
  })
  .filter(({ heartbeat, electionFactor }) => heartbeat * electionFactor >= 50 && heartbeat * electionFactor <= 60000);

describe('loadNodeConfig, fuzzed', () => {
  it('on random environments, returns a configuration or throws ConfigError with one line', () => {
    const outcomes = { parsed: 0, refused: 0 };
    fc.assert(
      fc.property(hostileEnv, (env) => {
        try {
          loadNodeConfig(env);
          outcomes.parsed++;
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          expect((error as Error).message).not.toContain('\n');
          outcomes.refused++;
        }
      }),
      { numRuns: 300 },
    );
    expect(outcomes.parsed).toBeGreaterThan(0);
    expect(outcomes.refused).toBeGreaterThan(0);
  });

  it('parses every valid environment to what it says', () => {
    fc.assert(
      fc.property(validEnv, ({ nodeId, port, peerPorts, heartbeat, electionFactor, maxKey, maxData, token, logLevel }) => {
        const env: NodeJS.ProcessEnv = {
          NODE_ID: nodeId,
          HTTP_PORT: String(port),
          PEER_URLS: peerPorts.map((p) => `http://localhost:${p}`).join(','),
          HEARTBEAT_INTERVAL_MS: String(heartbeat),
          ELECTION_TIMEOUT_MS: String(heartbeat * electionFactor),
          MAX_KEY_BYTES: String(maxKey),
          MAX_DATA_BYTES: maxData === undefined ? undefined : String(maxData),
          CLUSTER_TOKEN: token,
          LOG_LEVEL: logLevel,
        };
        const config = loadNodeConfig(env);
        expect(config).toMatchObject({
          nodeId,
          httpPort: port,
          advertiseUrl: `http://localhost:${port}`,
          // This node's own port included, if drawn: only discovery recognises this process.
          peerUrls: peerPorts.map((p) => `http://localhost:${p}`),
          joinAsLearner: false,
          heartbeatIntervalMs: heartbeat,
          electionTimeoutMs: heartbeat * electionFactor,
          maxKeyBytes: maxKey,
          logLevel,
        });
        expect(config.clusterToken).toBe(token);
        expect(config.maxDataBytes).toBe(maxData);
      }),
      { numRuns: 200 },
    );
  });
});

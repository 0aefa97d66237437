import { ConfigService } from '@nestjs/config';
import { Test, TestingModule } from '@nestjs/testing';
import { join } from 'node:path';
import { CLUSTER_ADMIN_OPTIONS, CLUSTER_RPC_OPTIONS, ClusterBootstrapService, HttpPeerTransport } from '@app/cluster-rpc';
import { CONSENSUS_OPTIONS, PEER_TRANSPORT } from '@app/consensus';
import { CLUSTER_BOOTSTRAP } from '../../../libs/consensus/src/membership';
import { ConfigError, loadNodeConfig, nodeConfig } from '@app/config';
import { KV_OPTIONS } from '@app/kv';
import { WAL, WAL_MODULE_OPTIONS, Wal } from '@app/storage';
import { TempDirs } from '../../../test/support/wal-test-helpers';
import { AppModule } from './app.module';

const dirs = new TempDirs();
let moduleRef: TestingModule | undefined;

afterEach(async () => {
  await moduleRef?.close(); // closes the WAL (and releases its lock) before the directory goes
  moduleRef = undefined;
  dirs.cleanup();
});

/** Builds the node's module graph (no HTTP server, no Raft ticks) from `env` alone. */
async function compile(env: NodeJS.ProcessEnv): Promise<TestingModule> {
  moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot({ env })] }).compile();
  return moduleRef;
}

const get = <T>(token: string | symbol | (abstract new (...args: never[]) => T)): T => moduleRef!.get<unknown, T>(token, { strict: false });

describe('AppModule: every module is configured from the `node` namespace of @nestjs/config', () => {
  it("runs on the seed's four variables alone, and hands each module the options derived from them", async () => {
    const walDir = join(dirs.make('app-module-'), 'node2');
    const env = { NODE_ID: 'node2', HTTP_PORT: '3002', PEER_URLS: 'http://localhost:3001,http://localhost:3003', WAL_DIR: walDir };
    await compile(env);
    const expected = loadNodeConfig(env);

    expect(get(nodeConfig.KEY)).toEqual(expected);
    const configService = moduleRef!.get(ConfigService);
    expect(configService.get('node')).toEqual(expected);
    expect(configService.get('node.nodeId')).toBe('node2');

    expect(get(CONSENSUS_OPTIONS)).toEqual({
      name: 'node2',
      heartbeatIntervalMs: 100,
      electionTimeoutMs: 1000,
      requestTimeoutMs: 5000,
      maxPendingRequests: 10000,
      snapshotEntries: 10000,
      snapshotCatchUpEntries: 5000,
      snapshotBytes: expect.any(Function),
      walDir,
    });
    expect(get(CLUSTER_RPC_OPTIONS)).toEqual({
      nodeId: 'node2',
      advertiseUrl: 'http://localhost:3002',
      advertiseUrlGiven: false,
      httpPort: 3002,
      peerUrls: ['http://localhost:3001', 'http://localhost:3003'],
      join: undefined,
      token: undefined,
      // Peer streams from the members' addresses only.
      admission: { allowAny: false, allowedAddresses: [] },
      stallTimeoutMs: 1000,
    });
    expect(get(WAL_MODULE_OPTIONS)).toMatchObject({ dir: walDir, segmentBytes: 64 * 1024 * 1024 });
    expect(get<Wal>(WAL).dir).toBe(walDir);
    expect(get(KV_OPTIONS)).toEqual({
      maxKeyBytes: 1024,
      maxValueBytes: 1024 * 1024,
      watch: { maxEntries: 10000, maxBytes: 64 * 1024 * 1024, heartbeatMs: 15000, bufferBytes: 256 * 1024 },
      expiryIntervalMs: 100,
      idempotencyWindowMs: 10 * 60 * 1000,
      idempotencyMaxKeys: 100_000,
    });
    expect(get(CLUSTER_ADMIN_OPTIONS)).toEqual({
      timeoutMs: 1000, // one election timeout
      token: undefined,
      apiTokenRole: undefined,
    });
    // The cluster identity is found at start, by the cluster RPC module's bootstrap, from the storage's record.
    expect(get(CLUSTER_BOOTSTRAP)).toBe(get(ClusterBootstrapService));
    expect(get<ClusterBootstrapService>(CLUSTER_BOOTSTRAP).identity).toBeUndefined();
    expect(get(PEER_TRANSPORT)).toBe(get(HttpPeerTransport));
  });

  it('passes JOIN, JOIN_AS_LEARNER and an explicit ADVERTISE_URL to the cluster RPC module', async () => {
    await compile({
      NODE_ID: 'node4',
      HTTP_PORT: '3004',
      ADVERTISE_URL: 'http://node4.internal:3004',
      JOIN: 'http://node1.internal:3001',
      JOIN_AS_LEARNER: 'true',
      WAL_DIR: dirs.make('app-module-'),
    });
    expect(get(CLUSTER_RPC_OPTIONS)).toMatchObject({
      nodeId: 'node4',
      advertiseUrl: 'http://node4.internal:3004',
      advertiseUrlGiven: true,
      httpPort: 3004,
      peerUrls: [],
      join: 'http://node1.internal:3001',
    });
    expect(get(nodeConfig.KEY)).toMatchObject({ joinAsLearner: true });
  });

  it('passes the optional variables through to the modules that use them', async () => {
    await compile({
      NODE_ID: 'n1',
      HTTP_PORT: '4001',
      ADVERTISE_URL: 'http://n1.internal:4001',
      PEER_URLS: 'http://n2.internal:4001',
      WAL_DIR: dirs.make('app-module-'),
      HEARTBEAT_INTERVAL_MS: '50',
      ELECTION_TIMEOUT_MS: '400',
      REQUEST_TIMEOUT_MS: '2000',
      MAX_PENDING_REQUESTS: '50',
      MAX_KEY_BYTES: '64',
      MAX_VALUE_BYTES: '4096',
      CLUSTER_TOKEN: 'a-token-of-16-chars-or-more',
      PEER_ALLOW_ANY: 'true',
      PEER_ALLOWED_ADDRESSES: '10.0.0.0/8',
      SNAPSHOT_ENTRIES: '500',
      SNAPSHOT_CATCHUP_ENTRIES: '50',
      WAL_SEGMENT_BYTES: '65536',
    });
    expect(get(CONSENSUS_OPTIONS)).toMatchObject({
      name: 'n1',
      heartbeatIntervalMs: 50,
      electionTimeoutMs: 400,
      requestTimeoutMs: 2000,
      maxPendingRequests: 50,
      snapshotEntries: 500,
      snapshotCatchUpEntries: 50,
    });
    expect(get(WAL_MODULE_OPTIONS)).toMatchObject({ segmentBytes: 65536 });
    // No snapshot yet: the size gauge has nothing to read.
    expect((get(CONSENSUS_OPTIONS) as { snapshotBytes: () => unknown }).snapshotBytes()).toBeUndefined();
    expect(get(CLUSTER_RPC_OPTIONS)).toMatchObject({
      nodeId: 'n1',
      advertiseUrl: 'http://n1.internal:4001',
      advertiseUrlGiven: true,
      peerUrls: ['http://n2.internal:4001'],
      token: 'a-token-of-16-chars-or-more',
      admission: { allowAny: true, allowedAddresses: ['10.0.0.0/8'] },
      stallTimeoutMs: 500,
    });
    expect(get(KV_OPTIONS)).toMatchObject({ maxKeyBytes: 64, maxValueBytes: 4096 });
    expect(get(CLUSTER_ADMIN_OPTIONS)).toMatchObject({ timeoutMs: 400 });
  });

  it('refuses an invalid environment with the one-line ConfigError that names the variable', async () => {
    const env = { NODE_ID: 'node1', HTTP_PORT: 'abc', WAL_DIR: dirs.make('app-module-') };
    await expect(compile(env)).rejects.toThrow(ConfigError);
    await expect(compile(env)).rejects.toThrow(/^HTTP_PORT must be an integer between 1 and 65535 \(got 'abc'\)$/);
  });
});

/**
 * Two projects:
 * - unit: plain classes, the consensus simulator and the storage tests. Fast, deterministic, run in parallel.
 * - e2e: suites that start real node processes (test/e2e, test/chaos). `npm test` runs two at a time
 *   (--maxWorkers=2; three were no faster on two cores: 561 s against 559 s): each suite uses its own free
 *   ports, data directories and (chaos) network namespaces (the README suites each have a port range of their
 *   own: README_PORTS in test/support/cluster-script.ts), and every suite tolerates a loaded machine.
 *   `npm run test:e2e` runs them one at a time. The longest suites start first (test/support/e2e-sequencer.js),
 *   so that the two workers end together.
 */
const moduleNameMapper = {
  '^@app/consensus$': '<rootDir>/libs/consensus/src',
  '^@app/consensus/core$': '<rootDir>/libs/consensus/src/core',
  '^@app/consensus/ports$': '<rootDir>/libs/consensus/src/ports',
  '^@app/consensus/identity$': '<rootDir>/libs/consensus/src/identity',
  '^@app/storage$': '<rootDir>/libs/storage/src',
  '^@app/cluster-rpc$': '<rootDir>/libs/cluster-rpc/src',
  '^@app/kv$': '<rootDir>/libs/kv/src',
  '^@app/config$': '<rootDir>/config',
};
const transform = { '^.+\\.ts$': ['@swc/jest'] };
const common = { rootDir: __dirname, moduleFileExtensions: ['ts', 'js', 'json'], transform, moduleNameMapper, testEnvironment: 'node' };

module.exports = {
  testSequencer: '<rootDir>/test/support/e2e-sequencer.js',
  projects: [
    {
      ...common,
      displayName: 'unit',
      setupFiles: ['<rootDir>/test/support/fuzz-seed.ts', '<rootDir>/test/support/quiet-nest-logger.ts'],
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts', '<rootDir>/config/**/*.spec.ts', '<rootDir>/scripts/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/e2e/', '<rootDir>/test/chaos/'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts', '<rootDir>/test/chaos/**/*.e2e-spec.ts'],
    },
  ],
};

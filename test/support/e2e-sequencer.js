/**
 * The order in which jest starts test files (jest.config.js: testSequencer). `npm test` runs the e2e suites two
 * at a time, and the run ends when the later worker does: the long suites must start first, or one of them
 * starts last and the other worker idles for its whole length. Jest orders by the durations it cached on this
 * machine, but a fresh clone (CI) has no cache and jest falls back to file size, which put e.g. the chaos
 * suite (a short file, the longest suite) near the end.
 *
 * LONGEST_FIRST is a hint, not a contract: the suites known to be the longest (seconds on CI, two at a time),
 * longest first, e2e then unit (each run has only its own project's files); a suite missing from it only
 * loses its head start. Every other file follows in jest's own order (failed last time first, then by cached
 * duration, else by size).
 */
const { basename } = require('node:path');
// Jest's default sequencer, installed with jest (jest-config and @jest/core depend on it).
const Sequencer = require('@jest/test-sequencer').default;

const LONGEST_FIRST = [
  'chaos.e2e-spec.ts', // 100-124 s
  'membership.e2e-spec.ts', // 75-108 s
  'snapshot-crash.e2e-spec.ts', // 73-128 s with 72 kills; 56 now
  'membership-readme.e2e-spec.ts', // 69 s
  'backup-readme.e2e-spec.ts', // 67 s
  'readme.e2e-spec.ts', // 63 s
  'misconfig.e2e-spec.ts', // 56 s
  'identity.e2e-spec.ts', // 53 s
  'snapshots.e2e-spec.ts', // 47 s
  'wal-crash.e2e-spec.ts', // 68 s with 50 kills; 30 now
  // Unit: the simulation runs. By size they came last (property-2.spec.ts is a 199-byte file, 7 s).
  'linearizability.spec.ts', // 26 s
  'property-1.spec.ts', // 8 s
  'property-2.spec.ts', // 7 s
  'idempotent-retries.spec.ts', // 6 s
];

class LongestFirstSequencer extends Sequencer {
  async sort(tests) {
    const rank = (test) => LONGEST_FIRST.indexOf(basename(test.path));
    const hinted = tests.filter((t) => rank(t) >= 0).sort((a, b) => rank(a) - rank(b));
    const rest = tests.filter((t) => rank(t) < 0);
    return [...hinted, ...(await super.sort(rest))];
  }
}

module.exports = LongestFirstSequencer;

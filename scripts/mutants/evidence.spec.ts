import { parseEvidence, summarize } from './evidence';

describe('parseEvidence', () => {
  it("reads jest's failing files and tests (describe › test), without duplicates or colour codes", () => {
    const output = [
      'PASS unit libs/consensus/src/core/quorum.spec.ts',
      '\u001b[1m\u001b[31mFAIL\u001b[39m\u001b[22m unit libs/consensus/src/core/raft.spec.ts',
      '  ● Raft › §5.4 safety › §5.4.2 commits only own-term entries',
      '',
      '    expect(received).toBe(expected) // Object.is equality',
      'FAIL test/simulation/persistence.spec.ts (12.3 s)',
      '  ● TestFigure8Unreliable › strict driver',
      '  ● Raft › §5.4 safety › §5.4.2 commits only own-term entries',
      '  ● Console',
      'Tests:       2 failed, 120 passed, 122 total',
    ].join('\n');
    const e = parseEvidence(output);
    expect(e.files).toEqual(['libs/consensus/src/core/raft.spec.ts', 'test/simulation/persistence.spec.ts']);
    expect(e.tests).toEqual(['Raft › §5.4 safety › §5.4.2 commits only own-term entries', 'TestFigure8Unreliable › strict driver']);
    expect(summarize(e)).toBe('Raft › §5.4 safety › §5.4.2 commits only own-term entries; TestFigure8Unreliable › strict driver');
  });

  it('reads the soak\'s "seed N failed" lines, in order, with the first line of each message', () => {
    const output = [
      'soak: 500 normal schedules from seed 0, 2 worker(s)',
      'soak: 500 seeds in 4.2 s (119 seeds/s), 2 failed; 9 entries committed',
      '',
      'seed 17 failed: n2: applied entry 2 is not the committed one (at t=1332)',
      '  options: {"size":3}',
      '  replay: npm run test:sim -- --seed 17',
      '',
      'seed 230 failed: election safety: two leaders in term 4',
    ].join('\n');
    const e = parseEvidence(output);
    expect(e.seeds).toEqual([
      { seed: 17, message: 'n2: applied entry 2 is not the committed one (at t=1332)' },
      { seed: 230, message: 'election safety: two leaders in term 4' },
    ]);
    expect(summarize(e)).toBe('seeds 17, 230: n2: applied entry 2 is not the committed one (at t=1332)');
    expect(summarize(e, 1)).toBe('seeds 17 (+1 more): n2: applied entry 2 is not the committed one (at t=1332)');
  });

  it("reads a scenario's replay seed and a chaos run's verdict", () => {
    const scenario = parseEvidence('    replay: SIM_SEED=232 npx jest test/simulation/persistence.spec.ts -t TestFigure8');
    expect(scenario.scenarioSeeds).toEqual([232]);
    const chaos = parseEvidence('chaos run FAIL: 5 nodes, 15 clients, 8 keys, seed 77\n  lost writes: 1 (k3=v9)\n  checker:     not linearizable');
    expect(chaos.chaos).toEqual(['chaos run FAIL: 5 nodes, 15 clients, 8 keys, seed 77', 'lost writes: 1 (k3=v9)', 'checker:     not linearizable']);
    expect(summarize(chaos)).toContain('chaos run FAIL');
  });

  it('finds nothing in a passing run', () => {
    const e = parseEvidence('PASS unit a.spec.ts\nTests: 3 passed\nsoak: 500 seeds in 4 s, 0 failed');
    expect(e).toEqual({ files: [], tests: [], seeds: [], scenarioSeeds: [], chaos: [] });
    expect(summarize(e)).toBe('');
  });
});

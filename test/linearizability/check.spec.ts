import { EXIT, Io, main } from './check';
import { formatHistory, HistoryOp } from './history';
import { simulateHistory } from './simulate';

/** The CLI, run in-process on files given as strings. */
function run(args: string[], files: Record<string, string>): { status: number; out: string; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    readFile: (path) => {
      if (!(path in files)) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
      return files[path];
    },
  };
  const status = main(args, io);
  return { status, out: out.join('\n'), err: err.join('\n') };
}

const stale: HistoryOp[] = [
  { id: 'w1', client: 'a', op: 'put', key: 'x', value: '1', start: 0, end: 10, outcome: 'ok' },
  { id: 'w2', client: 'a', op: 'put', key: 'x', value: '2', start: 20, end: 30, outcome: 'ok' },
  { id: 'r', client: 'b', op: 'get', key: 'x', start: 40, end: 50, outcome: 'ok', result: { found: true, value: '1' } },
];

describe('check.ts', () => {
  it('exits 0 on a linearizable history and prints per-key figures', () => {
    const history = formatHistory(simulateHistory({ seed: 7, clients: 4, ops: 400, keys: 2, unknown: 0.1, fail: 0.1 }));
    const { status, out } = run(['h.jsonl'], { 'h.jsonl': history });
    expect(status).toBe(EXIT.linearizable);
    expect(out).toMatch(/^h\.jsonl: LINEARIZABLE \(\d+ operations on 2 keys in \d+ ms; dropped \d+ failed, \d+ reads of unknown outcome\)/);
    expect(out).toMatch(/key "k0": linearizable, \d+ ops/);
  });

  it('exits 1 on a violation and explains it', () => {
    const { status, out } = run(['h.jsonl'], { 'h.jsonl': formatHistory(stale) });
    expect(status).toBe(EXIT.violation);
    expect(out).toContain('VIOLATION');
    expect(out).toContain('After it the register is "2".');
    expect(out).toContain('#r client b [40, 50] get("x") -> "1": cannot take effect when the register is "2"');
  });

  it('exits 2 when the budget runs out', () => {
    const history = formatHistory(simulateHistory({ seed: 8, clients: 8, ops: 3000 }));
    const { status, out } = run(['h.jsonl', '--budget-ms', '0'], { 'h.jsonl': history });
    expect(status).toBe(EXIT.unknown);
    expect(out).toContain('UNKNOWN');
    expect(out).toContain('time budget exhausted');
  });

  it('prints the whole result as JSON with --json', () => {
    const { status, out } = run(['--json', 'h.jsonl'], { 'h.jsonl': formatHistory(stale) });
    expect(status).toBe(EXIT.violation);
    expect(JSON.parse(out)).toMatchObject({ verdict: 'violation', violation: { key: 'x', blocked: { id: 'r' } } });
  });

  it('exits 3 on a malformed file, a missing file, or bad arguments', () => {
    expect(run(['h.jsonl'], { 'h.jsonl': '{"id":1}\n' })).toMatchObject({ status: EXIT.badInput, err: expect.stringContaining('h.jsonl: line 1:') });
    expect(run(['missing.jsonl'], {})).toMatchObject({ status: EXIT.badInput, err: expect.stringContaining('ENOENT') });
    expect(run([], {}).status).toBe(EXIT.badInput);
    expect(run(['h.jsonl', '--budget-ms', 'soon'], {}).status).toBe(EXIT.badInput);
    expect(run(['a.jsonl', 'b.jsonl'], {}).status).toBe(EXIT.badInput);
  });
});

import { describeOp, formatHistory, HistoryOp, parseHistory, validateHistory } from './history';

describe('history format', () => {
  const ops: HistoryOp[] = [
    { id: 1, client: 'c1', op: 'put', key: 'x', value: 'a', start: 0, end: 10, outcome: 'ok' },
    { id: 2, client: 'c2', op: 'get', key: 'x', start: 5, end: 15, outcome: 'ok', result: { found: true, value: 'a' } },
    { id: 3, client: 'c3', op: 'delete', key: 'x', start: 20, outcome: 'unknown' },
    { id: 4, client: 'c1', op: 'cas', key: 'x', expected: null, value: 'b', start: 30, end: 31, outcome: 'ok', result: { swapped: true } },
    { id: 5, client: 'c2', op: 'put', key: 'y', value: 'z', start: 40, end: 41, outcome: 'fail' },
  ];

  it('round-trips through JSON Lines', () => {
    expect(parseHistory(formatHistory(ops))).toEqual(ops);
    expect(parseHistory('\n' + formatHistory(ops) + '\n\n')).toEqual(ops);
  });

  it.each([
    ['not JSON', '{"id":', /line 1: not JSON/],
    ['an unknown op', '{"id":1,"client":1,"op":"append","key":"x","start":0,"end":1,"outcome":"ok"}', /line 1: op must be one of/],
    ['an ok operation without end', '{"id":1,"client":1,"op":"put","key":"x","value":"v","start":0,"outcome":"ok"}', /end is required/],
    ['an end before its start', '{"id":1,"client":1,"op":"put","key":"x","value":"v","start":5,"end":1,"outcome":"ok"}', /end is before start/],
    ['a put without value', '{"id":1,"client":1,"op":"put","key":"x","start":0,"end":1,"outcome":"ok"}', /put needs a string value/],
    ['an ok get without result', '{"id":1,"client":1,"op":"get","key":"x","start":0,"end":1,"outcome":"ok"}', /needs result.found/],
    ['a found get without value', '{"id":1,"client":1,"op":"get","key":"x","start":0,"end":1,"outcome":"ok","result":{"found":true}}', /needs result.value/],
    ['a cas without expected', '{"id":1,"client":1,"op":"cas","key":"x","value":"v","start":0,"end":1,"outcome":"ok","result":{"swapped":true}}', /cas needs expected/],
    ['an ok cas without swapped', '{"id":1,"client":1,"op":"cas","key":"x","expected":"a","value":"v","start":0,"end":1,"outcome":"ok"}', /needs result.swapped/],
    ['a non-numeric start', '{"id":1,"client":1,"op":"delete","key":"x","start":"0","outcome":"unknown"}', /start must be a finite number/],
    ['an unknown outcome', '{"id":1,"client":1,"op":"delete","key":"x","start":0,"outcome":"maybe"}', /outcome must be one of/],
  ])('rejects %s, naming the line', (_name, line, message) => {
    expect(() => parseHistory(line)).toThrow(message);
  });

  it('rejects duplicate ids', () => {
    expect(() => parseHistory(formatHistory([ops[0], ops[0]]))).toThrow(/line 2: duplicate id 1/);
    expect(() => validateHistory([ops[0], ops[0]])).toThrow(/record 2: duplicate id 1/);
  });

  it('accepts an unknown outcome without end, and any end on it', () => {
    expect(() => validateHistory([ops[2], { ...ops[2], id: 9, end: 25 }])).not.toThrow();
  });

  it('describes operations for humans', () => {
    expect(ops.map(describeOp)).toEqual([
      'put("x", "a")',
      'get("x") -> "a"',
      'delete("x") -> ?',
      'cas("x", absent -> "b") -> swapped',
      'put("y", "z") -> failed',
    ]);
  });
});

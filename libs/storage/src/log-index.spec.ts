import { LogIndex } from './log-index';

describe('LogIndex', () => {
  it('maps indexes to term, segment, offset and length, across growth', () => {
    const index = new LogIndex();
    for (let i = 1; i <= 5000; i++) index.append(i, Math.ceil(i / 1000), 1 + (i >> 10), i * 10, i % 7);
    expect([index.first, index.last]).toEqual([1, 5000]);
    expect([index.term(0), index.term(1), index.term(1001), index.term(5000)]).toEqual([0, 1, 2, 5]);
    expect([index.seq(4000), index.offset(4000), index.dataLength(4000)]).toEqual([1 + (4000 >> 10), 40000, 4000 % 7]);
  });

  it('truncates a suffix and appends after it', () => {
    const index = new LogIndex();
    for (let i = 1; i <= 10; i++) index.append(i, 1, 1, i, 0);
    index.truncateFrom(6);
    expect(index.last).toBe(5);
    expect(() => index.term(6)).toThrow(RangeError);
    index.append(6, 2, 2, 0, 0);
    expect(index.term(6)).toBe(2);
    expect(() => index.append(8, 2, 2, 0, 0)).toThrow('does not follow');
    expect(() => index.truncateFrom(8)).toThrow(RangeError);
  });

  it('starts wherever its first segment says (after compaction)', () => {
    const index = new LogIndex();
    index.reset(101, 7);
    expect([index.first, index.last, index.term(100)]).toEqual([101, 100, 7]);
    index.append(101, 7, 3, 0, 0);
    expect(index.term(101)).toBe(7);
  });
});

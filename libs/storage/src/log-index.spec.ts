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

  it('drops a prefix without losing the term before it, and keeps appending and truncating after it', () => {
    const index = new LogIndex();
    for (let i = 1; i <= 3000; i++) index.append(i, Math.ceil(i / 100), i, i * 10, i % 13);
    // Many small drops (each moving the start), interleaved with appends that grow the arrays.
    let next = 3001;
    for (let first = 50; first <= 2900; first += 50) {
      index.dropBefore(first);
      index.append(next, Math.ceil(next / 100), next, next * 10, next % 13);
      next++;
      expect([index.first, index.term(first - 1)]).toEqual([first, Math.ceil((first - 1) / 100)]);
    }
    for (const i of [2900, 3000, next - 1]) {
      expect([index.term(i), index.seq(i), index.offset(i), index.dataLength(i)]).toEqual([Math.ceil(i / 100), i, i * 10, i % 13]);
    }
    expect(() => index.term(2898)).toThrow(RangeError);
    index.truncateFrom(3001);
    index.dropBefore(3001); // everything: an empty log after entry 3000
    expect([index.first, index.last, index.term(3000)]).toEqual([3001, 3000, 30]);
    index.append(3001, 31, 1, 0, 0);
    expect(index.term(3001)).toBe(31);
    expect(() => index.dropBefore(3003)).toThrow(RangeError);
  });
});

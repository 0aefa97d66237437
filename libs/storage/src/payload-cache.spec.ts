import { entry } from '../../../test/support/wal-test-helpers';
import { PayloadCache } from './payload-cache';

describe('PayloadCache', () => {
  it('keeps the newest entries within its byte budget, evicting the oldest', () => {
    const cache = new PayloadCache(10 * (100 + 160));
    for (let i = 1; i <= 3000; i++) cache.append(entry(i, 1));
    expect(cache.size).toBe(10);
    expect(cache.byteSize).toBe(10 * 260);
    expect(cache.get(2990)).toBeUndefined();
    expect(cache.get(2991)?.index).toBe(2991);
    expect(cache.get(3000)?.index).toBe(3000);
    expect(cache.get(3001)).toBeUndefined();
  });

  it('drops a truncated suffix and continues from there', () => {
    const cache = new PayloadCache(1 << 20);
    for (let i = 1; i <= 10; i++) cache.append(entry(i, 1));
    cache.truncateFrom(6);
    expect(cache.get(6)).toBeUndefined();
    cache.append(entry(6, 2));
    expect(cache.get(6)?.term).toBe(2);
    expect(cache.get(5)?.term).toBe(1);
    cache.truncateFrom(1);
    expect(cache.size).toBe(0);
    cache.append(entry(1, 3));
    expect(cache.get(1)?.term).toBe(3);
  });

  it('caches nothing with a zero budget', () => {
    const cache = new PayloadCache(0);
    cache.append(entry(1, 1));
    cache.append(entry(2, 1));
    expect([cache.size, cache.get(2)]).toEqual([0, undefined]);
  });

  it('drops a compacted prefix, and an empty cache then starts where the log does', () => {
    const cache = new PayloadCache(1 << 20);
    for (let i = 1; i <= 10; i++) cache.append(entry(i, 1));
    cache.dropBefore(4);
    expect([cache.get(3), cache.get(4)?.index, cache.size]).toEqual([undefined, 4, 7]);
    expect(cache.byteSize).toBe(7 * 260);
    cache.dropBefore(20);
    expect(cache.size).toBe(0);
    cache.append(entry(20, 2));
    expect(cache.get(20)?.index).toBe(20);
  });
});

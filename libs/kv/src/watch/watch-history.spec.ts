import { KvChange } from './kv-change';
import { formatChange } from './sse';
import { WatchHistory } from './watch-history';

const put = (index: number, key = 'k', value = 'v'): KvChange => ({ type: 'put', key, value, index });
const frameBytes = (change: KvChange) => Buffer.byteLength(formatChange(change));

describe('WatchHistory', () => {
  it('keeps at most maxEntries changes, oldest trimmed first, and says which fromIndex it still covers', () => {
    const trimmed: number[] = [];
    const history = new WatchHistory({ maxEntries: 3, maxBytes: 1 << 20 }, 0, (e) => trimmed.push(e.change.index));
    for (const index of [2, 3, 5, 8, 9]) history.append(put(index));
    expect(history.size).toBe(3);
    expect(trimmed).toEqual([2, 3]);
    expect(history.oldestIndex).toBe(4);
    // fromIndex 4 is served without a gap (nothing changed at 4); 3 was trimmed.
    expect(history.covers(4)).toBe(true);
    expect(history.covers(3)).toBe(false);
    expect(history.lastIndex).toBe(9);
  });

  it('keeps at most maxBytes of frames, but always the newest change', () => {
    const small = put(1, 'a', 'x');
    const history = new WatchHistory({ maxEntries: 100, maxBytes: frameBytes(small) * 2 }, 0);
    history.append(small);
    history.append(put(2, 'a', 'y'));
    expect(history.size).toBe(2);
    history.append(put(3, 'a', 'z'));
    expect(history.size).toBe(2);
    expect(history.oldestIndex).toBe(2);
    history.append(put(4, 'a', 'v'.repeat(1000)));
    expect(history.size).toBe(1);
    expect(history.byteSize).toBe(frameBytes(put(4, 'a', 'v'.repeat(1000))));
    expect(history.oldestIndex).toBe(4);
  });

  it('covers everything after its floor: a fresh node from index 1, a restored one only past its restore point', () => {
    const fresh = new WatchHistory({ maxEntries: 10, maxBytes: 1 << 20 }, 0);
    expect(fresh.covers(1)).toBe(true);
    expect(fresh.covers(0)).toBe(false);
    fresh.append(put(1));
    fresh.reset(50);
    expect(fresh.size).toBe(0);
    expect(fresh.covers(50)).toBe(false);
    expect(fresh.covers(51)).toBe(true);
    expect(fresh.lastIndex).toBe(50);
  });

  it('finds the first change at or after an index', () => {
    const history = new WatchHistory({ maxEntries: 3, maxBytes: 1 << 20 }, 0);
    for (const index of [1, 4, 6, 7]) history.append(put(index));
    expect(history.positionOf(1)).toBe(0);
    expect(history.at(history.positionOf(5))?.change.index).toBe(6);
    expect(history.at(history.positionOf(7))?.change.index).toBe(7);
    expect(history.at(history.positionOf(8))).toBeUndefined();
  });

  it('stays correct across the batched drop of trimmed entries', () => {
    const history = new WatchHistory({ maxEntries: 10, maxBytes: 1 << 30 }, 0);
    for (let index = 1; index <= 5000; index++) history.append(put(index));
    expect(history.size).toBe(10);
    expect(history.oldestIndex).toBe(4991);
    expect(history.at(0)?.change.index).toBe(4991);
    expect(history.at(history.positionOf(4995))?.change.index).toBe(4995);
  });
});

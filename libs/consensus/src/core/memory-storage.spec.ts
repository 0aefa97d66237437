import { MemoryStorage, SnapshotOutOfDateError } from './memory-storage';
import { CompactedError, SnapshotTemporarilyUnavailableError, UnavailableError } from './storage';
import { ent, ents, it2 } from '../../../../test/support/raft-test-util';

/** A storage holding a snapshot at index 3 (term 3) and entries 4 (term 4) and 5 (term 5). */
function compacted(): MemoryStorage {
  const s = new MemoryStorage();
  s.append(ents(1, [1, 2, 3, 4, 5]));
  s.compact(3);
  return s;
}

describe('MemoryStorage', () => {
  it.each([
    [2, CompactedError, undefined],
    [3, undefined, 3],
    [4, undefined, 4],
    [5, undefined, 5],
    [6, UnavailableError, undefined],
  ])('term(%d)', (i, err, want) => {
    const s = compacted();
    if (err) expect(() => s.term(i)).toThrow(err);
    else expect(s.term(i)).toBe(want);
  });

  it.each([
    // lo, hi, maxBytes, error, want [index, term]
    [2, 6, Infinity, CompactedError, []],
    [3, 4, Infinity, CompactedError, []],
    [4, 5, Infinity, undefined, [[4, 4]]],
    [4, 6, Infinity, undefined, [[4, 4], [5, 5]]],
    [4, 7, Infinity, UnavailableError, []],
    [4, 6, 0, undefined, [[4, 4]]],
    [4, 6, 2, undefined, [[4, 4]]],
    [4, 6, 4, undefined, [[4, 4], [5, 5]]],
    [5, 5, Infinity, undefined, []],
  ])('entries(%d, %d, %d)', (lo, hi, maxBytes, err, want) => {
    const s = new MemoryStorage();
    s.append([ent(1, 1, 'aa'), ent(2, 2, 'bb'), ent(3, 3, 'cc'), ent(4, 4, 'dd'), ent(5, 5, 'ee')]);
    s.compact(3);
    if (err) expect(() => s.entries(lo, hi, maxBytes)).toThrow(err);
    else expect(it2(s.entries(lo, hi, maxBytes))).toEqual(want);
  });

  it('first and last index of an empty, a filled and a compacted log', () => {
    const s = new MemoryStorage();
    expect([s.firstIndex(), s.lastIndex()]).toEqual([1, 0]);
    s.append(ents(1, [1, 1, 2]));
    expect([s.firstIndex(), s.lastIndex()]).toEqual([1, 3]);
    s.compact(2);
    expect([s.firstIndex(), s.lastIndex()]).toEqual([3, 3]);
    expect(s.term(2)).toBe(1);
  });

  it.each([
    ['append at the end', ents(6, [5]), [3, 4, 5, 6], [3, 4, 5, 5]],
    ['overwrite the tail with a conflicting entry', ents(5, [6]), [3, 4, 5], [3, 4, 6]],
    ['truncate a longer suffix', ents(4, [6, 6]), [3, 4, 5], [3, 6, 6]],
    ['identical entries', ents(4, [4, 5]), [3, 4, 5], [3, 4, 5]],
    ['entries starting below the snapshot are trimmed', ents(2, [3, 3, 5]), [3, 4], [3, 5]],
    ['entirely compacted entries are ignored', ents(1, [1, 2]), [3, 4, 5], [3, 4, 5]],
  ])('append: %s', (_name, toAppend, wantIdx, wantTerms) => {
    const s = compacted();
    s.append(toAppend);
    const idx = [s.firstIndex() - 1];
    const terms = [s.term(s.firstIndex() - 1)];
    for (let i = s.firstIndex(); i <= s.lastIndex(); i++) {
      idx.push(i);
      terms.push(s.term(i));
    }
    expect(idx).toEqual(wantIdx);
    expect(terms).toEqual(wantTerms);
  });

  it('append refuses a gap', () => {
    const s = compacted();
    expect(() => s.append(ents(7, [5]))).toThrow('missing log entry');
  });

  it('compact refuses an index already compacted or beyond the log', () => {
    const s = compacted();
    expect(() => s.compact(3)).toThrow(CompactedError);
    expect(() => s.compact(9)).toThrow('out of bound');
    s.compact(4);
    expect(s.firstIndex()).toBe(5);
  });

  it('applySnapshot replaces the log and refuses older snapshots', () => {
    const s = new MemoryStorage();
    const snap = (index: number, term: number) => ({ metadata: { index, term, confState: { voters: ['a'] } }, data: new Uint8Array(0) });
    s.applySnapshot(snap(4, 4));
    expect([s.firstIndex(), s.lastIndex(), s.term(4)]).toEqual([5, 4, 4]);
    expect(() => s.applySnapshot(snap(3, 3))).toThrow(SnapshotOutOfDateError);
    expect(s.snapshot().metadata.index).toBe(4);
  });

  it('createSnapshot records the state at an index and keeps the log; compact then releases it', () => {
    const s = new MemoryStorage(['a']);
    s.append(ents(1, [1, 1, 2, 2, 2]));
    const snap = s.createSnapshot(3, { voters: ['a', 'b'] }, new Uint8Array([7]));
    expect(snap).toEqual({ metadata: { index: 3, term: 2, confState: { voters: ['a', 'b'] } }, data: new Uint8Array([7]) });
    expect(s.snapshot()).toBe(snap);
    expect([s.firstIndex(), s.lastIndex()]).toEqual([1, 5]);
    // A restart takes the configuration from the newest snapshot.
    expect(s.initialState().confState).toEqual({ voters: ['a', 'b'] });
    s.compact(3);
    expect([s.firstIndex(), s.lastIndex(), s.term(3)]).toEqual([4, 5, 2]);
    expect(() => s.createSnapshot(3, { voters: ['a'] }, new Uint8Array(0))).toThrow(SnapshotOutOfDateError);
    expect(() => s.createSnapshot(6, { voters: ['a'] }, new Uint8Array(0))).toThrow('out of bound');
    expect(s.createSnapshot(5, { voters: ['a'] }, new Uint8Array(0)).metadata).toEqual({ index: 5, term: 2, confState: { voters: ['a'] } });
  });

  it('snapshot() can be made temporarily unavailable (for tests of the leader)', () => {
    const s = new MemoryStorage();
    s.setSnapshotTemporarilyUnavailable(true);
    expect(() => s.snapshot()).toThrow(SnapshotTemporarilyUnavailableError);
    s.setSnapshotTemporarilyUnavailable(false);
    expect(s.snapshot().metadata.index).toBe(0);
  });

  it('keeps the hard state and the bootstrap voters', () => {
    const s = new MemoryStorage(['a', 'b']);
    expect(s.initialState()).toEqual({ hardState: { term: 0, vote: '', commit: 0 }, confState: { voters: ['a', 'b'] } });
    s.setHardState({ term: 3, vote: 'b', commit: 2 });
    expect(s.initialState().hardState).toEqual({ term: 3, vote: 'b', commit: 2 });
  });
});

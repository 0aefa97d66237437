import { MemoryStorage } from './memory-storage';
import { RaftLog } from './raft-log';
import { CompactedError } from './storage';
import { ent, ents, it2 } from '../../../../test/support/raft-test-util';

/** A log whose first `stable` entries are in storage and the rest unstable. */
function logWith(terms: number[], stable = terms.length): RaftLog {
  const s = new MemoryStorage();
  s.append(ents(1, terms.slice(0, stable)));
  const log = new RaftLog(s);
  if (terms.length > stable) log.append(ents(stable + 1, terms.slice(stable)));
  return log;
}

describe('RaftLog', () => {
  it.each([
    // existing terms (indices 1..3 = 1, 2, 3); entries to check; first conflict
    [[], 0],
    [ents(1, [1, 2, 3]), 0],
    [ents(2, [2, 3]), 0],
    [ents(3, [3]), 0],
    [ents(1, [1, 2, 3, 4, 4]), 4],
    [ents(2, [2, 3, 4, 4]), 4],
    [ents(4, [4, 4]), 4],
    [ents(1, [4, 4]), 1],
    [ents(2, [1, 4, 4]), 2],
    [ents(3, [1, 2, 4, 4]), 3],
  ])('findConflict(%j) = %d', (es, want) => {
    expect(logWith([1, 2, 3]).findConflict(es)).toBe(want);
  });

  it.each([
    // last index, last term of the candidate (our log: terms 1, 2, 3) -> up to date
    [2, 4, true],
    [3, 4, true],
    [4, 4, true],
    [2, 2, false],
    [3, 2, false],
    [4, 2, false],
    [2, 3, false],
    [3, 3, true],
    [4, 3, true],
  ])('isUpToDate(index %d, term %d) = %s (§5.4.1)', (index, term, want) => {
    expect(logWith([1, 2, 3]).isUpToDate(index, term)).toBe(want);
  });

  it.each([
    // index, logTerm, committed, entries -> lastNew (undefined: reject), want commit, want log terms
    ['match, no entries', 3, 3, 3, [], 3, 3, [1, 2, 3]],
    ['match, commit limited by last new', 3, 3, 5, [], 3, 3, [1, 2, 3]],
    ['match inside the log: commit limited by the last entry the leader vouched for', 1, 1, 3, [], 1, 1, [1, 2, 3]],
    ['append inside the log: same', 1, 1, 3, ents(2, [2]), 2, 2, [1, 2, 3]],
    ['append', 3, 3, 4, ents(4, [4]), 4, 4, [1, 2, 3, 4]],
    ['append two', 3, 3, 3, ents(4, [4, 4]), 5, 3, [1, 2, 3, 4, 4]],
    ['matching entries are not rewritten', 2, 2, 3, ents(3, [3]), 3, 3, [1, 2, 3]],
    ['conflict replaces the suffix', 2, 2, 3, ents(3, [4]), 3, 3, [1, 2, 4]],
    ['conflict further down', 1, 1, 2, ents(2, [4, 4]), 3, 2, [1, 4, 4]],
    ['mismatched term: reject', 3, 2, 3, ents(4, [4]), undefined, 1, [1, 2, 3]],
    ['beyond the log: reject', 4, 4, 4, ents(5, [4]), undefined, 1, [1, 2, 3]],
  ])('maybeAppend: %s', (_n, index, logTerm, committed, es, want, wantCommit, wantTerms) => {
    const log = logWith([1, 2, 3]);
    log.commitTo(1);
    expect(log.maybeAppend(index, logTerm, committed, es)).toBe(want);
    expect(log.committed).toBe(wantCommit);
    const terms: number[] = [];
    for (let i = 1; i <= log.lastIndex(); i++) terms.push(log.term(i));
    expect(terms).toEqual(wantTerms);
  });

  it('maybeAppend refuses to overwrite a committed entry', () => {
    const log = logWith([1, 2, 3]);
    log.commitTo(3);
    expect(() => log.maybeAppend(2, 2, 3, ents(3, [4]))).toThrow('conflicts with committed entry');
  });

  it.each([
    // follower log terms, index, term -> want index, term
    [[1, 1, 1, 2, 2, 2, 4, 4], 8, 3, 6, 2],
    [[1, 1, 1, 2, 2, 2, 4, 4], 8, 4, 8, 4],
    [[1, 1, 1, 2, 2, 2, 4, 4], 5, 1, 3, 1],
    [[1, 1, 1, 2, 2, 2, 4, 4], 8, 0, 0, 0],
    [[1, 1, 1], 10, 2, 10, 0], // beyond the log: term unknown
  ])('findConflictByTerm(%j, %d, %d) = (%d, %d)', (terms, index, term, wantIndex, wantTerm) => {
    expect(logWith(terms).findConflictByTerm(index, term)).toEqual({ index: wantIndex, term: wantTerm });
  });

  it('maybeCommit only commits an entry of the given term (Figure 8)', () => {
    const log = logWith([1, 1, 2, 3]);
    expect(log.maybeCommit(3, 3)).toBe(false);
    expect(log.committed).toBe(0);
    expect(log.maybeCommit(4, 3)).toBe(true);
    expect(log.committed).toBe(4);
    expect(log.maybeCommit(3, 2)).toBe(false);
  });

  it('commitTo refuses an index beyond the log; appliedTo one beyond the commit', () => {
    const log = logWith([1, 1]);
    expect(() => log.commitTo(3)).toThrow('out of range');
    log.commitTo(2);
    expect(() => log.appliedTo(3)).toThrow('out of range');
    log.appliedTo(2);
    expect(log.applied).toBe(2);
  });

  it('slice spans stable and unstable entries and honours maxBytes', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1, 'aaaa'), ent(2, 1, 'bbbb')]);
    const log = new RaftLog(s);
    log.append([ent(3, 2, 'cccc'), ent(4, 2, 'dddd')]);
    expect(it2(log.slice(1, 5, Infinity))).toEqual([[1, 1], [2, 1], [3, 2], [4, 2]]);
    expect(it2(log.slice(2, 4, Infinity))).toEqual([[2, 1], [3, 2]]);
    expect(it2(log.slice(1, 5, 4))).toEqual([[1, 1]]);
    expect(it2(log.slice(1, 5, 12))).toEqual([[1, 1], [2, 1], [3, 2]]);
    expect(it2(log.slice(3, 5, 0))).toEqual([[3, 2]]);
    expect(it2(log.slice(2, 5, 8))).toEqual([[2, 1], [3, 2]]);
    expect(log.slice(3, 3, 0)).toEqual([]);
    expect(() => log.slice(0, 2, Infinity)).toThrow(CompactedError);
    expect(() => log.slice(2, 6, Infinity)).toThrow('out of bound');
  });

  it('entries() caps the number of entries', () => {
    const log = logWith([1, 1, 1, 1, 1], 2);
    expect(it2(log.entries(1, Infinity, 3))).toEqual([[1, 1], [2, 1], [3, 1]]);
    expect(log.entries(6, Infinity, 3)).toEqual([]);
  });

  it('nextCommittedEnts: after applying, paginated by size, including unstable entries', () => {
    const s = new MemoryStorage();
    s.append([ent(1, 1, 'aa'), ent(2, 1, 'bb')]);
    const log = new RaftLog(s);
    log.append([ent(3, 1, 'cc')]);
    log.commitTo(3);
    expect(it2(log.nextCommittedEnts(Infinity))).toEqual([[1, 1], [2, 1], [3, 1]]);
    expect(it2(log.nextCommittedEnts(2))).toEqual([[1, 1]]);
    log.acceptApplying(1);
    expect(it2(log.nextCommittedEnts(4))).toEqual([[2, 1], [3, 1]]);
    log.appliedTo(3);
    expect(log.hasNextCommittedEnts()).toBe(false);
    expect(log.nextCommittedEnts(Infinity)).toEqual([]);
  });

  it('restore: the log becomes the snapshot; committed entries to apply start after it', () => {
    const log = logWith([1, 1, 1, 2], 3);
    log.commitTo(2);
    const snap = { metadata: { index: 6, term: 3, confState: { voters: ['1'] } }, data: new Uint8Array(0) };
    log.restore(snap);
    expect([log.firstIndex(), log.lastIndex(), log.lastTerm(), log.committed, log.applied]).toEqual([7, 6, 3, 6, 0]);
    expect(log.snapshot()).toBe(snap);
    // What storage still holds (entries 1..3) is no longer part of the log.
    expect(() => log.term(2)).toThrow(CompactedError);
    expect(log.matchTerm(3, 1)).toBe(false);
    log.append(ents(7, [3, 3]));
    log.commitTo(8);
    expect(it2(log.nextCommittedEnts(Infinity))).toEqual([[7, 3], [8, 3]]);
    // Once durable, the storage answers for it.
    log.unstable.acceptInProgress();
    (log.storage as MemoryStorage).applySnapshot(snap);
    log.unstable.stableSnapTo(6);
    log.appliedTo(6);
    expect([log.firstIndex(), log.term(6), log.snapshot().metadata.index]).toEqual([7, 3, 6]);
    expect(it2(log.nextCommittedEnts(Infinity))).toEqual([[7, 3], [8, 3]]);
  });

  it('a log on a compacted storage starts committed and applied at the snapshot index', () => {
    const s = new MemoryStorage();
    s.append(ents(1, [1, 1, 2, 2]));
    s.createSnapshot(3, { voters: ['1'] }, new Uint8Array(0));
    s.compact(3);
    const log = new RaftLog(s);
    expect([log.firstIndex(), log.committed, log.applying, log.applied, log.term(3)]).toEqual([4, 3, 3, 3, 2]);
    expect(() => log.term(2)).toThrow(CompactedError);
  });

  it('stableIndex and the unstable hand-off', () => {
    const log = logWith([1, 1, 2, 2], 2);
    expect(log.stableIndex()).toBe(2);
    expect(it2(log.nextUnstableEnts())).toEqual([[3, 2], [4, 2]]);
    log.unstable.acceptInProgress();
    expect(log.hasNextUnstableEnts()).toBe(false);
    (log.storage as MemoryStorage).append(ents(3, [2, 2]));
    log.unstable.stableTo(4, 2);
    expect(log.stableIndex()).toBe(4);
    expect(log.lastIndex()).toBe(4);
  });
});

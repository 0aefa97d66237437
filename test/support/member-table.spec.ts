import { comparableLine } from './member-table';

describe('comparableLine', () => {
  it('keeps a member row to its node, URL and role, whoever leads and however wide the columns', () => {
    const readme = 'node1  http://localhost:3001  voter, leader      2  -';
    const real = 'node1  http://localhost:3001  voter                  12  16370 ms';
    expect(comparableLine(readme)).toBe('node1 http://localhost:3001 voter');
    expect(comparableLine(real)).toBe(comparableLine(readme));
    // What the walkthroughs are about still differs: another node, another port, a learner.
    expect(comparableLine('node4  http://localhost:3004  voter  6  2 ms')).not.toBe(comparableLine('node5  http://localhost:3004  voter  6  2 ms'));
    expect(comparableLine('node4  http://localhost:3004  voter  6  2 ms')).not.toBe(comparableLine('node4  http://localhost:3005  voter  6  2 ms'));
    expect(comparableLine('node4  http://localhost:3004  learner  6  2 ms')).toBe('node4 http://localhost:3004 learner');
  });

  it('keeps the counts of the summary line, not the cluster id or the leader', () => {
    const readme = comparableLine('cluster 3f9a1c2b4d5e6f70: 3 voters, 0 learners; leader node1');
    expect(comparableLine('cluster ff5dfa7777e2eba2: 3 voters, 0 learners; leader node3')).toBe(readme);
    expect(comparableLine('cluster ff5dfa7777e2eba2: 5 voters, 0 learners; leader node3')).not.toBe(readme);
    expect(comparableLine('cluster ff5dfa7777e2eba2: 2 voters, 1 learner; leader node3')).toBe('cluster <id>: 2 voters, 1 learner; leader <any>');
  });

  it('masks indexes and digests elsewhere, but not node names or localhost ports', () => {
    expect(comparableLine('Removed node1 (index 4); members: node2, node3')).toBe('Removed node1 (index #); members: node2, node3');
    expect(comparableLine('OK (index 12)')).toBe(comparableLine('OK (index 2)'));
    expect(comparableLine('sha256   db702fec9dfae3fb5994a4e4b4261f24')).toBe('sha256 <hex>');
    expect(comparableLine('see http://localhost:3004 now')).toBe('see http://localhost:3004 now');
    expect(comparableLine('Stopping node2 ... done')).not.toBe(comparableLine('Stopping node3 ... done'));
  });
});

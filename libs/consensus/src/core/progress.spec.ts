import { Progress } from './progress';

function progress(state: 'Probe' | 'Replicate' | 'Snapshot', match: number, next: number): Progress {
  const p = new Progress(match, next, 4);
  if (state === 'Replicate') p.becomeReplicate();
  if (state === 'Snapshot') p.becomeSnapshot(10);
  p.match = match;
  p.next = next;
  return p;
}

describe('Progress', () => {
  it.each([
    // state, match, next, rejected, hint, want ok, want next
    ['Replicate', 5, 10, 5, 5, false, 10], // rejection at or below match is stale
    ['Replicate', 5, 10, 4, 4, false, 10],
    ['Replicate', 5, 10, 9, 9, true, 6], // back to match + 1
    ['Probe', 0, 0, 0, 0, false, 0], // next - 1 !== rejected: stale
    ['Probe', 0, 10, 5, 5, false, 10],
    ['Probe', 0, 10, 9, 9, true, 9],
    ['Probe', 0, 2, 1, 1, true, 1],
    ['Probe', 0, 1, 0, 0, true, 1], // next never drops below match + 1
    ['Probe', 0, 10, 9, 2, true, 3], // the hint skips ahead
    ['Probe', 0, 10, 9, 0, true, 1],
  ])('maybeDecrTo in %s (match %d next %d) rejected %d hint %d', (state, match, next, rejected, hint, ok, wantNext) => {
    const p = progress(state as 'Probe', match, next);
    expect(p.maybeDecrTo(rejected, hint)).toBe(ok);
    expect(p.next).toBe(wantNext);
  });

  it.each([
    [1, false, 5, 6],
    [5, false, 5, 6],
    [6, true, 6, 7],
    [10, true, 10, 11],
  ])('maybeUpdate(%d) (match 5, next 6)', (n, updated, match, next) => {
    const p = progress('Replicate', 5, 6);
    expect(p.maybeUpdate(n)).toBe(updated);
    expect([p.match, p.next]).toEqual([match, next]);
  });

  it('is paused: Probe after one MsgApp, Replicate when the window is full, always in Snapshot', () => {
    const probe = progress('Probe', 0, 1);
    expect(probe.isPaused()).toBe(false);
    probe.sentEntries(1, 1);
    expect(probe.isPaused()).toBe(true);
    expect(probe.maybeUpdate(1)).toBe(true);
    expect(probe.isPaused()).toBe(false);

    const rep = progress('Replicate', 0, 1);
    for (let i = 1; i <= 4; i++) {
      expect(rep.isPaused()).toBe(false);
      rep.sentEntries(1, i);
    }
    expect(rep.isPaused()).toBe(true);
    expect(rep.next).toBe(5);
    rep.inflights.freeLE(2);
    expect(rep.isPaused()).toBe(false);

    expect(progress('Snapshot', 0, 1).isPaused()).toBe(true);
  });

  it('state transitions reset flow control', () => {
    const p = progress('Replicate', 3, 9);
    p.sentEntries(2, 10);
    p.becomeProbe();
    expect([p.state, p.next, p.inflights.count]).toEqual(['Probe', 4, 0]);
    p.becomeReplicate();
    expect([p.state, p.next]).toEqual(['Replicate', 4]);
    p.becomeSnapshot(20);
    expect([p.state, p.pendingSnapshot, p.next]).toEqual(['Snapshot', 20, 21]);
    p.becomeProbe();
    expect([p.state, p.next]).toEqual(['Probe', 21]);
    // A failed snapshot (pendingSnapshot cleared first) probes from match + 1.
    p.becomeSnapshot(20);
    p.pendingSnapshot = 0;
    p.becomeProbe();
    expect([p.state, p.next]).toEqual(['Probe', 4]);
  });

  it('canBumpCommit: only when the follower may hold entries above the commit index it was sent', () => {
    const p = progress('Replicate', 5, 11);
    p.recordSentCommit(4);
    expect(p.canBumpCommit(4)).toBe(false);
    expect(p.canBumpCommit(8)).toBe(true);
    p.recordSentCommit(10);
    expect(p.canBumpCommit(12)).toBe(false);
  });
});

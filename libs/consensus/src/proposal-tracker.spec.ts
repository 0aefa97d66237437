/**
 * ProposalTracker: one answer per proposal, whichever comes first (applied with its term, lost to another
 * term, deadline passed, node stopped), and the metrics counted for each.
 */
import { ent } from '../../../test/support/raft-test-util';
import { ProposalLostError, ProposalTimeoutError } from './errors';
import { NodeMetrics } from './ports';
import { Applied, ProposalTracker, ProposalWaiter } from './proposal-tracker';

type Outcome = { resolved: Applied } | { rejected: Error };

function recordingMetrics(): { metrics: NodeMetrics; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const metrics: NodeMetrics = {
    messageSent: (t) => calls.push(['messageSent', t]),
    messageReceived: (t) => calls.push(['messageReceived', t]),
    proposal: (outcome, seconds) => calls.push(seconds === undefined ? ['proposal', outcome] : ['proposal', outcome, seconds]),
    readServed: (s) => calls.push(['readServed', s]),
    leaderChanged: () => calls.push(['leaderChanged']),
    electionStarted: () => calls.push(['electionStarted']),
    snapshotTaken: () => calls.push(['snapshotTaken']),
    snapshotInstalled: () => calls.push(['snapshotInstalled']),
  };
  return { metrics, calls };
}

/** A waiter that records every answer it gets (so a second answer would show). */
function waiter(): ProposalWaiter & { outcomes: Outcome[] } {
  const outcomes: Outcome[] = [];
  return {
    outcomes,
    resolve: (applied) => outcomes.push({ resolved: applied }),
    reject: (error) => outcomes.push({ rejected: error }),
  };
}

const TIMEOUT = 1000;

describe('ProposalTracker', () => {
  describe('applied: the term of the entry at the index decides', () => {
    it.each([
      { name: 'same term: resolved with index and result', proposedTerm: 2, appliedTerm: 2, ok: true },
      { name: 'later term overwrote it: lost', proposedTerm: 2, appliedTerm: 3, ok: false },
      { name: 'earlier term at the index: lost', proposedTerm: 3, appliedTerm: 2, ok: false },
    ])('$name', ({ proposedTerm, appliedTerm, ok }) => {
      const { metrics, calls } = recordingMetrics();
      const t = new ProposalTracker(TIMEOUT, metrics);
      const w = waiter();
      t.track(5, proposedTerm, 100, w);
      expect(t.size).toBe(1);
      t.applied(ent(5, appliedTerm, 'x'), 'the result', 350);
      expect(t.size).toBe(0);
      if (ok) {
        expect(w.outcomes).toEqual([{ resolved: { index: 5, result: 'the result' } }]);
        expect(calls).toEqual([['proposal', 'committed', 0.25]]);
      } else {
        expect(w.outcomes).toHaveLength(1);
        const error = (w.outcomes[0] as { rejected: Error }).rejected;
        expect(error).toBeInstanceOf(ProposalLostError);
        expect((error as ProposalLostError).index).toBe(5);
        expect(calls).toEqual([['proposal', 'lost']]);
      }
    });
  });

  it('answers several waiters at one index, each by its own term', () => {
    const { metrics, calls } = recordingMetrics();
    const t = new ProposalTracker(TIMEOUT, metrics);
    const [a, b, c] = [waiter(), waiter(), waiter()];
    t.track(7, 2, 0, a);
    t.track(7, 4, 0, b);
    t.track(7, 4, 500, c);
    t.applied(ent(7, 4), 42, 1000);
    expect(a.outcomes).toEqual([{ rejected: new ProposalLostError(7) }]);
    expect((a.outcomes[0] as { rejected: Error }).rejected).toBeInstanceOf(ProposalLostError);
    expect(b.outcomes).toEqual([{ resolved: { index: 7, result: 42 } }]);
    expect(c.outcomes).toEqual([{ resolved: { index: 7, result: 42 } }]);
    expect(calls).toEqual([
      ['proposal', 'lost'],
      ['proposal', 'committed', 1],
      ['proposal', 'committed', 0.5],
    ]);
    expect(t.size).toBe(0);
  });

  it('ignores entries nobody waits for, and answers a waiter only once', () => {
    const { metrics, calls } = recordingMetrics();
    const t = new ProposalTracker(TIMEOUT, metrics);
    const w = waiter();
    t.track(3, 1, 0, w);
    t.applied(ent(2, 1), 'other', 10);
    t.applied(ent(4, 1), 'other', 10);
    expect(w.outcomes).toEqual([]);
    expect(t.size).toBe(1);
    t.applied(ent(3, 1), 'mine', 10);
    t.applied(ent(3, 1), 'again', 20);
    t.expire(1_000_000);
    t.failAll();
    expect(w.outcomes).toEqual([{ resolved: { index: 3, result: 'mine' } }]);
    expect(calls).toEqual([['proposal', 'committed', 0.01]]);
  });

  describe('expire: rejects with ProposalTimeoutError once the deadline (start + timeout) is reached', () => {
    it.each([
      { now: 0, expired: [] as number[] },
      { now: 999, expired: [] as number[] },
      { now: 1000, expired: [1] },
      { now: 1499, expired: [1] },
      { now: 1500, expired: [1, 2] },
    ])('at $now: $expired', ({ now, expired }) => {
      const { metrics, calls } = recordingMetrics();
      const t = new ProposalTracker(TIMEOUT, metrics);
      const w1 = waiter();
      const w2 = waiter();
      t.track(1, 1, 0, w1);
      t.track(2, 1, 500, w2);
      t.expire(now);
      const rejected = [w1, w2].flatMap((w, k) => (w.outcomes.length > 0 ? [k + 1] : []));
      expect(rejected).toEqual(expired);
      for (const [k, w] of [w1, w2].entries()) {
        if (w.outcomes.length === 0) continue;
        expect(w.outcomes).toHaveLength(1);
        const error = (w.outcomes[0] as { rejected: Error }).rejected as ProposalTimeoutError;
        expect(error).toBeInstanceOf(ProposalTimeoutError);
        expect([error.index, error.timeoutMs]).toEqual([k + 1, TIMEOUT]);
      }
      expect(calls).toEqual(expired.map(() => ['proposal', 'timeout']));
      expect(t.size).toBe(2 - expired.length);
    });
  });

  it('expire keeps the later waiter at an index whose earlier waiter timed out', () => {
    const { metrics } = recordingMetrics();
    const t = new ProposalTracker(TIMEOUT, metrics);
    const early = waiter();
    const late = waiter();
    t.track(9, 1, 0, early);
    t.track(9, 3, 600, late);
    t.expire(1000);
    expect(early.outcomes).toHaveLength(1);
    expect((early.outcomes[0] as { rejected: Error }).rejected).toBeInstanceOf(ProposalTimeoutError);
    expect(late.outcomes).toEqual([]);
    expect(t.size).toBe(1);
    t.applied(ent(9, 3), 'late wins', 1100);
    expect(late.outcomes).toEqual([{ resolved: { index: 9, result: 'late wins' } }]);
    expect(early.outcomes).toHaveLength(1);
  });

  it('failAll rejects every pending proposal with ProposalTimeoutError (outcome unknown) and forgets them', () => {
    const { metrics } = recordingMetrics();
    const t = new ProposalTracker(TIMEOUT, metrics);
    const ws = [waiter(), waiter(), waiter()];
    t.track(1, 1, 0, ws[0]);
    t.track(2, 1, 0, ws[1]);
    t.track(2, 2, 0, ws[2]);
    t.failAll();
    expect(t.size).toBe(0);
    const indices = ws.map((w) => {
      expect(w.outcomes).toHaveLength(1);
      const error = (w.outcomes[0] as { rejected: Error }).rejected as ProposalTimeoutError;
      expect(error).toBeInstanceOf(ProposalTimeoutError);
      return error.index;
    });
    expect(indices).toEqual([1, 2, 2]);
    t.applied(ent(1, 1), 'too late', 10);
    expect(ws[0].outcomes).toHaveLength(1);
  });
});

describe('ProposalTracker.waiters counts every proposal until it is answered', () => {
  it('across apply (same and other term), expiry and failAll', () => {
    const t = new ProposalTracker(TIMEOUT, recordingMetrics().metrics);
    t.track(1, 1, 0, waiter());
    t.track(1, 2, 0, waiter()); // two waiters at one index
    t.track(2, 1, 0, waiter());
    t.track(3, 1, 600, waiter());
    t.track(4, 1, 600, waiter());
    expect(t.waiters).toBe(5);
    t.applied(ent(1, 1), undefined, 1);
    expect(t.waiters).toBe(3);
    t.expire(TIMEOUT); // index 2 expires; 3 and 4 (started at 600) do not
    expect(t.waiters).toBe(2);
    t.failAll();
    expect(t.waiters).toBe(0);
  });
});

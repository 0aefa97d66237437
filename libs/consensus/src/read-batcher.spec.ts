/**
 * ReadBatcher: reads queued together share one ReadIndex context; each batch is answered once its read index
 * is applied, or rejected (request refused, deadline, leadership lost, node stopped).
 */
import { NoLeaderError, ReadTimeoutError } from './errors';
import { NodeMetrics } from './ports';
import { ReadBatcher, ReadWaiter } from './read-batcher';

type Outcome = { resolved: number } | { rejected: Error };

function waiter(): ReadWaiter & { outcomes: Outcome[] } {
  const outcomes: Outcome[] = [];
  return {
    outcomes,
    resolve: (readIndex) => outcomes.push({ resolved: readIndex }),
    reject: (error) => outcomes.push({ rejected: error }),
  };
}

function recordingMetrics(): { metrics: NodeMetrics; served: number[] } {
  const served: number[] = [];
  const none = () => {};
  return {
    served,
    metrics: {
      messageSent: none,
      messageReceived: none,
      proposal: () => {
        throw new Error('reads count no proposals');
      },
      readServed: (s) => served.push(s),
      leaderChanged: none,
      electionStarted: none,
      snapshotTaken: none,
      snapshotInstalled: none,
    },
  };
}

const TIMEOUT = 1000;
const noMap = (e: unknown) => e as Error;

/** Queues `n` reads at `now`, issues them as one batch, returns their waiters and the context used. */
function issueBatch(b: ReadBatcher, n: number, now: number): { ws: ReturnType<typeof waiter>[]; ctx: string } {
  const ws = Array.from({ length: n }, () => waiter());
  for (const w of ws) b.queue(w, now);
  let ctx = '';
  b.issue((c) => (ctx = c), noMap);
  return { ws, ctx };
}

describe('ReadBatcher', () => {
  it('reads queued together share one context; later ones get another', () => {
    const { metrics } = recordingMetrics();
    const b = new ReadBatcher(TIMEOUT, metrics);
    expect(b.hasQueued).toBe(false);
    const ws = [waiter(), waiter(), waiter()];
    for (const w of ws) b.queue(w, 0);
    expect(b.hasQueued).toBe(true);
    const requests: string[] = [];
    b.issue((ctx) => requests.push(ctx), noMap);
    expect(b.hasQueued).toBe(false);
    b.issue((ctx) => requests.push(ctx), noMap); // nothing queued: no request
    b.queue(waiter(), 0);
    b.issue((ctx) => requests.push(ctx), noMap);
    expect(requests).toHaveLength(2);
    expect(requests[0]).not.toBe(requests[1]);
    b.onReadStates([{ index: 8, requestCtx: requests[0] }], 8, 0);
    expect(ws.map((w) => w.outcomes)).toEqual([[{ resolved: 8 }], [{ resolved: 8 }], [{ resolved: 8 }]]);
  });

  it("a request that throws rejects the batch with mapError's error, and leaves no batch behind", () => {
    const { metrics } = recordingMetrics();
    const b = new ReadBatcher(TIMEOUT, metrics);
    const ws = [waiter(), waiter()];
    for (const w of ws) b.queue(w, 0);
    const mapped = new NoLeaderError();
    const seen: unknown[] = [];
    let ctx = '';
    b.issue(
      (c) => {
        ctx = c;
        throw new Error('dropped');
      },
      (e) => {
        seen.push(e);
        return mapped;
      },
    );
    expect(seen).toHaveLength(1);
    expect((seen[0] as Error).message).toBe('dropped');
    expect(ws.map((w) => w.outcomes)).toEqual([[{ rejected: mapped }], [{ rejected: mapped }]]);
    expect(b.hasQueued).toBe(false);
    // A late ReadState for that context answers nobody, and expire/failAll find nothing.
    b.onReadStates([{ index: 3, requestCtx: ctx }], 10, 0);
    b.expire(10 * TIMEOUT);
    b.failAll(new Error('stop'));
    expect(ws.map((w) => w.outcomes.length)).toEqual([1, 1]);
  });

  describe('released once applied covers the read index', () => {
    it.each([
      { applied: 4, onStates: [] as number[], later: 4, thenReleased: [] as number[] },
      { applied: 4, onStates: [], later: 5, thenReleased: [5] },
      { applied: 4, onStates: [], later: 6, thenReleased: [5] },
      { applied: 5, onStates: [5], later: 5, thenReleased: [] },
      { applied: 6, onStates: [5], later: 7, thenReleased: [7] },
      { applied: 9, onStates: [5, 7], later: 9, thenReleased: [] },
    ])('applied $applied at onReadStates → $onStates; applied($later) → $thenReleased', ({ applied, onStates, later, thenReleased }) => {
      const { metrics } = recordingMetrics();
      const b = new ReadBatcher(TIMEOUT, metrics);
      const first = issueBatch(b, 1, 0);
      const second = issueBatch(b, 2, 0);
      b.onReadStates(
        [
          { index: 5, requestCtx: first.ctx },
          { index: 7, requestCtx: second.ctx },
        ],
        applied,
        0,
      );
      const released = () =>
        [
          [5, first.ws],
          [7, second.ws],
        ].flatMap(([index, ws]) => ((ws as ReturnType<typeof waiter>[])[0].outcomes.length > 0 ? [index as number] : []));
      expect(released()).toEqual(onStates);
      const before = released();
      b.applied(later, 0);
      expect(released().filter((i) => !before.includes(i))).toEqual(thenReleased);
      for (const w of first.ws) if (w.outcomes.length) expect(w.outcomes).toEqual([{ resolved: 5 }]);
      for (const w of second.ws) if (w.outcomes.length) expect(w.outcomes).toEqual([{ resolved: 7 }]);
    });
  });

  it('resolves with the read index (not the applied index) and counts each read served', () => {
    const { metrics, served } = recordingMetrics();
    const b = new ReadBatcher(TIMEOUT, metrics);
    const ws = [waiter(), waiter()];
    b.queue(ws[0], 100);
    b.queue(ws[1], 300);
    let ctx = '';
    b.issue((c) => (ctx = c), noMap);
    b.onReadStates([{ index: 12, requestCtx: ctx }], 3, 400);
    expect(served).toEqual([]);
    b.applied(20, 600);
    expect(ws.map((w) => w.outcomes)).toEqual([[{ resolved: 12 }], [{ resolved: 12 }]]);
    expect(served).toEqual([0.5, 0.3]);
    b.applied(30, 700);
    expect(ws.map((w) => w.outcomes.length)).toEqual([1, 1]);
  });

  it('ignores read states for contexts it did not issue', () => {
    const { metrics } = recordingMetrics();
    const b = new ReadBatcher(TIMEOUT, metrics);
    const { ws, ctx } = issueBatch(b, 1, 0);
    b.onReadStates([{ index: 2, requestCtx: ctx + '-other' }], 100, 0);
    expect(ws[0].outcomes).toEqual([]);
    b.onReadStates([{ index: 2, requestCtx: ctx }], 100, 0);
    expect(ws[0].outcomes).toEqual([{ resolved: 2 }]);
  });

  describe('expire: from the first read of the batch, issued or waiting for apply', () => {
    it.each([
      { now: 999, expired: [] as string[] },
      { now: 1000, expired: ['issued', 'waiting'] },
    ])('at $now: $expired', ({ now, expired }) => {
      const { metrics } = recordingMetrics();
      const b = new ReadBatcher(TIMEOUT, metrics);
      const issued = issueBatch(b, 1, 0);
      const waiting = issueBatch(b, 1, 0);
      const later = issueBatch(b, 1, 500);
      b.onReadStates([{ index: 50, requestCtx: waiting.ctx }], 10, 0);
      b.expire(now);
      const rejected = Object.entries({ issued, waiting, later }).flatMap(([name, { ws }]) => (ws[0].outcomes.length ? [name] : []));
      expect(rejected).toEqual(expired);
      for (const name of expired) {
        const { ws } = { issued, waiting, later }[name as 'issued' | 'waiting']!;
        const error = (ws[0].outcomes[0] as { rejected: Error }).rejected as ReadTimeoutError;
        expect(error).toBeInstanceOf(ReadTimeoutError);
        expect(error.timeoutMs).toBe(TIMEOUT);
      }
      // Nothing expired is answered twice; what is left still works.
      b.onReadStates([{ index: 1, requestCtx: issued.ctx }], 60, now);
      expect(issued.ws[0].outcomes).toHaveLength(1);
      expect(waiting.ws[0].outcomes).toHaveLength(1);
      b.onReadStates([{ index: 60, requestCtx: later.ctx }], 60, now);
      expect(later.ws[0].outcomes).toEqual([{ resolved: 60 }]);
    });
  });

  it('abandonUnconfirmed rejects queued and issued reads, keeps those that already have their read index', () => {
    const { metrics } = recordingMetrics();
    const b = new ReadBatcher(TIMEOUT, metrics);
    const confirmed = issueBatch(b, 2, 0);
    b.onReadStates([{ index: 10, requestCtx: confirmed.ctx }], 5, 0);
    const issued = issueBatch(b, 1, 0);
    const queued = waiter();
    b.queue(queued, 0);
    const lost = new NoLeaderError();
    b.abandonUnconfirmed(lost);
    expect(issued.ws[0].outcomes).toEqual([{ rejected: lost }]);
    expect(queued.outcomes).toEqual([{ rejected: lost }]);
    expect(b.hasQueued).toBe(false);
    expect(confirmed.ws.map((w) => w.outcomes)).toEqual([[], []]);
    b.applied(10, 0);
    expect(confirmed.ws.map((w) => w.outcomes)).toEqual([[{ resolved: 10 }], [{ resolved: 10 }]]);
    // The abandoned context answering late changes nothing.
    b.onReadStates([{ index: 10, requestCtx: issued.ctx }], 10, 0);
    expect(issued.ws[0].outcomes).toHaveLength(1);
  });

  it('failAll rejects everything: queued, issued and waiting for apply', () => {
    const { metrics, served } = recordingMetrics();
    const b = new ReadBatcher(TIMEOUT, metrics);
    const waiting = issueBatch(b, 1, 0);
    b.onReadStates([{ index: 10, requestCtx: waiting.ctx }], 5, 0);
    const issued = issueBatch(b, 1, 0);
    const queued = waiter();
    b.queue(queued, 0);
    const stop = new Error('stopping');
    b.failAll(stop);
    for (const outcomes of [waiting.ws[0].outcomes, issued.ws[0].outcomes, queued.outcomes]) {
      expect(outcomes).toEqual([{ rejected: stop }]);
    }
    b.applied(100, 0);
    b.expire(100 * TIMEOUT);
    expect(waiting.ws[0].outcomes).toHaveLength(1);
    expect(served).toEqual([]);
  });
});

describe('ReadBatcher.waiters counts every reader until it is answered', () => {
  const paths: Array<[string, (b: ReadBatcher) => void]> = [
    ['released once applied', (b) => {
      const { ctx } = issueBatch(b, 3, 0);
      b.onReadStates([{ index: 5, requestCtx: ctx }], 5, 1);
    }],
    ['the request refused', (b) => {
      for (let i = 0; i < 3; i++) b.queue(waiter(), 0);
      b.issue(() => {
        throw new Error('no leader');
      }, noMap);
    }],
    ['expired while issued', (b) => {
      issueBatch(b, 3, 0);
      b.expire(TIMEOUT);
    }],
    ['expired while waiting for apply', (b) => {
      const { ctx } = issueBatch(b, 3, 0);
      b.onReadStates([{ index: 9, requestCtx: ctx }], 5, 1);
      b.expire(TIMEOUT);
    }],
    ['abandoned (queued and issued)', (b) => {
      issueBatch(b, 2, 0);
      b.queue(waiter(), 0);
      b.abandonUnconfirmed(new NoLeaderError());
    }],
    ['failAll', (b) => {
      const { ctx } = issueBatch(b, 2, 0);
      b.onReadStates([{ index: 9, requestCtx: ctx }], 5, 1);
      b.queue(waiter(), 0);
      b.failAll(new NoLeaderError());
    }],
  ];
  it.each(paths)('back to 0 after: %s', (_name, path) => {
    const b = new ReadBatcher(TIMEOUT, recordingMetrics().metrics);
    path(b);
    expect(b.waiters).toBe(0);
  });

  it('counts queued, issued and waiting readers together', () => {
    const b = new ReadBatcher(TIMEOUT, recordingMetrics().metrics);
    const { ctx } = issueBatch(b, 2, 0);
    b.onReadStates([{ index: 9, requestCtx: ctx }], 5, 1); // waiting for apply
    issueBatch(b, 3, 0); // issued
    b.queue(waiter(), 0); // queued
    expect(b.waiters).toBe(6);
  });
});

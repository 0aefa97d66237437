import { ReadOnly } from './read-only';

describe('ReadOnly', () => {
  it('answers every request up to the one a quorum confirmed, in order', () => {
    const ro = new ReadOnly();
    const k1 = ro.addRequest(5, 'a', 'r1')!;
    const k2 = ro.addRequest(6, 'b', 'r2')!;
    const k3 = ro.addRequest(7, 'a', 'r3')!;
    expect(ro.lastPendingKey()).toBe(k3);
    expect(ro.recvAck('x', k2)!.size).toBe(1);
    const done = ro.advance(k2);
    expect(done.map((r) => [r.from, r.ctx, r.index])).toEqual([
      ['a', 'r1', 5],
      ['b', 'r2', 6],
    ]);
    expect(ro.size).toBe(1);
    expect(ro.recvAck('x', k1)).toBeUndefined();
    expect(ro.advance(k1)).toEqual([]);
    expect(ro.advance(k3).map((r) => r.ctx)).toEqual(['r3']);
    expect(ro.lastPendingKey()).toBeUndefined();
  });

  it('keys requests by sender and context: equal contexts from different nodes do not collide', () => {
    const ro = new ReadOnly();
    expect(ro.addRequest(1, 'a', 'same')).toBeDefined();
    expect(ro.addRequest(1, 'b', 'same')).toBeDefined();
    expect(ro.addRequest(2, 'a', 'same')).toBeUndefined();
    expect(ro.size).toBe(2);
  });

  it('counts each acknowledging node once', () => {
    const ro = new ReadOnly();
    const k = ro.addRequest(1, 'a', 'r')!;
    ro.recvAck('b', k);
    expect(ro.recvAck('b', k)!.size).toBe(1);
    expect(ro.recvAck('c', k)!.size).toBe(2);
  });
});

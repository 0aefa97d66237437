import { EntryType } from '@app/consensus';
import { decodeCommand, encodeCommand, KvCommand } from './kv-command';
import { DeadlineHeap } from './deadline-heap';
import { ExpiryScheduler } from './kv-expiry';
import { KvStateMachine } from './kv-state-machine';

const T0 = 1_800_000_000_000;

/**
 * A leader's machine and scheduler on a fake clock. Proposals are held until the test settles them: commit()
 * applies the oldest one (as the log would) and resolves it; lose() rejects it unapplied.
 */
function leader(batchKeys?: number) {
  const machine = new KvStateMachine();
  let index = 0;
  const clock = { now: T0, leading: true };
  const proposals: Array<{ data: Uint8Array; resolve: () => void; reject: (error: Error) => void }> = [];
  const scheduler = new ExpiryScheduler(
    {
      machine,
      isLeader: () => clock.leading,
      now: () => clock.now,
      propose: (data) => new Promise<void>((resolve, reject) => proposals.push({ data, resolve, reject })),
    },
    batchKeys,
  );
  const apply = (command: KvCommand) => machine.apply({ term: 1, index: ++index, type: EntryType.Normal, data: encodeCommand(command) });
  const flush = () => new Promise<void>((resolve) => setImmediate(resolve));
  return {
    machine,
    scheduler,
    clock,
    proposals,
    apply,
    put: (key: string, ttl?: number) => apply({ op: 'put', key, value: 'v', ...(ttl === undefined ? {} : { ttl, at: clock.now }) }),
    /** The keys of each expire command proposed and not yet settled. */
    proposed: () => proposals.map((p) => (decodeCommand(p.data) as Extract<KvCommand, { op: 'expire' }>).keys.map((k) => k.key)),
    async commit() {
      const proposal = proposals.shift()!;
      machine.apply({ term: 1, index: ++index, type: EntryType.Normal, data: proposal.data });
      proposal.resolve();
      await flush();
    },
    async lose() {
      proposals.shift()!.reject(new Error('leadership changed'));
      await flush();
    },
  };
}

describe('DeadlineHeap', () => {
  it('pops deadlines earliest first, ties by modIndex, whatever the push order', () => {
    const heap = new DeadlineHeap();
    const order = [50, 10, 40, 10, 30, 20, 60, 0];
    order.forEach((expiresAt, i) => heap.push({ key: `k${i}`, modIndex: 100 - i, expiresAt }));
    const popped: string[] = [];
    while (heap.size > 0) {
      const d = heap.pop()!;
      popped.push(`${d.expiresAt}/${d.modIndex}`);
    }
    expect(popped).toEqual(['0/93', '10/97', '10/99', '20/95', '30/96', '40/98', '50/100', '60/94']);
    expect(heap.pop()).toBeUndefined();
  });
});

describe('ExpiryScheduler (the leader carries out expiry)', () => {
  it('proposes nothing before the deadline, then one expire command with the due keys and the modIndex each had', async () => {
    const node = leader();
    node.put('a', 2);
    node.put('b', 5);
    node.put('plain');
    node.scheduler.tick();
    node.clock.now = T0 + 1999;
    node.scheduler.tick();
    expect(node.proposals).toHaveLength(0);
    node.clock.now = T0 + 2000;
    node.scheduler.tick();
    expect(node.proposed()).toEqual([['a']]);
    const command = decodeCommand(node.proposals[0].data);
    expect(command).toEqual({ op: 'expire', at: T0 + 2000, keys: [{ key: 'a', modIndex: 1 }] });
    await node.commit();
    expect([...node.machine.entries()].map(([key]) => key)).toEqual(['b', 'plain']);
  });

  it('learns deadlines applied after it built its heap (ExpiryListener), and skips a key rewritten since', async () => {
    const node = leader();
    node.scheduler.tick();
    node.put('a', 1);
    node.put('b', 1);
    node.put('b'); // rewritten without a TTL: stays
    node.clock.now = T0 + 1000;
    node.scheduler.tick();
    expect(node.proposed()).toEqual([['a']]);
    await node.commit();
    expect(node.machine.has('b')).toBe(true);
  });

  it('keeps one command in flight, batches at most batchKeys keys, and goes on with the rest once it settles', async () => {
    const node = leader(2);
    for (const key of ['a', 'b', 'c', 'd', 'e']) node.put(key, 1);
    node.clock.now = T0 + 1000;
    node.scheduler.tick();
    node.scheduler.tick();
    expect(node.proposed()).toEqual([['a', 'b']]);
    await node.commit();
    node.scheduler.tick();
    expect(node.proposed()).toEqual([['c', 'd']]);
    await node.commit();
    node.scheduler.tick();
    await node.commit();
    expect(node.machine.size).toBe(0);
  });

  it('puts the keys of a failed expire back and proposes them again at the next tick', async () => {
    const node = leader();
    node.put('a', 1);
    node.clock.now = T0 + 1000;
    node.scheduler.tick();
    await node.lose();
    expect(node.machine.has('a')).toBe(true);
    node.scheduler.tick();
    expect(node.proposed()).toEqual([['a']]);
  });

  it('a follower does nothing; a new leader builds its heap from the map at once and expires what is due', async () => {
    const node = leader();
    node.clock.leading = false;
    node.put('a', 1);
    node.put('b', 3);
    node.clock.now = T0 + 5000;
    node.scheduler.tick();
    expect(node.proposals).toHaveLength(0);
    expect(node.scheduler.pending).toBe(0);
    node.clock.leading = true;
    node.scheduler.tick();
    expect(node.proposed()).toEqual([['a', 'b']]);
  });

  it('never expires a key before its deadline on its clock, also right after becoming leader', () => {
    const node = leader();
    node.clock.leading = false;
    node.put('a', 10);
    node.clock.leading = true;
    node.clock.now = T0 + 9999;
    node.scheduler.tick();
    expect(node.proposals).toHaveLength(0);
    expect(node.scheduler.pending).toBe(1);
  });

  it('drops its heap on losing leadership, and a batch settling afterwards does not requeue into a newer heap', async () => {
    const node = leader();
    node.put('a', 1);
    node.clock.now = T0 + 1000;
    node.scheduler.tick();
    node.clock.leading = false;
    node.scheduler.tick();
    expect(node.scheduler.pending).toBe(0);
    await node.lose();
    expect(node.scheduler.pending).toBe(0);
    node.clock.leading = true;
    node.scheduler.tick();
    expect(node.proposed()).toEqual([['a']]);
  });

  it('rebuilds after a restore: deadlines of the restored map, not of the one before', () => {
    const source = leader();
    source.put('restored', 1);
    const view = source.machine.snapshot();
    const chunks = [...view.chunks()];
    view.release();

    const node = leader();
    node.put('old', 1);
    node.scheduler.tick();
    node.machine.restore(chunks, () => undefined);
    node.clock.now = T0 + 1000;
    node.scheduler.tick();
    expect(node.proposed()).toEqual([['restored']]);
  });

  it('a propose that throws at once (not leader any more) is retried like a failed one', async () => {
    const machine = new KvStateMachine();
    machine.apply({ term: 1, index: 1, type: EntryType.Normal, data: encodeCommand({ op: 'put', key: 'a', value: 'v', ttl: 1, at: T0 }) });
    const warnings: string[] = [];
    let attempts = 0;
    const scheduler = new ExpiryScheduler({
      machine,
      isLeader: () => true,
      now: () => T0 + 1000,
      propose: () => {
        attempts++;
        throw new Error('not leader');
      },
      warn: (message) => warnings.push(message),
    });
    scheduler.tick();
    await new Promise((resolve) => setImmediate(resolve));
    scheduler.tick();
    expect(attempts).toBe(2);
    expect(warnings[0]).toMatch(/expiry of 1 key\(s\) not applied \(not leader\)/);
  });
});

/**
 * RaftNode on fakes (testing/node-fakes.ts): a virtual clock (timers and deferred turns run by the test, no
 * real time), a MemoryStorage-backed RaftStorage whose saves complete on a deferred turn (or fail, or wait),
 * a transport that records what is sent, and a state machine that records what it applies.
 */
import { newMessage } from './core/message';
import { Message, MessageType as T, None, Snapshot, StateType } from './core/types';
import { seededRandom } from '../../../test/support/raft-test-util';
import { NoLeaderError, NotLeaderError, OverloadedError, ProposalTimeoutError, ShuttingDownError } from './errors';
import { FakeRaftStorage, outcome, RecordingStateMachine, RecordingTransport, VirtualClock } from './testing/node-fakes';
import { Applied } from './proposal-tracker';
import { RaftNode } from './raft-node';
import { RaftNodeOptions, RaftNodePorts } from './raft-node-options';

const TICK_MS = 100;
const REQUEST_TIMEOUT_MS = 2000;
const bytes = (s: string) => new TextEncoder().encode(s);

/** A RaftNode started with an identity, as production's RaftNodeService does: the members' addresses. */
class NodeWithAddresses extends RaftNode {
  constructor(options: RaftNodeOptions, ports: RaftNodePorts) {
    super(options, ports);
    const members = options.members ?? [];
    const addresses = Object.fromEntries(members.map((id) => [id, `http://${id}.test:3000`]));
    this.useIdentity({ clusterId: 'c', nodeId: options.id, initialVoters: members, addresses });
  }
}

function setup(members = ['n1'], options: Partial<RaftNodeOptions> = {}) {
  const clock = new VirtualClock();
  const storage = new FakeRaftStorage(clock);
  const transport = new RecordingTransport();
  const stateMachine = new RecordingStateMachine();
  const fatal: Error[] = [];
  const node = new NodeWithAddresses(
    {
      id: 'n1',
      name: 'node-1',
      members,
      tickMs: TICK_MS,
      electionTick: 10,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      random: seededRandom(5),
      onFatal: (e) => fatal.push(e),
      ...options,
    },
    { storage, transport, stateMachine, clock },
  );
  return { clock, storage, transport, stateMachine, fatal, node };
}

/** A started single-member node that elected itself and applied its no-op. */
function singleLeader() {
  const s = setup(['n1']);
  s.node.start();
  s.clock.runDeferred();
  expect(s.node.isLeader).toBe(true);
  return s;
}

/** A follower of a three-member group that knows n2 leads term 1 (from n2's heartbeat). */
function followerOfN2() {
  const s = setup(['n1', 'n2', 'n3']);
  s.node.start();
  s.clock.runDeferred();
  s.transport.deliver({ ...newMessage(T.MsgHeartbeat, 'n1', 'n2', 1), commit: 0 });
  s.clock.runDeferred();
  return s;
}

describe('RaftNode', () => {
  describe('a single member', () => {
    it('elects itself at start and applies its no-op', () => {
      const { node, stateMachine, storage } = singleLeader();
      expect(node.leader()).toEqual({ lead: 'n1', name: 'node-1', url: 'http://n1.test:3000' });
      expect(node.applied).toBe(1);
      expect(stateMachine.applied.map((e) => [e.index, e.term, e.data.length])).toEqual([[1, 1, 0]]);
      expect(storage.mem.initialState().hardState).toMatchObject({ term: 1, vote: 'n1' });
    });

    it('propose() resolves with the index and the state machine result', async () => {
      const { node, clock, stateMachine } = singleLeader();
      const a = outcome(node.propose(bytes('a')));
      const b = outcome(node.propose(bytes('b')));
      clock.runDeferred();
      expect(await a).toEqual({ value: { index: 2, result: 'applied a@2' } });
      expect(await b).toEqual({ value: { index: 3, result: 'applied b@3' } });
      expect(node.applied).toBe(3);
      expect(stateMachine.applied.map((e) => new TextDecoder().decode(e.data))).toEqual(['', 'a', 'b']);
    });

    it('the state machine sees every committed entry once, in order, the no-op included', async () => {
      const { node, clock, stateMachine } = singleLeader();
      for (const round of [['x'], ['y', 'z'], ['w']]) {
        const all = round.map((d) => outcome(node.propose(bytes(d))));
        clock.advance(TICK_MS);
        for (const o of await Promise.all(all)) expect(o).toHaveProperty('value');
      }
      expect(stateMachine.applied.map((e) => [e.index, new TextDecoder().decode(e.data)])).toEqual([
        [1, ''],
        [2, 'x'],
        [3, 'y'],
        [4, 'z'],
        [5, 'w'],
      ]);
      expect(stateMachine.applied[0].data).toHaveLength(0);
    });

    it('readBarrier() resolves with a read index at or above the last applied write', async () => {
      const { node, clock } = singleLeader();
      const write = outcome(node.propose(bytes('v')));
      clock.runDeferred();
      const written = (await write) as { value: Applied };
      const reads = [outcome(node.readBarrier()), outcome(node.readBarrier())];
      clock.runDeferred();
      for (const r of await Promise.all(reads)) {
        expect(r).toHaveProperty('value');
        expect((r as { value: number }).value).toBeGreaterThanOrEqual(written.value.index);
        expect((r as { value: number }).value).toBeLessThanOrEqual(node.applied);
      }
    });

    it('a proposal not applied within the request timeout rejects with ProposalTimeoutError', async () => {
      const { node, clock, storage } = singleLeader();
      storage.hold = true;
      const p = outcome(node.propose(bytes('slow')));
      clock.advance(REQUEST_TIMEOUT_MS - TICK_MS);
      clock.advance(TICK_MS);
      const o = await p;
      expect((o as { error: Error }).error).toBeInstanceOf(ProposalTimeoutError);
      expect((o as { error: ProposalTimeoutError }).error.index).toBe(2);
    });

    it('waitForLeader resolves true at once when a leader is known', async () => {
      const { node } = singleLeader();
      await expect(node.waitForLeader(1000)).resolves.toBe(true);
    });
  });

  describe('bounded waiting (MAX_PENDING_REQUESTS)', () => {
    function boundedLeader() {
      const s = setup(['n1'], { maxPendingRequests: 2 });
      s.node.start();
      s.clock.runDeferred();
      expect(s.node.isLeader).toBe(true);
      return s;
    }

    it('refuses a write beyond the bound at once, proposing nothing, and takes writes again once answered', async () => {
      const { node, clock, storage, stateMachine } = boundedLeader();
      storage.hold = true;
      const waiting = [outcome(node.propose(bytes('a'))), outcome(node.propose(bytes('b')))];
      const refused = await outcome(node.propose(bytes('c')));
      expect((refused as { error: Error }).error).toBeInstanceOf(OverloadedError);
      expect((refused as { error: OverloadedError }).error.kind).toBe('write');
      storage.release();
      clock.runDeferred();
      for (const o of await Promise.all(waiting)) expect(o).toHaveProperty('value');
      expect(stateMachine.applied.map((e) => new TextDecoder().decode(e.data))).toEqual(['', 'a', 'b']);
      const again = outcome(node.propose(bytes('d')));
      clock.runDeferred();
      expect(await again).toHaveProperty('value');
    });

    it('refuses a linearizable read beyond the bound at once', async () => {
      const { node, clock } = boundedLeader();
      const waiting = [outcome(node.readBarrier()), outcome(node.readBarrier())];
      const refused = await outcome(node.readBarrier());
      expect((refused as { error: OverloadedError }).error).toBeInstanceOf(OverloadedError);
      expect((refused as { error: OverloadedError }).error.kind).toBe('read');
      clock.runDeferred();
      for (const o of await Promise.all(waiting)) expect(o).toHaveProperty('value');
      const again = outcome(node.readBarrier());
      clock.runDeferred();
      expect(await again).toHaveProperty('value');
    });
  });

  describe('not the leader', () => {
    it('three members, nothing delivered: propose and readBarrier reject with NoLeaderError', async () => {
      const { node, clock, transport } = setup(['n1', 'n2', 'n3']);
      node.start();
      clock.advance(50 * TICK_MS); // elections time out; no answer ever arrives
      expect(transport.sent.some((m) => m.type === T.MsgPreVote)).toBe(true);
      expect(node.leader().lead).toBe(None);
      const p = await outcome(node.propose(bytes('x')));
      expect((p as { error: Error }).error).toBeInstanceOf(NoLeaderError);
      const r = await outcome(node.readBarrier());
      expect((r as { error: Error }).error).toBeInstanceOf(NoLeaderError);
      const f = await outcome(node.readBarrier({ onFollower: true }));
      expect((f as { error: Error }).error).toBeInstanceOf(NoLeaderError);
    });

    it('a follower that knows the leader rejects with NotLeaderError naming it', async () => {
      const { node } = followerOfN2();
      expect(node.leader()).toEqual({ lead: 'n2', name: 'n2', url: 'http://n2.test:3000' });
      const o = await outcome(node.propose(bytes('x')));
      const error = (o as { error: NotLeaderError }).error;
      expect(error).toBeInstanceOf(NotLeaderError);
      expect([error.leaderName, error.leaderUrl]).toEqual(['n2', 'http://n2.test:3000']);
    });

    it('a follower that knows no address for the leader rejects with NoLeaderError, not a redirect to nowhere', async () => {
      // A plain RaftNode has no addresses (as for a leader just removed, still named until the next election).
      const clock = new VirtualClock();
      const node = new RaftNode(
        { id: 'n1', name: 'n1', members: ['n1', 'n2', 'n3'], tickMs: TICK_MS, electionTick: 10, requestTimeoutMs: REQUEST_TIMEOUT_MS, random: seededRandom(5), onFatal: () => {} },
        { storage: new FakeRaftStorage(clock), transport: new RecordingTransport(), stateMachine: new RecordingStateMachine(), clock },
      );
      node.start();
      clock.runDeferred();
      (node as unknown as { receive(ms: Message[]): void }).receive([{ ...newMessage(T.MsgHeartbeat, 'n1', 'n2', 1), commit: 0 }]);
      clock.runDeferred();
      expect(node.leader()).toEqual({ lead: 'n2', name: 'n2', url: undefined });
      const o = await outcome(node.propose(bytes('x')));
      expect((o as { error: Error }).error).toBeInstanceOf(NoLeaderError);
    });

    it('a node that joined starts with no configuration, even under the NODE_ID of an initial voter', () => {
      const clock = new VirtualClock();
      class Joined extends RaftNode {
        constructor() {
          super(
            { id: 'n1', name: 'n1', tickMs: TICK_MS, electionTick: 10, requestTimeoutMs: REQUEST_TIMEOUT_MS, random: seededRandom(5), onFatal: () => {} },
            { storage: new FakeRaftStorage(clock), transport: new RecordingTransport(), stateMachine: new RecordingStateMachine(), clock },
          );
          this.useIdentity({ clusterId: 'c', nodeId: 'n1', initialVoters: ['n1', 'n2', 'n3'], addresses: { n2: 'http://n2:1' }, joinedAt: 40 });
        }
      }
      const node = new Joined();
      node.start();
      clock.runDeferred();
      clock.advance(50 * TICK_MS);
      expect(node.members().members).toEqual([]);
      expect(node.raftStatus().raftState).toBe(StateType.Follower);
      expect(node.raftStatus().term).toBe(0); // it never campaigned
    });

    it('waitForLeader resolves false after its timeout when no leader appears', async () => {
      const { node, clock } = setup(['n1', 'n2', 'n3']);
      node.start();
      const w = node.waitForLeader(500);
      clock.advance(499);
      let settled = false;
      void w.then(() => (settled = true));
      await Promise.resolve();
      expect(settled).toBe(false);
      clock.advance(1);
      await expect(w).resolves.toBe(false);
    });
  });

  describe('stop()', () => {
    it('takes no further Ready once the save in flight completes', async () => {
      const { node, clock, storage, stateMachine } = singleLeader();
      expect(storage.saves).toBe(1);
      storage.hold = true;
      const first = outcome(node.propose(bytes('first')));
      clock.runDeferred(); // save #2 (entry 2) in flight
      const second = outcome(node.propose(bytes('second'))); // waits in the core for the next Ready
      clock.runDeferred();
      expect(storage.saves).toBe(2);
      const stopped = node.stop();
      storage.release();
      clock.runDeferred();
      await stopped;
      // The documented contract: "no further turn of the loop once the save in flight (if any) completes".
      expect(storage.saves).toBe(2);
      expect(stateMachine.applied.map((e) => e.index)).toEqual([1]);
      for (const o of await Promise.all([first, second])) expect((o as { error: Error }).error).toBeInstanceOf(ProposalTimeoutError);
    });

    it('new requests reject with ShuttingDownError at once; stop() waits for the save in flight', async () => {
      const { node, clock, storage } = singleLeader();
      storage.hold = true;
      const pending = outcome(node.propose(bytes('p')));
      clock.runDeferred(); // its save is in flight
      let done = false;
      const stopped = node.stop().then(() => (done = true));
      const after = await outcome(node.propose(bytes('late')));
      expect((after as { error: Error }).error).toBeInstanceOf(ShuttingDownError);
      const read = await outcome(node.readBarrier());
      expect((read as { error: Error }).error).toBeInstanceOf(ShuttingDownError);
      expect(done).toBe(false);
      storage.release();
      clock.runDeferred();
      await stopped;
      expect(done).toBe(true);
      // Answered one way or the other, never left hanging.
      expect(await pending).toBeDefined();
    });

    it('pending proposals reject with ProposalTimeoutError when the node stops before they commit', async () => {
      const { node } = singleLeader();
      const pending = outcome(node.propose(bytes('p'))); // its turn is deferred, not yet run
      await node.stop();
      const o = await pending;
      expect((o as { error: Error }).error).toBeInstanceOf(ProposalTimeoutError);
      expect((o as { error: ProposalTimeoutError }).error.index).toBe(2);
    });

    // A SIGTERM while the bootstrap still resolves the cluster (the HTTP API answers before the node starts):
    // the storage is closed right after stop(), so a start that went ahead would fail writing to it.
    it('stop() before start(): start() answers ShuttingDownError, writes nothing and arms no timer', async () => {
      const { node, clock, storage, fatal } = setup(['n1']);
      await node.stop();
      const started: Array<Error | undefined> = [];
      node.start((error) => started.push(error));
      clock.advance(30 * TICK_MS);
      clock.runDeferred();
      expect(started).toEqual([expect.any(ShuttingDownError)]);
      expect({ saves: storage.saves, timers: clock.timerCount, leader: node.isLeader, fatal }).toEqual({ saves: 0, timers: 0, leader: false, fatal: [] });
    });

    it('stop() while the snapshot is being restored: nothing boots, start() answers ShuttingDownError', async () => {
      const { node, clock, storage, stateMachine, fatal } = setup(['n1']);
      const content = new TextEncoder().encode(JSON.stringify(['', 'a']));
      storage.mem.applySnapshot({ metadata: { index: 2, term: 1, confState: { voters: ['n1'] } }, data: content });
      const restoring: Array<() => void> = [];
      stateMachine.restore = (_chunks, done) => restoring.push(() => done());
      const started: Array<Error | undefined> = [];
      node.start((error) => started.push(error));
      expect(restoring).toHaveLength(1);
      await node.stop();
      restoring[0]();
      clock.advance(30 * TICK_MS);
      clock.runDeferred();
      expect(started).toEqual([expect.any(ShuttingDownError)]);
      expect({ saves: storage.saves, timers: clock.timerCount, leader: node.isLeader, fatal }).toEqual({ saves: 0, timers: 0, leader: false, fatal: [] });
    });

    it('stops ticking and ignores messages afterwards', async () => {
      const { node, clock, transport, storage } = setup(['n1', 'n2', 'n3']);
      node.start();
      await node.stop();
      expect(clock.timerCount).toBe(0);
      clock.advance(100 * TICK_MS);
      transport.deliver({ ...newMessage(T.MsgHeartbeat, 'n1', 'n2', 1), commit: 0 });
      clock.runDeferred();
      expect(transport.sent).toEqual([]);
      expect(storage.saves).toBe(0);
      expect(node.leader().lead).toBe(None);
    });
  });

  describe('fatal errors', () => {
    it('a save error calls onFatal exactly once, sets failure, and answers what was pending', async () => {
      const { node, clock, storage, fatal, stateMachine } = singleLeader();
      const disk = new Error('EIO: fsync failed');
      storage.failNext = disk;
      const pending = outcome(node.propose(bytes('lost?')));
      clock.runDeferred();
      expect(fatal).toEqual([disk]);
      expect(node.failure?.message).toContain('EIO: fsync failed');
      const o = await pending;
      // The entry may still be durable and commit elsewhere: outcome unknown.
      expect((o as { error: Error }).error).toBeInstanceOf(ProposalTimeoutError);
      const later = await outcome(node.propose(bytes('again')));
      expect((later as { error: Error }).error).toBe(node.failure);
      clock.advance(100 * TICK_MS);
      expect(fatal).toHaveLength(1);
      expect(storage.saves).toBe(2);
      expect(stateMachine.applied).toHaveLength(1);
    });

    it('a StepLocalMessageError from a peer message is dropped; the node keeps going', () => {
      const { node, clock, transport, fatal } = setup(['n1', 'n2', 'n3']);
      node.start();
      clock.runDeferred();
      transport.deliver(
        newMessage(T.MsgHup, 'n1', 'n2', 1),
        newMessage(T.MsgProp, 'n1', 'n2', 1),
        { ...newMessage(T.MsgHeartbeat, 'n1', 'n2', 1), commit: 0 },
      );
      clock.runDeferred();
      expect(fatal).toEqual([]);
      expect(node.failure).toBeUndefined();
      expect(node.leader().lead).toBe('n2');
      expect(transport.sent.map((m) => [T[m.type], m.to])).toEqual([['MsgHeartbeatResp', 'n2']]);
    });

    it('any other error from step stops the node and calls onFatal once', async () => {
      const { node, clock, transport, storage, fatal } = setup(['n1', 'n2', 'n3']);
      node.start();
      clock.runDeferred();
      const corrupt = new Error('checksum mismatch in segment 3');
      storage.storage.corruption = corrupt;
      transport.deliver({ ...newMessage(T.MsgVote, 'n1', 'n2', 1), index: 5, logTerm: 1 });
      expect(fatal).toEqual([corrupt]);
      expect(node.failure?.message).toContain('checksum mismatch');
      storage.storage.corruption = undefined;
      transport.deliver({ ...newMessage(T.MsgHeartbeat, 'n1', 'n2', 2), commit: 0 });
      clock.advance(100 * TICK_MS);
      expect(fatal).toHaveLength(1);
      expect(transport.sent).toEqual([]);
      const o = await outcome(node.readBarrier({ onFollower: true }));
      expect((o as { error: Error }).error).toBe(node.failure);
    });
  });

  describe('snapshots', () => {
    async function writeAll(node: RaftNode, clock: VirtualClock, values: string[]): Promise<void> {
      for (const v of values) {
        const o = outcome(node.propose(bytes(v)));
        clock.runDeferred();
        expect(await o).toHaveProperty('value');
      }
    }

    it('takes a snapshot every snapshotEntries applied entries, of the state as of its index, and compacts behind it', async () => {
      const s = setup(['n1'], { snapshotEntries: 4, snapshotCatchUpEntries: 1 });
      s.node.start();
      s.clock.runDeferred();
      await writeAll(s.node, s.clock, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
      // Applied: the no-op (1) and a..h (2..9): snapshots at 4 and 8.
      expect(s.storage.snapshots.map((x) => x.metadata.index)).toEqual([4, 8]);
      expect(s.storage.snapshots[0].metadata).toMatchObject({ term: 1, confState: { voters: ['n1'] } });
      expect(JSON.parse(new TextDecoder().decode(s.storage.snapshots[0].content[0]))).toEqual(['', 'a', 'b', 'c']);
      // The log is kept back to the previous snapshot: nothing compacted after the first, then up to 4.
      expect(s.storage.compactions).toEqual([4]);
      expect(s.node.status()).toMatchObject({ snapshotIndex: 8, firstLogIndex: 5, applied: 9 });
    });

    it('keeps at least snapshotCatchUpEntries entries behind the newest snapshot', async () => {
      const s = setup(['n1'], { snapshotEntries: 3, snapshotCatchUpEntries: 5 });
      s.node.start();
      s.clock.runDeferred();
      await writeAll(s.node, s.clock, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k']);
      expect(s.storage.snapshots.map((x) => x.metadata.index)).toEqual([3, 6, 9, 12]);
      // min(previous snapshot, newest - 5): 6 - 5 = 1, then min(6, 9 - 5) = 4, then min(9, 12 - 5) = 7.
      expect(s.storage.compactions).toEqual([1, 4, 7]);
    });

    it('snapshotEntries 0 takes none', async () => {
      const s = setup(['n1'], { snapshotEntries: 0 });
      s.node.start();
      s.clock.runDeferred();
      await writeAll(s.node, s.clock, ['a', 'b', 'c', 'd', 'e']);
      expect(s.storage.snapshots).toEqual([]);
    });

    it('a failed snapshot changes nothing and is tried again a quarter interval later', async () => {
      const s = setup(['n1'], { snapshotEntries: 4, snapshotCatchUpEntries: 0 });
      s.node.start();
      s.clock.runDeferred();
      s.storage.failNextSnapshot = new Error('ENOSPC: no space left on device');
      await writeAll(s.node, s.clock, ['a', 'b', 'c']);
      expect(s.storage.snapshots).toEqual([]);
      expect(s.node.failure).toBeUndefined();
      await writeAll(s.node, s.clock, ['d']);
      expect(s.storage.snapshots.map((x) => x.metadata.index)).toEqual([5]);
    });

    it('restarts from its newest snapshot: the state machine is restored, and only later entries are applied', async () => {
      const first = setup(['n1'], { snapshotEntries: 4, snapshotCatchUpEntries: 0 });
      first.node.start();
      first.clock.runDeferred();
      await writeAll(first.node, first.clock, ['a', 'b', 'c', 'd', 'e']);
      await first.node.stop();
      expect(first.storage.snapshots.map((x) => x.metadata.index)).toEqual([4]);

      const again = setup(['n1'], { snapshotEntries: 4, snapshotCatchUpEntries: 0 });
      again.storage.mem.applySnapshot(first.storage.mem.snapshot());
      again.storage.mem.append(first.storage.mem.entries(5, first.storage.mem.lastIndex() + 1));
      again.storage.mem.setHardState(first.storage.mem.initialState().hardState);
      const started: Array<Error | undefined> = [];
      again.node.start((error) => started.push(error));
      expect(started).toEqual([undefined]);
      expect(again.stateMachine.restores).toBe(1);
      expect(again.node.applied).toBeGreaterThanOrEqual(4);
      again.clock.advance(30 * TICK_MS);
      expect(again.node.isLeader).toBe(true);
      // Entries 5 and 6 (d, e), then the new term's no-op, are applied on top of the restored no-op, a..c.
      expect(again.stateMachine.applied.map((e) => e.index)).toEqual([5, 6, 7]);
      expect(again.stateMachine.state).toEqual(['', 'a', 'b', 'c', 'd', 'e', '']);
    });

    it('a follower installs the leader snapshot: storage first, then the state machine, then later entries', () => {
      const s = followerOfN2();
      const content = new TextEncoder().encode(JSON.stringify(['', 'x', 'y', 'z', 'w', 'v']));
      const snapshot: Snapshot = { metadata: { index: 6, term: 1, confState: { voters: ['n1', 'n2', 'n3'] } }, data: content };
      s.transport.deliver({ ...newMessage(T.MsgSnap, 'n1', 'n2', 1), snapshot });
      s.clock.runDeferred();
      expect(s.storage.installs.map((x) => x.metadata.index)).toEqual([6]);
      expect(s.stateMachine.restores).toBe(1);
      expect(s.stateMachine.state).toEqual(['', 'x', 'y', 'z', 'w', 'v']);
      expect(s.node.applied).toBe(6);
      expect(s.node.status()).toMatchObject({ snapshotIndex: 6, firstLogIndex: 7 });
      const resp = s.transport.sent.filter((m) => m.type === T.MsgAppResp);
      expect(resp.map((m) => [m.to, m.index, m.reject])).toEqual([['n2', 6, false]]);
      s.transport.deliver({
        ...newMessage(T.MsgApp, 'n1', 'n2', 1),
        index: 6,
        logTerm: 1,
        commit: 7,
        entries: [{ index: 7, term: 1, type: 0, data: bytes('u') }],
      });
      s.clock.runDeferred();
      expect(s.stateMachine.applied.map((e) => e.index)).toEqual([7]);
      expect(s.node.applied).toBe(7);
    });

    it("reports the transport's snapshot outcomes to the core (a failure puts the follower back to probing)", () => {
      const s = setup(['n1', 'n2'], { snapshotEntries: 0 });
      s.node.start();
      s.clock.runDeferred();
      s.node.campaign();
      s.clock.runDeferred();
      const vote = s.transport.sent.find((m) => m.type === T.MsgPreVote || m.type === T.MsgVote)!;
      s.transport.deliver({ ...newMessage(vote.type + 1, 'n1', 'n2', vote.term), reject: false });
      s.clock.runDeferred();
      const vote2 = s.transport.sent.find((m) => m.type === T.MsgVote);
      if (vote2) s.transport.deliver({ ...newMessage(T.MsgVoteResp, 'n1', 'n2', vote2.term), reject: false });
      s.clock.runDeferred();
      expect(s.node.isLeader).toBe(true);
      expect(s.transport.snapshotStatus).toBeDefined();
      // No snapshot is in flight: an outcome for n2 changes nothing and breaks nothing.
      s.transport.snapshotStatus!('n2', true);
      s.clock.runDeferred();
      expect(s.node.failure).toBeUndefined();
      expect(s.node.raftStatus().progress.n2.state).not.toBe('Snapshot');
    });
  });

  it('status() names the node and its leader', () => {
    const { node } = singleLeader();
    expect(node.status()).toMatchObject({ id: 'n1', name: 'node-1', state: StateType.Leader, lead: 'n1', leaderName: 'node-1', applied: 1, peers: [] });
  });
});

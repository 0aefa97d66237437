/**
 * RaftNode on a disk that refuses writes (StorageFullError from save/install): the node freezes as a paused
 * process would (no ticks acted on, peers' messages dropped, new writes and the linearizable reads it would
 * serve itself refused at once, waiting reads failed), a follower still redirects to its leader, proposals
 * already in the held Ready keep waiting (and time out as usual), one warning for the episode; once the
 * held save goes through, it takes part again by itself.
 */
import { newMessage } from './core/message';
import { EntryType, MessageType as T, StateType } from './core/types';
import { seededRandom } from '../../../test/support/raft-test-util';
import { isStorageFull, NotLeaderError, ProposalTimeoutError, StorageFullError } from './errors';
import { NodeLogger } from './ports';
import { RaftNode } from './raft-node';
import { RaftNodeOptions, RaftNodePorts } from './raft-node-options';
import { STORAGE_RETRY_MAX_MS } from './ready-loop';
import { FakeRaftStorage, outcome, RecordingStateMachine, RecordingTransport, VirtualClock } from './testing/node-fakes';

const TICK_MS = 100;
const REQUEST_TIMEOUT_MS = 5000;
const bytes = (s: string) => new TextEncoder().encode(s);
const ENOSPC = () => new StorageFullError("ENOSPC: no space left on device, write '/var/lib/raft-kv/wal/0000000000000001.wal'", 'ENOSPC');

class NodeWithAddresses extends RaftNode {
  constructor(options: RaftNodeOptions, ports: RaftNodePorts) {
    super(options, ports);
    const members = options.members ?? [];
    const addresses = Object.fromEntries(members.map((id) => [id, `http://${id}.test:3000`]));
    this.useIdentity({ clusterId: 'c', nodeId: options.id, initialVoters: members, addresses });
  }
}

function setup(members: string[]) {
  const clock = new VirtualClock();
  const storage = new FakeRaftStorage(clock);
  const transport = new RecordingTransport();
  const stateMachine = new RecordingStateMachine();
  const warnings: string[] = [];
  const lines: string[] = [];
  const logger: NodeLogger = { debug: () => undefined, log: (m) => lines.push(m), warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
  const fatal: Error[] = [];
  const node = new NodeWithAddresses(
    {
      id: 'n1',
      name: 'node-1',
      members,
      walDir: '/var/lib/raft-kv/wal',
      tickMs: TICK_MS,
      electionTick: 10,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      random: seededRandom(5),
      onFatal: (e) => fatal.push(e),
    },
    { storage, transport, stateMachine, clock, logger },
  );
  node.start();
  clock.runDeferred();
  return { clock, storage, transport, stateMachine, node, warnings, lines, fatal };
}

/** A single-member leader whose disk is full: the save of a proposal (`x`) was refused and is held. */
function frozenLeader() {
  const s = setup(['n1']);
  expect(s.node.isLeader).toBe(true);
  s.storage.diskFull = ENOSPC();
  const held = outcome(s.node.propose(bytes('x')));
  s.clock.runDeferred();
  return { ...s, held };
}

/** A follower of n2 (term 1) whose disk refused the entry n2 sent it. */
function frozenFollower() {
  const s = setup(['n1', 'n2', 'n3']);
  s.transport.deliver({ ...newMessage(T.MsgHeartbeat, 'n1', 'n2', 1), commit: 0 });
  s.clock.runDeferred();
  s.transport.sent.length = 0;
  s.storage.diskFull = ENOSPC();
  const entry = { index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(0) };
  s.transport.deliver({ ...newMessage(T.MsgApp, 'n1', 'n2', 1), index: 0, logTerm: 0, entries: [entry], commit: 0 });
  s.clock.runDeferred();
  return s;
}

describe('RaftNode on a full disk', () => {
  it('a frozen leader refuses new writes at once with StorageFullError, proposing nothing; status shows why', async () => {
    const { node, storage, clock } = frozenLeader();
    expect(node.status().storageFull).toEqual({ reason: expect.stringContaining('ENOSPC'), code: 'ENOSPC', sinceMs: 0 });
    const lastIndex = node.raftStatus().lastIndex;
    const refused = await outcome(node.propose(bytes('y')));
    const error = (refused as { error: Error }).error;
    expect(isStorageFull(error)).toBe(true);
    expect(error.message).toContain('no space left on device');
    expect(node.raftStatus().lastIndex).toBe(lastIndex);
    const change = await outcome(node.changeMembership({ op: 'remove', nodeId: 'n2' }));
    expect(isStorageFull((change as { error: Error }).error)).toBe(true);
    clock.advance(1000);
    expect(node.status().storageFull?.sinceMs).toBe(1000);
    expect(storage.saves).toBeGreaterThan(2); // retried meanwhile
  });

  it('refuses linearizable reads at once and fails those waiting; stale state is still there to read', async () => {
    const s = setup(['n1']);
    s.node.propose(bytes('a'));
    s.clock.runDeferred();
    s.storage.diskFull = ENOSPC();
    // A read and a write in the same turn: the read's ReadState rides in the Ready whose save is refused.
    const write = outcome(s.node.propose(bytes('b')));
    const waiting = outcome(s.node.readBarrier());
    s.clock.runDeferred();
    expect(isStorageFull(((await waiting) as { error: Error }).error)).toBe(true);
    const refused = await outcome(s.node.readBarrier());
    expect(isStorageFull((refused as { error: Error }).error)).toBe(true);
    expect(s.stateMachine.state).toEqual(['', 'a']);
    s.storage.diskFull = undefined;
    s.clock.advance(STORAGE_RETRY_MAX_MS);
    expect(await write).toEqual({ value: { index: 3, result: 'applied b@3' } });
  });

  it('the proposal in the held Ready waits and commits once space returns; writes are taken again', async () => {
    const { node, storage, clock, held, warnings, lines } = frozenLeader();
    await outcome(node.propose(bytes('refused')));
    clock.advance(3000);
    storage.diskFull = undefined;
    clock.advance(STORAGE_RETRY_MAX_MS);
    expect(await held).toEqual({ value: { index: 2, result: 'applied x@2' } });
    expect(node.status().storageFull).toBeUndefined();
    const next = outcome(node.propose(bytes('y')));
    clock.runDeferred();
    expect(await next).toEqual({ value: { index: 3, result: 'applied y@3' } });
    // One warning for the whole episode (with the reason and WAL_DIR), not one per retry; one line at its end.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/node-1: the disk refuses writes \(ENOSPC: no space left on device.*WAL_DIR \/var\/lib\/raft-kv\/wal\)/);
    expect(lines.filter((l) => /disk takes writes again/.test(l))).toEqual([
      expect.stringMatching(/after \d+\.\d s \(1 writes refused, 0 peer messages dropped meanwhile\)/),
    ]);
  });

  it('a proposal held in the frozen Ready times out as usual (outcome unknown)', async () => {
    const { clock, held } = frozenLeader();
    clock.advance(REQUEST_TIMEOUT_MS + TICK_MS);
    expect((await held as { error: Error }).error).toBeInstanceOf(ProposalTimeoutError);
  });

  it('a frozen follower drops peer messages, never campaigns, still redirects to its leader, refuses reads it would serve', async () => {
    const { node, clock, transport } = frozenFollower();
    expect(node.status().storageFull).toBeDefined();
    // Many election timeouts pass: a node that cannot write its vote starts no election.
    clock.advance(100 * TICK_MS);
    transport.deliver({ ...newMessage(T.MsgHeartbeat, 'n1', 'n2', 1), commit: 0 });
    clock.runDeferred();
    expect(transport.sent).toEqual([]);
    expect(node.raftStatus()).toMatchObject({ term: 1, raftState: StateType.Follower, lead: 'n2' });
    // Writes and reads go to the leader, whose disk may well have space.
    const write = (await outcome(node.propose(bytes('x')))) as { error: NotLeaderError };
    expect(write.error).toBeInstanceOf(NotLeaderError);
    expect(write.error.leaderUrl).toBe('http://n2.test:3000');
    expect((await outcome(node.readBarrier()) as { error: Error }).error).toBeInstanceOf(NotLeaderError);
    // A read it would serve itself (forwarded, then waited for here) is refused.
    expect(isStorageFull((await outcome(node.readBarrier({ onFollower: true })) as { error: Error }).error)).toBe(true);
  });

  it('once space returns, a follower sends the held answer and takes part again', () => {
    const { node, clock, transport, storage, lines } = frozenFollower();
    transport.deliver({ ...newMessage(T.MsgHeartbeat, 'n1', 'n2', 1), commit: 0 });
    clock.advance(TICK_MS);
    storage.diskFull = undefined;
    clock.advance(STORAGE_RETRY_MAX_MS);
    expect(transport.sent.map((m) => [T[m.type], m.to, m.index])).toEqual([['MsgAppResp', 'n2', 1]]);
    expect(storage.mem.lastIndex()).toBe(1);
    expect(node.status().storageFull).toBeUndefined();
    expect(lines.some((l) => /1 peer messages dropped/.test(l))).toBe(true);
    // Its election timer runs again: with no word from the leader, it campaigns.
    clock.advance(30 * TICK_MS);
    expect(transport.sent.some((m) => m.type === T.MsgPreVote)).toBe(true);
  });

  it('stop() does not wait for space to return, and answers what waits', async () => {
    const { node, clock, storage, held, fatal } = frozenLeader();
    const stopped = node.stop();
    clock.runDeferred();
    await stopped;
    expect((await held as { error: Error }).error).toBeInstanceOf(ProposalTimeoutError);
    const saves = storage.saves;
    clock.advance(10_000);
    expect(storage.saves).toBe(saves);
    expect(fatal).toEqual([]);
  });

  it('stop({ transferLeadership }) on a frozen leader of three does not wait for a handover it could not make', async () => {
    const s = setup(['n1', 'n2', 'n3']);
    s.node.campaign();
    s.clock.runDeferred();
    const vote = s.transport.sent.find((m) => m.type === T.MsgPreVote || m.type === T.MsgVote)!;
    s.transport.deliver({ ...newMessage(vote.type + 1, 'n1', 'n2', vote.term), reject: false });
    s.clock.runDeferred();
    const vote2 = s.transport.sent.find((m) => m.type === T.MsgVote);
    if (vote2) s.transport.deliver({ ...newMessage(T.MsgVoteResp, 'n1', 'n2', vote2.term), reject: false });
    s.clock.runDeferred();
    expect(s.node.isLeader).toBe(true);
    s.storage.diskFull = ENOSPC();
    s.node.propose(bytes('x')).catch(() => undefined);
    s.clock.runDeferred();
    expect(s.node.status().storageFull).toBeDefined();
    s.transport.sent.length = 0;
    let done = false;
    const stopping = s.node.stop({ transferLeadership: true }).then(() => (done = true));
    s.clock.runDeferred();
    await stopping;
    expect(done).toBe(true);
    expect(s.clock.now()).toBe(0);
    expect(s.transport.sent.filter((m) => m.type === T.MsgTimeoutNow)).toEqual([]);
  });

  it('an install refused for a full disk freezes the node too', () => {
    const s = setup(['n1', 'n2', 'n3']);
    s.storage.diskFull = ENOSPC();
    const snapshot = { metadata: { index: 5, term: 1, confState: { voters: ['n1', 'n2', 'n3'] } }, data: bytes('["","a","b","c","d"]') };
    s.transport.deliver({ ...newMessage(T.MsgSnap, 'n1', 'n2', 1), snapshot });
    s.clock.runDeferred();
    expect(s.node.status().storageFull?.code).toBe('ENOSPC');
    s.storage.diskFull = undefined;
    s.clock.advance(STORAGE_RETRY_MAX_MS);
    expect(s.node.status().storageFull).toBeUndefined();
    expect(s.storage.installs.map((i) => i.metadata.index)).toEqual([5]);
    expect(s.node.applied).toBe(5);
  });
});

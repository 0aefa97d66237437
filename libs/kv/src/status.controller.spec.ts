/**
 * GET /status while the disk is full: three fields appear (and only then), so that an answer from a node
 * whose disk takes writes is exactly as before.
 */
import { NodeStatus, RaftNodeService, StateType } from '@app/consensus';
import { StatusController } from './status.controller';
import type { KvStateMachine } from './kv-state-machine';

function controller(storageFull?: NodeStatus['storageFull']): StatusController {
  const status: NodeStatus = {
    id: 'node1',
    name: 'node1',
    state: StateType.Follower,
    term: 4,
    lead: 'node2',
    leaderName: 'node2',
    commit: 9,
    applied: 9,
    lastIndex: 9,
    snapshotIndex: 0,
    firstLogIndex: 1,
    peers: [],
    storageFull,
  };
  const members = [
    { nodeId: 'node1', url: 'http://localhost:3001' },
    { nodeId: 'node2', url: 'http://localhost:3002' },
  ];
  const raft = { status: () => status, members: () => ({ members }) } as unknown as RaftNodeService;
  const stateMachine = { dataBytes: 0 } as unknown as KvStateMachine;
  return new StatusController(raft, stateMachine, { maxKeyBytes: 1024, maxValueBytes: 1024 });
}

describe('GET /status', () => {
  it('has no storage fields while the disk takes writes', () => {
    const body = controller().status();
    expect(Object.keys(body).filter((k) => k.startsWith('storage'))).toEqual([]);
    expect(body).toMatchObject({ state: 'FOLLOWER', leader: 'node2', leaderUrl: 'http://localhost:3002' });
  });

  it("shows storage \"full\", the disk's error and since when while the node is frozen", () => {
    const body = controller({ reason: 'ENOSPC: no space left on device', code: 'ENOSPC', sinceMs: 5300 }).status();
    expect(body).toMatchObject({ storage: 'full', storageError: 'ENOSPC: no space left on device', storageFullForMs: 5300, state: 'FOLLOWER' });
  });
});

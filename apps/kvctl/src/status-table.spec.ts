import { ClusterView, NodeStatus } from './kv-client';
import { formatStatusTable } from './status-table';

const status = (nodeId: string, state: string, term: number, index: number): NodeStatus => ({
  state,
  term,
  leader: 'node1',
  isLeader: state === 'LEADER',
  nodeId,
  url: `http://localhost:300${nodeId.slice(-1)}`,
  leaderUrl: 'http://localhost:3001',
  commitIndex: index,
  appliedIndex: index,
  lastLogIndex: index,
});

describe('formatStatusTable', () => {
  it('aligns one row per node, numbers to the right', () => {
    const view: ClusterView = {
      leader: 'node1',
      term: 12,
      nodes: [
        { endpoint: 'http://localhost:3001', nodeId: 'node1', status: status('node1', 'LEADER', 12, 1042) },
        { endpoint: 'http://localhost:3002', nodeId: 'node2', status: status('node2', 'FOLLOWER', 12, 7) },
      ],
    };
    expect(formatStatusTable(view)).toBe(
      [
        'NODE   URL                    STATE     TERM  LEADER  COMMIT  APPLIED',
        'node1  http://localhost:3001  LEADER      12  node1     1042     1042',
        'node2  http://localhost:3002  FOLLOWER    12  node1        7        7',
        '',
      ].join('\n'),
    );
  });

  it('marks nodes that did not answer, says why, and says when there is no leader', () => {
    const view: ClusterView = {
      leader: null,
      term: null,
      nodes: [
        { endpoint: 'http://localhost:3001', nodeId: 'node1', status: { ...status('node1', 'PRE_CANDIDATE', 3, 9), leader: null } },
        { endpoint: 'http://localhost:3002', nodeId: 'node2', error: 'connection refused' },
        { endpoint: 'http://localhost:3003', error: 'no answer within 2000 ms' },
      ],
    };
    expect(formatStatusTable(view)).toBe(
      [
        'NODE   URL                    STATE          TERM  LEADER  COMMIT  APPLIED',
        'node1  http://localhost:3001  PRE_CANDIDATE     3  -            9        9',
        'node2  http://localhost:3002  UNREACHABLE       -  -            -        -',
        '?      http://localhost:3003  UNREACHABLE       -  -            -        -',
        '',
        'node2 (http://localhost:3002): connection refused',
        'http://localhost:3003: no answer within 2000 ms',
        '',
        'no leader: the cluster cannot serve writes or linearizable reads right now',
        '',
      ].join('\n'),
    );
  });
});

/** describeStatus: the core's Status as GET /status shows it. */
import { ProgressStatus, Status } from './core/raw-node';
import { StateType } from './core/types';
import { describeStatus, StatusSources } from './node-status';

function progress(match: number, next: number, state: ProgressStatus['state']): ProgressStatus {
  return { match, next, state, recentActive: true, inflight: 0, isLearner: false };
}

const leaderStatus: Status = {
  id: 'http://a',
  term: 5,
  vote: 'http://a',
  commit: 40,
  lead: 'http://a',
  raftState: StateType.Leader,
  applied: 38,
  lastIndex: 42,
  leadTransferee: '',
  progress: {
    'http://a': progress(42, 43, 'Replicate'),
    'http://b': progress(40, 43, 'Replicate'),
    'http://c': progress(7, 8, 'Probe'),
  },
};

function sources(over: Partial<StatusSources> = {}): StatusSources {
  return {
    name: 'node-a',
    applied: 39,
    storage: {
      firstIndex: () => 21,
      snapshot: () => ({ metadata: { index: 30, term: 4, confState: { voters: [] } }, data: new Uint8Array(0) }),
    },
    leaderName: 'node-a',
    now: 5000,
    lastContact: new Map([
      ['http://b', 4750],
      ['http://a', 1],
    ]),
    ...over,
  };
}

describe('describeStatus', () => {
  it('a leader: the core view, named, with one entry per peer (not itself) and contact ages', () => {
    expect(describeStatus(leaderStatus, sources())).toEqual({
      id: 'http://a',
      name: 'node-a',
      state: StateType.Leader,
      term: 5,
      lead: 'http://a',
      leaderName: 'node-a',
      commit: 40,
      applied: 39,
      lastIndex: 42,
      snapshotIndex: 30,
      firstLogIndex: 21,
      peers: [
        { id: 'http://b', name: 'http://b', match: 40, next: 43, state: 'Replicate', lastContactMs: 250 },
        { id: 'http://c', name: 'http://c', match: 7, next: 8, state: 'Probe', lastContactMs: undefined },
      ],
    });
  });

  it.each([
    { name: 'applied comes from the node, not the core', over: { applied: 12 }, key: 'applied', want: 12 },
    { name: 'the leader name is passed through', over: { leaderName: 'node-z' }, key: 'leaderName', want: 'node-z' },
    { name: 'an unknown leader name stays undefined', over: { leaderName: undefined }, key: 'leaderName', want: undefined },
    { name: 'the node name', over: { name: 'other' }, key: 'name', want: 'other' },
  ])('$name', ({ over, key, want }) => {
    expect(describeStatus(leaderStatus, sources(over))[key as keyof ReturnType<typeof describeStatus>]).toEqual(want);
  });

  it.each([
    { now: 4750, want: 0 },
    { now: 4751, want: 1 },
    { now: 14750, want: 10000 },
  ])('lastContactMs is now - last contact ($now → $want)', ({ now, want }) => {
    const peers = describeStatus(leaderStatus, sources({ now })).peers;
    expect(peers.find((p) => p.id === 'http://b')?.lastContactMs).toBe(want);
  });

  it('a follower has no peers (the core reports progress only on the leader)', () => {
    const follower: Status = { ...leaderStatus, raftState: StateType.Follower, lead: 'http://b', vote: 'http://b', progress: {} };
    const s = describeStatus(follower, sources({ leaderName: 'node-b' }));
    expect(s).toMatchObject({ state: StateType.Follower, lead: 'http://b', leaderName: 'node-b', peers: [] });
  });
});

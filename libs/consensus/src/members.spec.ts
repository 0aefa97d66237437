import { encodeConfChange } from './core/confchange';
import { Status } from './core/raw-node';
import { ConfChange, ConfChangeType, ConfState, EntryType, StateType } from './core/types';
import { Members, PROMOTE_MAX_LAG } from './members';
import { MembershipChangeRefusedError } from './membership';
import { silentLogger } from './raft-node-options';

/** A directory over a configuration the test controls (applyConfChange: the core's simple semantics). */
function setup(conf: ConfState = { voters: ['a', 'b', 'c'] }) {
  let cs: ConfState = { voters: [...conf.voters], learners: [...(conf.learners ?? [])] };
  const published: Array<Map<string, string>> = [];
  const removed: number[] = [];
  const members = new Members({
    self: 'a',
    confState: () => ({ voters: [...cs.voters], ...(cs.learners?.length ? { learners: [...cs.learners] } : {}) }),
    applyConfChange: (cc: ConfChange) => {
      const voters = cs.voters.filter((id) => id !== cc.nodeId);
      const learners = (cs.learners ?? []).filter((id) => id !== cc.nodeId);
      if (cc.type === ConfChangeType.AddNode) voters.push(cc.nodeId);
      if (cc.type === ConfChangeType.AddLearnerNode) learners.push(cc.nodeId);
      cs = { voters, learners };
      return cs;
    },
    transport: { setPeers: (peers) => published.push(new Map(peers)) },
    logger: silentLogger,
    onRemoved: () => removed.push(1),
  });
  members.useIdentity({ addresses: { a: 'http://a:1', b: 'http://b:1', c: 'http://c:1' } });
  return { members, published, removed };
}

const entry = (index: number, cc: ConfChange) => ({ index, term: 2, type: EntryType.ConfChange, data: encodeConfChange(cc) });

function leaderStatus(progress: Status['progress'] = {}): Status {
  return {
    id: 'a',
    term: 2,
    vote: 'a',
    commit: 5000,
    lead: 'a',
    raftState: StateType.Leader,
    applied: 5000,
    lastIndex: 5000,
    leadTransferee: '',
    progress,
  };
}

const pr = (match: number, state: 'Probe' | 'Replicate' | 'Snapshot' = 'Replicate', isLearner = false) => ({
  match,
  next: match + 1,
  state,
  recentActive: true,
  inflight: 0,
  isLearner,
});

function refusal(run: () => unknown): MembershipChangeRefusedError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(MembershipChangeRefusedError);
    return error as MembershipChangeRefusedError;
  }
  throw new Error('expected a refusal');
}

describe('Members', () => {
  it('hands the transport every other member with its URL, once per change', () => {
    const { members, published } = setup();
    members.publish();
    members.publish();
    expect(published).toEqual([
      new Map([
        ['b', 'http://b:1'],
        ['c', 'http://c:1'],
      ]),
    ]);
  });

  it('applies an added learner with its URL, then its removal, forgetting the URL', () => {
    const { members, published } = setup();
    members.apply(entry(7, { type: ConfChangeType.AddLearnerNode, nodeId: 'd', context: 'http://d:9' }));
    expect(published.at(-1)?.get('d')).toBe('http://d:9');
    expect(members.url('d')).toBe('http://d:9');
    members.apply(entry(8, { type: ConfChangeType.RemoveNode, nodeId: 'd' }));
    expect(published.at(-1)?.has('d')).toBe(false);
    expect(members.url('d')).toBeUndefined();
  });

  it('tells the node when the change applied removes this node itself', () => {
    const { members, removed } = setup();
    members.apply(entry(7, { type: ConfChangeType.RemoveNode, nodeId: 'b' }));
    expect(removed).toEqual([]);
    members.apply(entry(8, { type: ConfChangeType.RemoveNode, nodeId: 'a' }));
    expect(removed).toEqual([1]);
  });

  it('a node that joined ignores the removal of an earlier member of its name (before its own addition)', () => {
    const { members, removed } = setup();
    members.useIdentity({ addresses: {}, joinedAt: 9 });
    members.apply(entry(6, { type: ConfChangeType.RemoveNode, nodeId: 'a' }));
    members.apply(entry(9, { type: ConfChangeType.AddLearnerNode, nodeId: 'a', context: 'http://a:2' }));
    expect(removed).toEqual([]);
    members.apply(entry(12, { type: ConfChangeType.RemoveNode, nodeId: 'a' }));
    expect(removed).toEqual([1]);
  });

  it('skips an undecodable change without touching the configuration', () => {
    const { members, published } = setup();
    members.publish();
    members.apply({ index: 7, term: 2, type: EntryType.ConfChange, data: new Uint8Array([1, 2, 3]) });
    expect(published).toHaveLength(1);
  });

  it('records the addresses in snapshots, and takes from a snapshot only the addresses it lacks', () => {
    const { members } = setup();
    expect(members.snapshotConfState()).toEqual({ voters: ['a', 'b', 'c'], addresses: { a: 'http://a:1', b: 'http://b:1', c: 'http://c:1' } });
    // The core's configuration after the snapshot: a, b, e (c was removed meanwhile, e added).
    members.apply(entry(7, { type: ConfChangeType.RemoveNode, nodeId: 'c' }));
    members.apply(entry(8, { type: ConfChangeType.AddNode, nodeId: 'e' }));
    members.restored({ b: 'http://127.0.0.1:2', e: 'http://e:5', x: 'http://x:1' });
    expect(members.url('b')).toBe('http://b:1');
    expect(members.url('e')).toBe('http://e:5');
    // c is no member of the configuration (removed), x is no member at all.
    expect(members.url('c')).toBeUndefined();
    expect(members.url('x')).toBeUndefined();
  });

  it('plans an add as a learner or a voter, refusing an id or a URL already in use', () => {
    const { members } = setup();
    const status = leaderStatus();
    expect(members.plan({ op: 'add', nodeId: 'd', url: 'http://d:1', learner: true }, status, () => true)).toEqual({
      type: ConfChangeType.AddLearnerNode,
      nodeId: 'd',
      context: 'http://d:1',
    });
    expect(members.plan({ op: 'add', nodeId: 'd', url: 'http://d:1', learner: false }, status, () => true).type).toBe(ConfChangeType.AddNode);
    expect(refusal(() => members.plan({ op: 'add', nodeId: 'b', url: 'http://x:1', learner: true }, status, () => true)).message).toMatch(
      /b is already a member/,
    );
    expect(refusal(() => members.plan({ op: 'add', nodeId: 'd', url: 'http://c:1', learner: true }, status, () => true)).message).toMatch(
      /already the URL of member c/,
    );
  });

  it('promotes a learner only once it replicates within the lag bound', () => {
    const { members } = setup({ voters: ['a', 'b', 'c'], learners: ['d'] });
    members.apply(entry(3, { type: ConfChangeType.AddLearnerNode, nodeId: 'd', context: 'http://d:1' }));
    const promote = { op: 'promote' as const, nodeId: 'd' };
    expect(refusal(() => members.plan(promote, leaderStatus({ d: pr(4000, 'Probe', true) }), () => true)).message).toMatch(/not caught up/);
    const behind = 5000 - PROMOTE_MAX_LAG - 1;
    expect(refusal(() => members.plan(promote, leaderStatus({ d: pr(behind, 'Replicate', true) }), () => true)).message).toMatch(
      /1001 entries behind/,
    );
    expect(members.plan(promote, leaderStatus({ d: pr(5000 - PROMOTE_MAX_LAG, 'Replicate', true) }), () => true)).toEqual({
      type: ConfChangeType.AddNode,
      nodeId: 'd',
      context: 'http://d:1',
    });
    expect(refusal(() => members.plan({ op: 'promote', nodeId: 'b' }, leaderStatus(), () => true)).message).toMatch(/already a voter/);
  });

  it('refuses to remove a voter when the reachable voters left could not form a quorum, and unknown members with 404', () => {
    const { members } = setup();
    const remove = (nodeId: string, reachable: string[]) => () => members.plan({ op: 'remove', nodeId }, leaderStatus(), (id) => reachable.includes(id));
    // a, b, c: removing c leaves a (this node) and b; b unreachable → 1 of 2, a quorum needs 2.
    expect(refusal(remove('c', [])).message).toMatch(/leave 2 voters of which 1 are reachable; a quorum needs 2/);
    expect(remove('c', ['b'])()).toEqual({ type: ConfChangeType.RemoveNode, nodeId: 'c' });
    // Removing the unreachable member itself is what replacing a dead node needs.
    expect(remove('b', ['c'])()).toEqual({ type: ConfChangeType.RemoveNode, nodeId: 'b' });
    const unknown = refusal(remove('zz', ['b', 'c']));
    expect(unknown.status).toBe(404);
  });

  it('refuses to go from two voters to one (the one left might never learn the removal committed)', () => {
    const { members } = setup({ voters: ['a', 'b'], learners: ['c'] });
    expect(refusal(() => members.plan({ op: 'remove', nodeId: 'a' }, leaderStatus(), () => true)).message).toMatch(
      /would leave b as the only voter.*add a member first/,
    );
    expect(refusal(() => members.plan({ op: 'remove', nodeId: 'b' }, leaderStatus(), () => true)).message).toMatch(/would leave a as the only voter/);
    // A learner goes at any time.
    expect(members.plan({ op: 'remove', nodeId: 'c' }, leaderStatus(), () => true)).toEqual({ type: ConfChangeType.RemoveNode, nodeId: 'c' });
  });

  it('views the members sorted, with the leader\'s match and contact ages', () => {
    const { members } = setup({ voters: ['a', 'b', 'c'], learners: ['d'] });
    const view = members.view(leaderStatus({ a: pr(5000), b: pr(4990), c: pr(10, 'Probe'), d: pr(7, 'Probe', true) }), new Map([['b', 900]]), 1000);
    expect(view).toEqual({
      leader: 'a',
      members: [
        { nodeId: 'a', url: 'http://a:1', role: 'voter', self: true, match: 5000 },
        { nodeId: 'b', url: 'http://b:1', role: 'voter', self: false, match: 4990, lastContactMs: 100 },
        { nodeId: 'c', url: 'http://c:1', role: 'voter', self: false, match: 10 },
        { nodeId: 'd', url: undefined, role: 'learner', self: false, match: 7 },
      ],
    });
  });

  describe('client URLs (PEER_PORT: a member reached by clients elsewhere than by its peers)', () => {
    /** A directory whose transport announces client URLs the test gives it, as HttpPeerTransport does. */
    function withAnnouncements() {
      let announce: (id: string, url: string) => void = () => undefined;
      const published: Array<Map<string, string>> = [];
      let cs: ConfState = { voters: ['a', 'b', 'c'] };
      const members = new Members({
        self: 'a',
        confState: () => cs,
        applyConfChange: (cc: ConfChange) => {
          const voters = cs.voters.filter((id) => id !== cc.nodeId);
          cs = { voters: cc.type === ConfChangeType.AddNode ? [...voters, cc.nodeId] : voters };
          return cs;
        },
        transport: { setPeers: (peers) => published.push(new Map(peers)), onClientUrl: (callback) => (announce = callback) },
        logger: silentLogger,
        onRemoved: () => undefined,
      });
      members.useIdentity({ addresses: { a: 'http://a:4001', b: 'http://b:4002', c: 'http://c:4003' } });
      return { members, published, announce: (id: string, url: string) => announce(id, url) };
    }

    it('sends clients to the announced client URL, and to the member URL of a member that announced none', () => {
      const { members, announce } = withAnnouncements();
      expect(members.url('b')).toBe('http://b:4002');
      announce('b', 'http://b:3002');
      expect(members.url('b')).toBe('http://b:3002');
      expect(members.url('c')).toBe('http://c:4003');
      expect(members.url('a')).toBe('http://a:4001');
      expect(members.url('zz')).toBeUndefined();
    });

    it("sends no client to a member's URL once this node has a client URL of its own (its peers' member URLs are peer ports)", () => {
      const { members, announce } = withAnnouncements();
      announce('a', 'http://a:3001');
      expect(members.url('a')).toBe('http://a:3001');
      expect(members.url('c')).toBeUndefined();
      expect(members.view(leaderStatus(), new Map(), 0).members.find((m) => m.nodeId === 'c')).toMatchObject({ url: 'http://c:4003', clientUrl: undefined });
      announce('c', 'http://c:3003');
      expect(members.url('c')).toBe('http://c:3003');
    });

    it('views url and peerUrl as the member URL and clientUrl as where clients go, once this node has two URLs', () => {
      const { members, announce } = withAnnouncements();
      announce('b', 'http://b:3002');
      // Without a client URL of its own (no PEER_PORT here), the view is unchanged: url is both.
      expect(members.view(leaderStatus(), new Map(), 0).members.find((m) => m.nodeId === 'b')).toEqual({
        nodeId: 'b',
        url: 'http://b:4002',
        role: 'voter',
        self: false,
      });
      announce('a', 'http://a:3001');
      const view = members.view(leaderStatus(), new Map(), 0).members;
      expect(view.find((m) => m.nodeId === 'a')).toMatchObject({ url: 'http://a:4001', peerUrl: 'http://a:4001', clientUrl: 'http://a:3001' });
      expect(view.find((m) => m.nodeId === 'b')).toMatchObject({ url: 'http://b:4002', peerUrl: 'http://b:4002', clientUrl: 'http://b:3002' });
      expect(view.find((m) => m.nodeId === 'c')).toEqual({ nodeId: 'c', url: 'http://c:4003', peerUrl: 'http://c:4003', clientUrl: undefined, role: 'voter', self: false });
    });

    it('keeps client URLs out of what it hands the transport and records in snapshots', () => {
      const { members, published, announce } = withAnnouncements();
      announce('b', 'http://b:3002');
      members.publish();
      expect(published.at(-1)).toEqual(new Map([['b', 'http://b:4002'], ['c', 'http://c:4003']]));
      expect(members.snapshotConfState().addresses).toEqual({ a: 'http://a:4001', b: 'http://b:4002', c: 'http://c:4003' });
    });

    it('forgets the client URL of a removed member (its NODE_ID may join again elsewhere)', () => {
      const { members, announce } = withAnnouncements();
      announce('c', 'http://c:3003');
      members.apply(entry(10, { type: ConfChangeType.RemoveNode, nodeId: 'c' }));
      expect(members.url('c')).toBeUndefined();
      members.apply(entry(11, { type: ConfChangeType.AddNode, nodeId: 'c', context: 'http://c2:4003' }));
      expect(members.url('c')).toBe('http://c2:4003');
    });
  });
});

import { MembersList, MemberView } from './kv-client';
import { ExitCode } from './kvctl-error';
import { formatMembersTable } from './members-table';
import { fakeNodesPerTest, runKvctl as kvctl } from '../../../test/support/kvctl-fake-node';

/** `kvctl member ...` end to end against fake nodes: the command line, the requests, the output, the exit code. */

const node = fakeNodesPerTest();

const member = (i: number, extra: Partial<MemberView> = {}): MemberView => ({
  nodeId: `node${i}`,
  url: `http://localhost:300${i}`,
  role: 'voter',
  self: false,
  ...extra,
});
const leaderView = {
  clusterId: 'c0ffee',
  leader: 'node1',
  members: [member(1, { self: true, match: 57 }), member(2, { match: 57, lastContactMs: 12 }), member(4, { role: 'learner', match: 50, lastContactMs: 3 })],
};
const added = { clusterId: 'c0ffee', index: 57, initialVoters: ['node1', 'node2', 'node3'], member: member(4, { role: 'learner' }), members: [] };

describe('kvctl member list', () => {
  it("prints the leader's view as a table", async () => {
    const leader = await node(() => ({ status: 200, body: leaderView }));
    const { code, stdout } = await kvctl([leader.url], 'member', 'list');
    expect(code).toBe(ExitCode.Ok);
    expect(stdout).toBe(
      [
        'NODE   URL                    ROLE           MATCH  LAST CONTACT',
        'node1  http://localhost:3001  voter, leader     57  -',
        'node2  http://localhost:3002  voter             57  12 ms',
        'node4  http://localhost:3004  learner           50  3 ms',
        '',
        'cluster c0ffee: 2 voters, 1 learner; leader node1',
        '',
      ].join('\n'),
    );
    expect(leader.requests.map((r) => [r.method, r.url])).toEqual([['GET', '/cluster/members']]);
  });

  it("asks the leader a follower names, for its view (match and last contact); --json prints it", async () => {
    const leader = await node(() => ({ status: 200, body: { ...leaderView, members: leaderView.members.map((m) => ({ ...m, url: undefined })) } }));
    const followerView = { clusterId: 'c0ffee', leader: 'node1', members: [member(1, { url: leader.url }), member(2, { self: true })] };
    const follower = await node(() => ({ status: 200, body: followerView }));
    const { code, stdout } = await kvctl([follower.url], '--json', 'member', 'list');
    expect(code).toBe(ExitCode.Ok);
    expect(JSON.parse(stdout)).toMatchObject({ leader: 'node1', answeredBy: leader.url, members: [{ match: 57 }, { match: 57 }, { match: 50 }] });
  });

  it("keeps a follower's view when its leader cannot be reached from here, and says whose view it is", async () => {
    const view = { clusterId: 'c0ffee', leader: 'node1', members: [member(1, { url: 'http://node1.invalid:3000' }), member(2, { self: true })] };
    const follower = await node(() => ({ status: 200, body: view }));
    const { stdout } = await kvctl([follower.url], 'member', 'list');
    expect(stdout).toMatch(/^node1  http:\/\/node1\.invalid:3000  voter, leader      -  -$/m);
    expect(stdout).toContain(`(the view of ${follower.url}, a follower: match and last contact are known on the leader only)`);
  });
});

describe('kvctl member add, promote, remove', () => {
  it('adds a learner through the leader, following the redirect, the URL normalized', async () => {
    const leader = await node(() => ({ status: 201, body: added }));
    const follower = await node((req) =>
      req.url === '/status' ? { status: 404 } : { status: 307, headers: { location: `${leader.url}${req.url}` }, body: { error: 'Not leader' } },
    );
    const { code, stdout } = await kvctl([follower.url], 'member', 'add', 'node4', 'localhost:3004/');
    expect([code, stdout]).toEqual([ExitCode.Ok, 'Added node4 (http://localhost:3004) as a learner (index 57)\n']);
    const post = leader.requests.find((r) => r.method === 'POST')!;
    expect([post.url, JSON.parse(post.body)]).toEqual(['/cluster/members', { nodeId: 'node4', url: 'http://localhost:3004', learner: true }]);
  });

  it('adds a voter with --voter, and says when the member was already there as asked', async () => {
    const leader = await node(() => ({ status: 200, body: { ...added, member: member(4) } }));
    const { stdout } = await kvctl([leader.url], 'member', 'add', 'node4', 'http://localhost:3004', '--voter');
    expect(JSON.parse(leader.requests[0].body)).toMatchObject({ learner: false });
    expect(stdout).toBe('Already a member: node4 (http://localhost:3004) as a voter\n');
  });

  it('promotes and removes, printing the index (or the answer with --json)', async () => {
    const leader = await node((req) => ({ status: 200, body: { index: req.method === 'DELETE' ? 61 : 60, member: member(4), members: [member(1), member(2)] } }));
    expect((await kvctl([leader.url], 'member', 'promote', 'node4')).stdout).toBe('node4 is a voter (index 60)\n');
    expect((await kvctl([leader.url], 'member', 'rm', 'node3')).stdout).toBe('Removed node3 (index 61); members: node1, node2\n');
    expect(JSON.parse((await kvctl([leader.url], '--json', 'member', 'remove', 'node3')).stdout)).toMatchObject({ index: 61 });
    expect(leader.requests.map((r) => [r.method, r.url])).toEqual([
      ['POST', '/cluster/members/node4/promote'],
      ['DELETE', '/cluster/members/node3'],
      ['DELETE', '/cluster/members/node3'],
    ]);
  });

  it.each([
    [409, { error: 'node4 has not caught up (match 10, leader 900)' }, ExitCode.Failed, 'kvctl: refused by the leader: node4 has not caught up (match 10, leader 900)\n'],
    [404, { error: 'no member node4' }, ExitCode.NotFound, 'kvctl: not found: no member node4\n'],
    [503, { error: 'Membership change outcome unknown: ...', outcome: 'unknown' }, ExitCode.OutcomeUnknown, 'kvctl: outcome unknown: Membership change outcome unknown: ...\n'],
    [400, { error: 'nodeId must be ...' }, ExitCode.Usage, 'kvctl: refused by the node: nodeId must be ...\n'],
  ])('maps a %i answer to its exit code and says why', async (status, body, exitCode, message) => {
    const leader = await node(() => ({ status, body }));
    const { code, stderr } = await kvctl([leader.url], 'member', 'promote', 'node4');
    expect([code, stderr]).toEqual([exitCode, message]);
  });

  it('refuses a URL that is not a base URL before asking anyone', async () => {
    const leader = await node(() => ({ status: 201, body: added }));
    const { code, stderr } = await kvctl([leader.url], 'member', 'add', 'node4', 'http://localhost:3004/kv');
    expect(code).toBe(ExitCode.Usage);
    expect(stderr).toMatch(/invalid endpoint 'http:\/\/localhost:3004\/kv'/);
    expect(leader.requests).toEqual([]);
  });
});

describe('formatMembersTable', () => {
  it('says when there is no leader', () => {
    const view: MembersList = { clusterId: 'c1', leader: null, members: [member(1, { self: true })], answeredBy: 'http://localhost:3001' };
    expect(formatMembersTable(view).split('\n').slice(-3)).toEqual([
      'cluster c1: 1 voter, 0 learners; no leader',
      'no leader: membership changes cannot be made right now',
      '',
    ]);
  });
});

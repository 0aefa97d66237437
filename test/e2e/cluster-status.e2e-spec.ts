/**
 * GET /cluster/status on a real 3-node cluster (the production build): any node answers for every member,
 * and a member that is down is listed as unreachable, with its error, instead of failing the call.
 * CLUSTER_TOKEN is set, so peer traffic is authenticated while the view is gathered.
 */
import { ClusterNode, http, LocalCluster } from '../support/local-cluster';

jest.setTimeout(120_000);

interface MemberView {
  nodeId: string | null;
  url: string;
  role: 'voter' | 'learner';
  reachable: boolean;
  status?: { nodeId: string; state: string; term: number; leader: string | null; url: string };
  error?: string;
}

let cluster: LocalCluster;
let leader: ClusterNode;

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3, env: { CLUSTER_TOKEN: 'cluster-status-e2e-token' } });
  leader = await cluster.waitForLeader();
});

afterAll(async () => {
  await cluster?.stop();
});

async function clusterStatus(node: ClusterNode): Promise<MemberView[]> {
  const answer = await http<{ nodes: MemberView[] }>('GET', `${node.url}/cluster/status`);
  expect(answer.status).toBe(200);
  return answer.body.nodes;
}

/** The members in the order the view lists them: by NODE_ID (a member is its NODE_ID). */
const byName = (nodes: ClusterNode[]) => [...nodes].sort((a, b) => a.name.localeCompare(b.name));

describe('GET /cluster/status', () => {
  it("answers on every node with every member's own status, one entry per member", async () => {
    const members = byName(cluster.nodes);
    for (const asked of cluster.nodes) {
      const nodes = await clusterStatus(asked);
      expect(nodes.map((n) => ({ nodeId: n.nodeId, url: n.url, role: n.role, reachable: n.reachable }))).toEqual(
        members.map((m) => ({ nodeId: m.name, url: m.url, role: 'voter', reachable: true })),
      );
      for (const n of nodes) {
        expect(n.error).toBeUndefined();
        expect(n.status).toMatchObject({ nodeId: n.nodeId, url: n.url, leader: leader.name });
      }
      expect(nodes.filter((n) => n.status!.state === 'LEADER').map((n) => n.nodeId)).toEqual([leader.name]);
    }
  });

  // Every node heard each member's NODE_ID in the answers above: it names the member by it once it is down.
  it('lists a killed member as unreachable, with the error and its NODE_ID, and still answers for the others', async () => {
    const victim = cluster.nodes.find((n) => n !== leader)!;
    await victim.kill();
    for (const asked of cluster.nodes.filter((n) => n.running)) {
      const nodes = await clusterStatus(asked);
      expect(nodes).toHaveLength(3);
      const down = nodes.find((n) => n.url === victim.url)!;
      // A fresh connection is refused; one kept alive from the earlier answers is reset by the kill.
      expect(down).toEqual({
        nodeId: victim.name,
        url: victim.url,
        role: 'voter',
        reachable: false,
        error: expect.stringMatching(/ECONNREFUSED|ECONNRESET|socket hang up/),
      });
      const up = nodes.filter((n) => n.url !== victim.url);
      expect(up.map((n) => n.reachable)).toEqual([true, true]);
      expect(up.map((n) => n.status!.nodeId).sort()).toEqual(cluster.nodes.filter((n) => n !== victim).map((n) => n.name).sort());
    }
  });
});

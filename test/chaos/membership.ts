/**
 * The membership nemesis's change: take one member out of the cluster and bring it back under the same
 * NODE_ID on an empty data directory, as an operator replaces a node whose disk died (docs/operations.md,
 * "Membership changes"), while the clients go on. Two shapes, chosen by the nemesis (nemesis.ts):
 * - a follower: removed through the leader;
 * - the leader ("move the leader out"): it is asked to remove itself, answers once the removal committed,
 *   and steps down.
 * Either way: the node applies its removal and exits 0 (about two election timeouts later, or when a peer
 * answers its stream 410); then a new process under its NODE_ID and address, with an empty WAL_DIR and
 * JOIN=<the leader's URL>, asks to be added as a learner, catches up (by snapshot: the chaos nodes compact
 * their logs every 50 entries) and has itself promoted. The change is over when the leader's view is the
 * original member set again, every member a voter, and the re-added node knows itself a voter.
 *
 * Everything goes through the admin API over HTTP (`/cluster/members`, docs/api.md "Cluster membership"),
 * with the cluster's token (and, under TLS, the harness's client certificate), following 307 to the leader. Each step is retried until it is done: a partition
 * the nemesis holds at the same time can time a removal out (503, outcome unknown), make the leader refuse
 * it (409: the voters left could not form a quorum of the reachable ones), or leave the cluster without a
 * leader for a while; the nemesis heals the partition after its hold time, then waits for the change.
 * A step that is not done within its deadline fails the run: a cluster that cannot take a member out and
 * back within a minute of the faults healing is a finding.
 *
 * The voters never drop below n - 1 (3 of 3 become 2, then 3 again): only one node is out at a time, and
 * the leader refuses a second removal from two voters anyway.
 */
import { sleep } from '../support/local-cluster';
import { ChaosCluster, ChaosNode, MemberPhase } from './cluster';
import { NodeEndpoint } from './cluster-net';
import { ChaosTls } from './tls';

/** What one change took, on the harness clock (ms since the run started). */
export interface MembershipChange {
  round: number;
  node: string;
  /** `leader`: the node led when the round started and was asked to remove itself. */
  target: string;
  /** The partition kind held during the change, if the round had one. */
  partition?: string;
  startedAt: number;
  /** The leader's applied configuration no longer has the node. */
  removedAt?: number;
  /** The removed process exited 0. */
  exitedAt?: number;
  /** The re-added node is a voter in the leader's view and its own. */
  voterAt?: number;
  /** DELETE requests sent (a retried removal sends several). */
  removeRequests: number;
  /**
   * The answers that made the harness ask again (a refusal, 409, by its reason; a timeout; a redirect
   * nowhere; a join the cluster refused), and how many times each came.
   */
  retries: Record<string, number>;
  /** Processes started with JOIN (more than one when the cluster refused a join and the node gave up). */
  joinAttempts: number;
}

/** `GET /cluster/members`, docs/api.md. */
export interface MembersAnswer {
  clusterId: string;
  leader: string | null;
  members: { nodeId: string; url?: string; role: 'voter' | 'learner'; self: boolean }[];
}

/** How long each step may take, ms. */
export interface MembershipDeadlines {
  remove: number;
  exit: number;
  rejoin: number;
}

export const MEMBERSHIP_DEADLINES: MembershipDeadlines = { remove: 60_000, exit: 45_000, rejoin: 90_000 };

/** A refused join is retried with a new process this many times at most. */
const MAX_JOIN_ATTEMPTS = 5;

export type AdminAnswer = { status: number; body: any; url: string } | { error: string };

/**
 * One admin request to node `i` (its client URL), following 307 to the leader (the Location's node, reached
 * at its client URL) with the token sent again at every hop. Never throws: no answer is `{ error }`.
 */
export async function adminRequest(
  cluster: {
    readonly token: string;
    readonly options: { readonly net: { readonly endpoints: readonly NodeEndpoint[] }; readonly tls?: Pick<ChaosTls, 'adminFetch'> };
  },
  i: number,
  method: string,
  path: string,
  timeoutMs: number,
): Promise<AdminAnswer> {
  const endpoints = cluster.options.net.endpoints;
  let url = `${endpoints[i].clientUrl}${path}`;
  const deadline = Date.now() + timeoutMs;
  for (let hop = 0; hop < 5; hop++) {
    let response: Response;
    try {
      // Under TLS with the harness's client certificate: membership changes need one (mutual TLS).
      response = await (cluster.options.tls?.adminFetch ?? fetch)(url, {
        method,
        redirect: 'manual',
        headers: { authorization: `Bearer ${cluster.token}` },
        signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      });
    } catch (error) {
      return { error: `${new URL(url).origin}: ${(error as Error).name === 'TimeoutError' ? 'no answer' : (error as Error).message}` };
    }
    const text = await response.text().catch(() => '');
    let body: any = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: kept as text.
    }
    const location = response.headers.get('location');
    if (response.status === 307 && location) {
      if (!URL.canParse(location)) return { error: `307 to ${JSON.stringify(location)}: no leader URL` };
      const to = new URL(location);
      const node = endpoints.findIndex((e) => new URL(e.url).origin === to.origin);
      url = node >= 0 ? `${endpoints[node].clientUrl}${to.pathname}${to.search}` : location;
      continue;
    }
    return { status: response.status, body, url };
  }
  return { error: `more than 5 redirects for ${method} ${path}` };
}

function describeAnswer(a: AdminAnswer): string {
  if ('error' in a) return a.error;
  const error = typeof a.body?.error === 'string' ? `: ${a.body.error}` : '';
  return `${a.status}${error}`;
}

/**
 * The leader's view of the members: the node that claims leadership in the highest term, asked for the
 * configuration it has applied (so committed). Undefined when no leader answers as one.
 */
export async function leaderView(cluster: ChaosCluster): Promise<{ leader: ChaosNode; view: MembersAnswer } | undefined> {
  const leader = await cluster.leader();
  if (!leader) return undefined;
  const a = await adminRequest(cluster, leader.index, 'GET', '/cluster/members', 1000);
  if ('error' in a || a.status !== 200 || a.body?.leader !== leader.name || !Array.isArray(a.body?.members)) return undefined;
  return { leader, view: a.body as MembersAnswer };
}

/**
 * Takes node `i` out and brings it back (see above). Resolves once the member set is the original one
 * again, every member a voter; rejects when a step misses its deadline or the node ends otherwise than
 * the change explains (a crash, recorded by the cluster as well).
 */
export async function replaceMember(
  cluster: ChaosCluster,
  i: number,
  change: MembershipChange,
  now: () => number,
  deadlines: MembershipDeadlines = MEMBERSHIP_DEADLINES,
): Promise<void> {
  const name = cluster.nodes[i].name;
  const original = cluster.nodes.map((n) => n.name).sort();
  const old = cluster.nodes[i];
  if (!old.running || old.paused) throw new Error(`membership: ${name} is not running, it cannot be removed`);
  old.phase = 'removing';

  // 1. Remove: ask the leader (or, with none known, the node itself, which redirects) until the removal is
  // known committed: the leader answered 200 (it answers once the change is committed and applied there),
  // or 404 (a retry after an answer that was lost), or the node itself answered 410 (it applies only
  // committed entries), or a leader's applied configuration has the node no more.
  let deadline = Date.now() + deadlines.remove;
  let last = 'not asked yet';
  for (;;) {
    const seen = await leaderView(cluster);
    if (seen && !seen.view.members.some((m) => m.nodeId === name)) break;
    if (Date.now() > deadline) throw new Error(`membership: ${name} was not removed within ${deadlines.remove / 1000} s (last answer: ${last})`);
    const asked = seen?.leader.index ?? i;
    if (asked === i && !old.running) break; // it exited: step 2 tells whether that was its removal
    const a = await adminRequest(cluster, asked, 'DELETE', `/cluster/members/${encodeURIComponent(name)}`, 8000);
    change.removeRequests++;
    last = describeAnswer(a);
    if (!('error' in a) && (a.status === 200 || a.status === 404 || (a.status === 410 && asked === i && a.url.startsWith(old.endpoint.clientUrl)))) break;
    // A leader change, a timeout (outcome unknown: it may still commit), a refusal: ask again.
    change.retries[last] = (change.retries[last] ?? 0) + 1;
    await sleep('status' in a && a.status === 409 ? 300 : 200);
  }
  change.removedAt = now();

  // 2. The removed process exits 0 on its own (cluster.ts records it as removed, not as a crash).
  const exit = await old.waitForExit(deadlines.exit).catch(() => undefined);
  if (!exit) throw new Error(`membership: ${name} was removed but still runs ${deadlines.exit / 1000} s later`);
  // (cluster.ts sets the phase when the process ends: the cast undoes TypeScript's narrowing above.)
  if ((old.phase as MemberPhase) !== 'removed') throw new Error(`membership: ${name} ended with code ${exit.code}, signal ${exit.signal} after its removal, instead of exiting 0`);
  if (!/removed from the cluster; exiting/.test(old.tail(60))) throw new Error(`membership: ${name} exited 0 without saying it was removed`);
  change.exitedAt = now();

  // 3. Re-add: a new process with JOIN=<the leader's URL> on an empty directory; it is added as a learner and
  // has itself promoted. A joining node that the cluster refuses (another change still pending after a
  // leader change, say) exits 1: start another one.
  deadline = Date.now() + deadlines.rejoin;
  let node: ChaosNode | undefined;
  while (change.joinAttempts < MAX_JOIN_ATTEMPTS) {
    const seen = await leaderView(cluster);
    if (Date.now() > deadline) break;
    if (!seen) {
      await sleep(200);
      continue;
    }
    change.joinAttempts++;
    node = cluster.replace(i, seen.leader.endpoint.url);
    while (node.running && Date.now() < deadline) {
      if (await isVoterAgain(cluster, node, original)) {
        node.phase = 'member';
        change.voterAt = now();
        return;
      }
      await sleep(200);
    }
    if (node.running) break;
    if (node.phase !== 'joining' || cluster.joinRefusals.at(-1)?.node !== name) {
      throw new Error(`membership: ${name} ended while joining (code ${node.lastExit?.code}, signal ${node.lastExit?.signal})`);
    }
    const refused = `join: ${cluster.joinRefusals.at(-1)!.reason}`;
    change.retries[refused] = (change.retries[refused] ?? 0) + 1;
    await sleep(500);
  }
  throw new Error(
    `membership: ${name} was not a voter again within ${deadlines.rejoin / 1000} s after ${change.joinAttempts} join attempt(s)` +
      (node ? `; its last lines:\n${node.tail(15)}` : ''),
  );
}

/** The leader's view is `original`, every member a voter, and the re-added node sees itself a voter. */
async function isVoterAgain(cluster: ChaosCluster, node: ChaosNode, original: readonly string[]): Promise<boolean> {
  const seen = await leaderView(cluster);
  if (!seen) return false;
  const ids = seen.view.members.map((m) => m.nodeId).sort();
  if (ids.join() !== original.join() || seen.view.members.some((m) => m.role !== 'voter')) return false;
  const own = await adminRequest(cluster, node.index, 'GET', '/cluster/members', 1000);
  return !('error' in own) && own.status === 200 && own.body?.members?.some((m: { self: boolean; role: string }) => m.self && m.role === 'voter');
}

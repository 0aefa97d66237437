/**
 * Membership changes on real nodes, for the end-to-end suites: the `/cluster/members` routes asked as a
 * client would (following the leader's 307 itself, with the token again; retrying a 503 after its
 * Retry-After), nodes that join a running cluster with JOIN, and a client that writes all along and keeps
 * what was acknowledged (test/e2e/membership.e2e-spec.ts).
 */
import type { MemberInfo } from '@app/consensus';
import { join } from 'node:path';
import { ClusterNode, eventually, http, HttpAnswer, LocalCluster, sleep } from './local-cluster';

/** One member as `GET /cluster/members` lists it. */
export type Member = MemberInfo;

export interface MembersAnswer {
  clusterId: string;
  leader: string | null;
  members: Member[];
}

export interface AskOptions {
  /** Sent as `Authorization: Bearer <token>`, on every hop. */
  token?: string;
  body?: unknown;
  /** How long 503s (no leader, an election) are retried. */
  timeoutMs?: number;
}

/**
 * One request (a membership change, a write, a read), as a client makes it: sent to `url`, a `307` followed to its Location (the
 * token sent again: fetch drops Authorization on a redirect to another origin), a `503` that carries
 * Retry-After retried from `url` (sooner than it asks: the tests wait for elections, not for load to ease)
 * until `timeoutMs`. Answers the first answer that is neither. `hops` counts the redirects.
 */
export async function ask<T = any>(method: string, url: string, path: string, options: AskOptions = {}): Promise<HttpAnswer<T> & { hops: number }> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  const headers = options.token ? { authorization: `Bearer ${options.token}` } : undefined;
  let target = `${url}${path}`;
  let hops = 0;
  for (;;) {
    const answer = await http<T>(method, target, options.body, { headers, timeoutMs: 10_000 });
    if (answer.status === 307 && hops < 5) {
      target = answer.headers.get('location')!;
      hops++;
      continue;
    }
    if (answer.status === 503 && answer.headers.get('retry-after') && Date.now() < deadline) {
      await sleep(200);
      target = `${url}${path}`;
      hops = 0;
      continue;
    }
    return { ...answer, hops };
  }
}

/** GET /cluster/members on `url` (its own view); throws unless 200. */
export async function members(url: string, token?: string): Promise<MembersAnswer> {
  const answer = await http<MembersAnswer>('GET', `${url}/cluster/members`, undefined, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (answer.status !== 200) throw new Error(`GET ${url}/cluster/members answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** `nodeId`'s role in the leader's view, once a running node names a leader that answers; undefined: not a member. */
export async function roleOnLeader(cluster: LocalCluster, nodeId: string, token?: string): Promise<Member | undefined> {
  const leader = await cluster.waitForLeader(30_000);
  const view = await members(leader.url, token);
  return view.members.find((m) => m.nodeId === nodeId);
}

/** Waits until the leader lists `nodeId` with `role` (and, for a member, with `url` reachable from here). */
export async function waitForRole(cluster: LocalCluster, nodeId: string, role: Member['role'] | 'gone', token?: string, timeoutMs = 60_000): Promise<void> {
  await cluster.explained(
    eventually(
      `${nodeId} to be ${role === 'gone' ? 'no member' : `a ${role}`} in the leader's view`,
      async () => {
        const member = await roleOnLeader(cluster, nodeId, token);
        return (role === 'gone' ? member === undefined : member?.role === role) ? true : undefined;
      },
      timeoutMs,
      200,
    ),
  );
}

/**
 * A node that joins `cluster` (its data under the cluster's root, killed by its stop()): exactly `env`, which
 * the test gives (NODE_ID, HTTP_PORT, WAL_DIR, JOIN, ...), with WAL_DIR defaulting to `<root>/<name>`.
 */
export function joiningNode(cluster: LocalCluster, name: string, port: number, env: Record<string, string>): ClusterNode {
  const dir = env.WAL_DIR ?? join(cluster.root, name);
  const node = new ClusterNode(name, port, dir, { NODE_ID: name, HTTP_PORT: String(port), WAL_DIR: dir, ...env });
  cluster.nodes.push(node);
  return node;
}

/** A PUT /kv that a client gave up on, or an answer it did not expect: what the load test must not see. */
export interface LoadProblem {
  key: string;
  url: string;
  what: string;
}

/**
 * Clients writing unique keys as fast as they are answered, each to a node picked from `endpoints()` in turn,
 * through Node's fetch without automatic redirects: a `307` is followed to its Location, a `503` with
 * Retry-After is retried on the next endpoint after 100 ms (the same key and value, which makes a retried
 * write of unknown outcome harmless),
 * anything else is a problem, kept with the key. `acked` holds every write answered 200.
 */
export class WriteLoad {
  readonly acked = new Map<string, string>();
  readonly problems: LoadProblem[] = [];
  readonly answers = new Map<number, number>();
  private running = true;
  private readonly workers: Promise<void>[];

  constructor(
    private readonly endpoints: () => string[],
    clients = 4,
  ) {
    this.workers = Array.from({ length: clients }, (_, c) => this.client(c));
  }

  /** Stops after the writes in flight are answered. */
  async stop(): Promise<this> {
    this.running = false;
    await Promise.all(this.workers);
    return this;
  }

  private count(status: number): void {
    this.answers.set(status, (this.answers.get(status) ?? 0) + 1);
  }

  private async client(c: number): Promise<void> {
    for (let i = 0; this.running; i++) {
      const key = `load-${c}-${i}`;
      const value = `value ${c}/${i}`;
      const urls = this.endpoints();
      let url = `${urls[(c + i) % urls.length]}/kv/${key}`;
      for (let attempt = 0; ; attempt++) {
        let response: Response;
        try {
          response = await fetch(url, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ value }),
            redirect: 'manual',
            signal: AbortSignal.timeout(10_000),
          });
        } catch (error) {
          this.problems.push({ key, url, what: `no answer: ${String((error as Error).cause ?? error)}` });
          break;
        }
        const text = await response.text();
        this.count(response.status);
        if (response.status === 200) {
          this.acked.set(key, value);
          break;
        }
        if (response.status === 307 && response.headers.get('location')) {
          url = response.headers.get('location')!;
          continue;
        }
        if (response.status === 503 && response.headers.get('retry-after') && attempt < 100) {
          await sleep(100);
          url = `${this.endpoints()[(c + i + attempt) % this.endpoints().length]}/kv/${key}`;
          continue;
        }
        this.problems.push({ key, url, what: `${response.status} ${text.slice(0, 200)}` });
        break;
      }
    }
  }
}

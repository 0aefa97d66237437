import { randomUUID } from 'node:crypto';
import { ExitCode, KvctlError } from './kvctl-error';
import { describeTlsFailure } from './tls-options';

/** A node's `GET /status` answer (see docs/api.md). */
export interface NodeStatus {
  state: string;
  term: number;
  leader: string | null;
  isLeader: boolean;
  nodeId: string;
  url: string;
  leaderUrl: string | null;
  commitIndex: number;
  appliedIndex: number;
  lastLogIndex: number;
  /** The newest snapshot's last entry, and the first entry still in the log (absent from older nodes). */
  snapshotIndex?: number;
  firstLogIndex?: number;
  peers?: Array<{ nodeId?: string; url: string; clientUrl?: string | null; matchIndex: number; nextIndex?: number; replication?: string; lastContactMs?: number }>;
}

/** One row of `kvctl status`: what a node answered, or why it did not. */
export interface NodeView {
  /** The URL kvctl asked (an endpoint, or a member URL the leader reported). */
  endpoint: string;
  nodeId?: string;
  status?: NodeStatus;
  error?: string;
}

export interface ClusterView {
  leader: string | null;
  term: number | null;
  nodes: NodeView[];
}

/** One member in `GET /cluster/members` (see docs/api.md, "Cluster membership"). */
export interface MemberView {
  nodeId: string;
  url?: string;
  /** Where clients reach it, when that differs from `url` (a node with PEER_PORT; null: not known yet). */
  clientUrl?: string | null;
  role: 'voter' | 'learner';
  self: boolean;
  /** On the leader's answer only. */
  match?: number;
  lastContactMs?: number;
}

/** `GET /cluster/members`, and which node answered it. */
export interface MembersList {
  clusterId: string;
  leader: string | null;
  members: MemberView[];
  /** The endpoint whose view this is: the leader's when it could be reached (it alone knows match and contact). */
  answeredBy: string;
}

/** A membership change, as the leader answered it. */
export interface MembershipResult {
  index: number;
  member?: MemberView;
  members: MemberView[];
  clusterId?: string;
  initialVoters?: string[];
}

export interface WriteResult {
  success: true;
  index: number;
  existed?: boolean;
  /** On a put (absent from older nodes): the key's createIndex and its new modIndex (= index). */
  createIndex?: number;
  modIndex?: number;
  /** True when the answer came from a retry: the write applied once, at `index`, by an earlier attempt. */
  replayed?: boolean;
}

/**
 * A conditional write: `ifIndex` (If-Match): only if the key's modIndex is still this one; `create`
 * (If-None-Match: *): only if the key does not exist. A failed condition is a KvctlError with exit code 5.
 */
export interface WriteCondition {
  ifIndex?: number;
  create?: boolean;
  /** A put only: the key expires this many seconds later (`?ttl=`). */
  ttl?: number;
}

/** One page of `GET /kv` (see docs/api.md, "List keys"). */
export interface ListPage {
  items: Array<{ key: string; value?: string }>;
  more: boolean;
  next: string | null;
}

export interface KvClientOptions {
  /** Base URLs of some or all nodes, tried in order. */
  endpoints: string[];
  /** Overall budget for one command, retries included. */
  timeoutMs: number;
  /** Budget for one `/status` request (status and leader discovery). */
  statusTimeoutMs?: number;
  /** Bearer token sent with every request (nodes started with API_TOKENS_FILE require one). */
  token?: string;
  /** The fetch to use (tlsFetch() for --cacert / --cert / --key); the global fetch by default. */
  fetch?: typeof fetch;
  /** Makes the Idempotency-Key of each write (default: crypto.randomUUID). */
  newIdempotencyKey?: () => string;
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  url: string;
  /** With `stream`, a 200 answer's body, not yet read (`body` is then undefined). */
  stream?: ReadableStream<Uint8Array>;
  /** Cancels the request (for a streamed body that is abandoned). */
  abort?: () => void;
}

/** A download from the leader: the metadata its headers announce, and the body to read. */
export interface SnapshotDownload {
  /** The endpoint that answered. */
  origin: string;
  /** From the `x-snapshot-*` headers; undefined if a node did not send them. */
  index?: number;
  term?: number;
  keys?: number;
  /** The snapshot file's bytes as they arrive; fails when no byte arrives for the client's timeout. */
  body: AsyncIterable<Uint8Array>;
}

const MAX_REDIRECTS = 5;
/** Network errors after which a write may have reached the node (unlike a refused connection). */
const MAYBE_DELIVERED = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
/**
 * The time the back-off leaves for the last round (a request to a node that is up, not an election), and
 * half of it the least an attempt starts with. 100 ms was too little on a loaded machine: trying the dead
 * endpoints first, the last attempt reached the live node with 65 ms left, got no answer in time, and a
 * write every node had refused ended as "outcome unknown" (exit 4) instead of "no leader" (exit 1).
 */
const MIN_RETRY_MS = 250;

/**
 * Normalizes what a user types as an endpoint: `localhost:3001`, `http://localhost:3001/` →
 * `http://localhost:3001`. Throws a usage error for anything that is not an http(s) base URL.
 */
export function parseEndpoint(raw: string): string {
  const text = raw.trim();
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new KvctlError(`invalid endpoint '${raw}' (expected e.g. http://localhost:3001)`, ExitCode.Usage);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '') || url.search) {
    throw new KvctlError(`invalid endpoint '${raw}' (expected a base URL such as http://localhost:3001)`, ExitCode.Usage);
  }
  return `${url.protocol}//${url.host}`;
}

/** What went wrong with a request that got no HTTP answer, in a few words. */
export function describeNetworkError(error: unknown, timeoutMs: number): string {
  const err = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const code = err?.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'unknown host';
  if (code === 'ECONNRESET') return 'connection reset';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'host unreachable';
  return err?.cause?.message ?? err?.message ?? String(error);
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/**
 * A client of the cluster's HTTP API that finds the leader itself: it tries the endpoints in order,
 * follows `307 Not leader` redirects (re-sending the body), and maps a leader's advertised URL that this
 * machine cannot reach (a Docker Compose service name, say) to the endpoint that answers as that node.
 * "No leader" answers and unreachable nodes are retried until the time budget runs out. Every put and delete
 * carries a fresh Idempotency-Key, and a write whose outcome is unknown (no answer in time, a 503 `outcome:
 * "unknown"`, a connection lost after the request went out) is retried with the same key until the budget
 * runs out: the node applies it once whatever the number of attempts, and answers a retry with the first
 * outcome. Only when the budget runs out with the outcome still unknown does the client say so (exit 4).
 */
export class KvClient {
  private readonly endpoints: string[];
  private readonly statusTimeoutMs: number;
  /** The endpoint that last answered as the leader: tried first. */
  private leaderHint?: string;
  /** nodeId → an endpoint that answered as that node. Filled lazily. */
  private nodeEndpoints?: Map<string, string>;

  constructor(private readonly options: KvClientOptions) {
    if (options.endpoints.length === 0) throw new KvctlError('no endpoints given', ExitCode.Usage);
    this.endpoints = options.endpoints.map(parseEndpoint);
    this.statusTimeoutMs = options.statusTimeoutMs ?? 2000;
  }

  async put(key: string, value: string, condition: WriteCondition = {}): Promise<WriteResult> {
    const path = condition.ttl === undefined ? keyPath(key) : `${keyPath(key)}?ttl=${condition.ttl}`;
    return this.write('PUT', key, path, { value }, condition);
  }

  async delete(key: string, condition: WriteCondition = {}): Promise<WriteResult> {
    return this.write('DELETE', key, keyPath(key), undefined, condition);
  }

  private async write(method: 'PUT' | 'DELETE', key: string, path: string, body: unknown, condition: WriteCondition): Promise<WriteResult> {
    const token = (this.options.newIdempotencyKey ?? randomUUID)();
    const answer = await this.toLeader(method, path, body, { headers: { ...conditionHeaders(condition), 'idempotency-key': token }, idempotent: true });
    const result = this.expectWritten(answer, key) as WriteResult;
    return answer.headers.get('idempotent-replayed') === 'true' ? { ...result, replayed: true } : result;
  }

  /**
   * A linearizable read through the leader, or with `stale` the first answering node's own copy. The answer
   * has the key's createIndex and modIndex (from nodes that have them).
   */
  async get(key: string, options: { stale?: boolean } = {}): Promise<{ key: string; value: string; createIndex?: number; modIndex?: number }> {
    const answer = options.stale ? await this.toAny('GET', `${keyPath(key)}?consistency=stale`) : await this.toLeader('GET', keyPath(key));
    if (answer.status === 404 && answer.body?.error === 'Key not found') {
      throw new KvctlError(`key not found: ${key}`, ExitCode.NotFound);
    }
    return this.expectOk(answer) as { key: string; value: string };
  }

  /**
   * One page of the keys starting with `prefix` (`GET /kv`), after the key `after`, at most `limit` (the node
   * allows 1 to 1000); linearizable through the leader, or with `stale` the first answering node's own copy.
   */
  async list(prefix: string, options: { after?: string; limit?: number; keysOnly?: boolean; stale?: boolean } = {}): Promise<ListPage> {
    const query = new URLSearchParams({ prefix });
    if (options.after !== undefined) query.set('after', options.after);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.keysOnly) query.set('keysOnly', 'true');
    if (options.stale) query.set('consistency', 'stale');
    const path = `/kv?${query}`;
    const answer = options.stale ? await this.toAny('GET', path) : await this.toLeader('GET', path);
    return this.expectOk(answer) as ListPage;
  }

  /**
   * Downloads a snapshot of the whole map from the leader (`GET /cluster/snapshot`), found as writes find it.
   * Resolves once the leader answered 200, with the body still to be read: the caller streams it (to a file)
   * and so never holds the whole of it. The time budget covers finding the leader and its answer; the body
   * then only has to keep flowing (no gap longer than the budget).
   */
  async snapshot(): Promise<SnapshotDownload> {
    const answer = await this.toLeader('GET', '/cluster/snapshot', undefined, { stream: true });
    if (answer.status !== 200) this.expectOk(answer);
    if (!answer.stream) throw new KvctlError(`${originOf(answer.url)} answered 200 without a body`, ExitCode.Failed);
    const header = (name: string) => {
      const value = Number(answer.headers.get(name) ?? NaN);
      return Number.isSafeInteger(value) ? value : undefined;
    };
    return {
      origin: originOf(answer.url),
      index: header('x-snapshot-index'),
      term: header('x-snapshot-term'),
      keys: header('x-snapshot-keys'),
      body: readWithIdleTimeout(answer.stream!, this.options.timeoutMs, originOf(answer.url), answer.abort),
    };
  }

  /**
   * The members, as the leader has applied them when it can be reached (its view has each member's match
   * index and last contact), else as the first node that answers has.
   */
  async members(): Promise<MembersList> {
    const first = await this.toAny('GET', '/cluster/members');
    const view = { ...(this.expectMembershipOk(first) as Omit<MembersList, 'answeredBy'>), answeredBy: originOf(first.url) };
    const self = view.members.find((m) => m.self);
    const leaderMember = view.members.find((m) => m.nodeId === view.leader);
    const leaderUrl = leaderMember?.clientUrl ?? leaderMember?.url;
    if (!view.leader || self?.nodeId === view.leader || !leaderUrl) return view;
    try {
      const answer = await send('GET', `${leaderUrl}/cluster/members`, undefined, this.statusTimeoutMs, this.options);
      if (answer.status === 200) return { ...(answer.body as Omit<MembersList, 'answeredBy'>), answeredBy: originOf(leaderUrl) };
    } catch {
      // the leader's address may not resolve from here: the follower's view is the answer
    }
    return view;
  }

  /** Adds a member (a learner unless `voter`); `added` is false when it was already there as asked. */
  async addMember(nodeId: string, url: string, options: { voter?: boolean } = {}): Promise<{ added: boolean; result: MembershipResult }> {
    const answer = await this.toLeader('POST', '/cluster/members', { nodeId, url: parseEndpoint(url), learner: !options.voter });
    return { added: answer.status === 201, result: this.expectMembershipOk(answer) as MembershipResult };
  }

  async promoteMember(nodeId: string): Promise<MembershipResult> {
    return this.expectMembershipOk(await this.toLeader('POST', `${memberPath(nodeId)}/promote`)) as MembershipResult;
  }

  async removeMember(nodeId: string): Promise<MembershipResult> {
    return this.expectMembershipOk(await this.toLeader('DELETE', memberPath(nodeId))) as MembershipResult;
  }

  /**
   * Every member's status: the endpoints, plus the members the leader reports (so one endpoint is
   * enough to see the whole cluster). A node is listed once, by node id, whichever URL reached it.
   */
  async status(): Promise<ClusterView> {
    const views: NodeView[] = [];
    const asked = new Set<string>();
    const ask = async (urls: string[]) => {
      const fresh = urls.filter((u) => !asked.has(u));
      fresh.forEach((u) => asked.add(u));
      const answers = await Promise.all(fresh.map((u) => this.fetchStatus(u)));
      fresh.forEach((endpoint, i) => {
        const answer = answers[i];
        if (typeof answer === 'string') {
          views.push({ endpoint, error: answer });
        } else if (!views.some((v) => v.nodeId === answer.nodeId)) {
          views.push({ endpoint, nodeId: answer.nodeId, status: answer });
        }
      });
    };
    await ask(this.endpoints);
    if (!this.leaderOf(views)) {
      // Only followers answered: ask the leader they name, which knows every member.
      await ask([...new Set(views.map((v) => v.status?.leaderUrl).filter((u): u is string => Boolean(u)))]);
    }
    const leader = this.leaderOf(views);
    const reported = leader?.status?.peers ?? [];
    const missing = reported.filter((p) => !views.some((v) => v.nodeId !== undefined && v.nodeId === p.nodeId));
    // Asked at their client URL (apart from `url`, the peer URL, on nodes with PEER_PORT).
    const clientUrlOf = (p: { url: string; clientUrl?: string | null }) => p.clientUrl ?? p.url;
    await ask(missing.map(clientUrlOf));
    // A member the leader reports that did not answer at the URL it reported: name it, keep the error.
    for (const view of views) {
      if (view.nodeId === undefined) view.nodeId = reported.find((p) => clientUrlOf(p) === view.endpoint)?.nodeId;
    }
    // Drop failed endpoints that turned out to be a node that answered elsewhere.
    const rows = views.filter((v) => v.status || !views.some((w) => w !== v && w.status && w.nodeId === v.nodeId));
    // Named nodes first, in natural order (node2 before node10); then the endpoints nobody could name.
    const collator = new Intl.Collator('en', { numeric: true });
    rows.sort((a, b) =>
      a.nodeId !== undefined && b.nodeId !== undefined
        ? collator.compare(a.nodeId, b.nodeId)
        : a.nodeId !== undefined
          ? -1
          : b.nodeId !== undefined
            ? 1
            : collator.compare(a.endpoint, b.endpoint),
    );
    const finalLeader = this.leaderOf(rows);
    return { leader: finalLeader?.nodeId ?? null, term: finalLeader?.status?.term ?? null, nodes: rows };
  }

  private leaderOf(views: NodeView[]): NodeView | undefined {
    const leaders = views.filter((v) => v.status?.isLeader);
    // Two nodes may both believe they lead for a moment (an old leader not yet told); the higher term wins.
    return leaders.sort((a, b) => b.status!.term - a.status!.term)[0];
  }

  /** A request the leader must answer: writes, linearizable reads, snapshots (`stream`: see send()). */
  private async toLeader(
    method: string,
    path: string,
    body?: unknown,
    options: { stream?: boolean; headers?: Record<string, string>; idempotent?: boolean } = {},
  ): Promise<Answer> {
    const deadline = Date.now() + this.options.timeoutMs;
    const problems = new Map<string, string>();
    let lastRefusal: Answer | undefined;
    /** An idempotent write's attempt whose outcome is unknown: retried, and said if the budget runs out. */
    let unknown: string | undefined;
    for (let round = 0; ; round++) {
      const order = [...new Set([...(this.leaderHint ? [this.leaderHint] : []), ...this.endpoints])];
      for (const endpoint of order) {
        let url = `${endpoint}${path}`;
        for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
          const remaining = deadline - Date.now();
          // A retry with only the budget's last moments left would time out for want of time, and a write
          // that timed out has an unknown outcome: stop with the answers so far instead.
          if (remaining <= 0 || (remaining < MIN_RETRY_MS / 2 && problems.size > 0)) break;
          // An idempotent write keeps time for a retry: an attempt gets half of what is left (at least a second).
          const attemptMs = options.idempotent ? Math.min(remaining, Math.max(1000, Math.floor(remaining / 2))) : remaining;
          let answer: Answer;
          try {
            answer = await send(method, url, body, attemptMs, this.options, options);
          } catch (error) {
            if (error instanceof KvctlError) throw error;
            problems.set(originOf(url), describeNetworkError(error, attemptMs));
            if (options.idempotent && (isTimeout(error) || maybeDelivered(error))) {
              unknown = `${originOf(url)}: ${describeNetworkError(error, attemptMs)}`;
              break;
            }
            if (method !== 'GET' && isTimeout(error)) {
              throw new KvctlError(
                `outcome unknown: ${originOf(url)} gave no answer within ${remaining} ms; the write may still take effect`,
                ExitCode.OutcomeUnknown,
              );
            }
            break;
          }
          if (answer.status === 307) {
            url = await this.redirectTarget(answer, path);
            continue;
          }
          if (answer.status === 503) {
            if (answer.body?.outcome === 'unknown') {
              if (!options.idempotent) throw new KvctlError(`outcome unknown: ${answer.body.error}`, ExitCode.OutcomeUnknown);
              unknown = `${originOf(url)}: ${answer.body.error}`;
              problems.set(originOf(url), `503 ${answer.body.error}`);
              break;
            }
            lastRefusal = answer;
            problems.set(originOf(url), `${answer.status} ${answer.body?.error ?? ''}`.trim());
            break;
          }
          if (answer.status < 500) this.leaderHint = originOf(url);
          return answer;
        }
      }
      // Back off, but leave the last attempt enough time to be answered.
      const pause = Math.min(200 * 2 ** Math.min(round, 3), deadline - Date.now() - MIN_RETRY_MS);
      if (pause < 0) break;
      await sleep(pause);
    }
    const seconds = this.options.timeoutMs / 1000;
    if (unknown) {
      throw new KvctlError(
        `outcome unknown: not confirmed within ${seconds} s, retried with the same Idempotency-Key (last: ${unknown}); ` +
          'the write may still take effect, at most once',
        ExitCode.OutcomeUnknown,
      );
    }
    if (lastRefusal) {
      throw new KvctlError(
        `no leader could take the request within ${seconds} s (the cluster is electing one, or too few nodes run): ` +
          [...problems].map(([u, p]) => `${u}: ${p}`).join('; '),
        ExitCode.Failed,
      );
    }
    throw new KvctlError(
      `cannot reach the cluster within ${seconds} s: ${[...problems].map(([u, p]) => `${u}: ${p}`).join('; ') || 'no answer'}`,
      ExitCode.Failed,
    );
  }

  /** A request any node may answer (stale reads): the first endpoint that answers. */
  private async toAny(method: string, path: string): Promise<Answer> {
    const problems: string[] = [];
    const deadline = Date.now() + this.options.timeoutMs;
    for (const endpoint of this.endpoints) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      try {
        return await send(method, `${endpoint}${path}`, undefined, Math.min(remaining, this.statusTimeoutMs), this.options);
      } catch (error) {
        if (error instanceof KvctlError) throw error;
        problems.push(`${endpoint}: ${describeNetworkError(error, Math.min(remaining, this.statusTimeoutMs))}`);
      }
    }
    throw new KvctlError(`cannot reach any node: ${problems.join('; ')}`, ExitCode.Failed);
  }

  /**
   * Where to send a request that a follower redirected: to an endpoint known to be the leader when the
   * `Location` is not one of the endpoints (its host may not resolve here), else to the `Location`.
   */
  private async redirectTarget(answer: Answer, path: string): Promise<string> {
    const location = answer.headers.get('location');
    const leader: string | undefined = answer.body?.leader ?? undefined;
    if (location && this.endpoints.includes(originOf(location))) return location;
    if (leader) {
      this.nodeEndpoints ??= await this.learnNodeIds();
      const endpoint = this.nodeEndpoints.get(leader);
      if (endpoint) return `${endpoint}${path}`;
    }
    if (!location) throw new KvctlError(`${originOf(answer.url)} redirected without a Location header`, ExitCode.Failed);
    return location;
  }

  private async learnNodeIds(): Promise<Map<string, string>> {
    const map = new Map<string, string>();
    const answers = await Promise.all(this.endpoints.map((e) => this.fetchStatus(e)));
    this.endpoints.forEach((endpoint, i) => {
      const answer = answers[i];
      if (typeof answer !== 'string' && !map.has(answer.nodeId)) map.set(answer.nodeId, endpoint);
    });
    return map;
  }

  /** A node's status, or a few words saying why there is none. */
  private async fetchStatus(endpoint: string): Promise<NodeStatus | string> {
    try {
      const answer = await send('GET', `${endpoint}/status`, undefined, this.statusTimeoutMs, this.options);
      if (answer.status !== 200 || typeof answer.body?.nodeId !== 'string') return `HTTP ${answer.status} from /status`;
      return answer.body as NodeStatus;
    } catch (error) {
      return describeNetworkError(error, this.statusTimeoutMs);
    }
  }

  /** expectOk, with a failed condition (412) said as such: nothing was written, exit code 5. */
  private expectWritten(answer: Answer, key: string): unknown {
    if (answer.status === 412) {
      const now = answer.body?.modIndex === null || answer.body?.modIndex === undefined ? 'the key does not exist' : `its modIndex is now ${answer.body.modIndex}`;
      throw new KvctlError(`condition failed, nothing written: ${key}: ${now}`, ExitCode.ConditionFailed);
    }
    return this.expectOk(answer);
  }

  private expectOk(answer: Answer): unknown {
    if (answer.status >= 200 && answer.status < 300) return answer.body;
    const detail = typeof answer.body?.error === 'string' ? answer.body.error : `HTTP ${answer.status}`;
    if ([400, 405, 413, 414, 415].includes(answer.status)) throw new KvctlError(`refused by the node: ${detail}`, ExitCode.Usage);
    throw new KvctlError(`${originOf(answer.url)} answered ${answer.status}: ${detail}`, ExitCode.Failed);
  }

  /** expectOk, with the membership routes' refusals said as such: an unknown member (404), a refusal (409). */
  private expectMembershipOk(answer: Answer): unknown {
    const reason = typeof answer.body?.error === 'string' ? answer.body.error : `HTTP ${answer.status}`;
    if (answer.status === 404 && typeof answer.body?.error === 'string') throw new KvctlError(`not found: ${reason}`, ExitCode.NotFound);
    if (answer.status === 409) throw new KvctlError(`refused by the leader: ${reason}`, ExitCode.Failed);
    if (answer.status === 410) throw new KvctlError(`${originOf(answer.url)} was removed from the cluster: ask another member`, ExitCode.Failed);
    return this.expectOk(answer);
  }
}

function memberPath(nodeId: string): string {
  if (nodeId.length === 0) throw new KvctlError('the member id must not be empty', ExitCode.Usage);
  return `/cluster/members/${encodeURIComponent(nodeId)}`;
}

function conditionHeaders(condition: WriteCondition): Record<string, string> | undefined {
  if (condition.create && condition.ifIndex !== undefined) throw new KvctlError('give --create or --if-index, not both', ExitCode.Usage);
  if (condition.create) return { 'if-none-match': '*' };
  if (condition.ifIndex !== undefined) return { 'if-match': `"${condition.ifIndex}"` };
  return undefined;
}

function keyPath(key: string): string {
  if (key.length === 0) throw new KvctlError('the key must not be empty', ExitCode.Usage);
  return `/kv/${encodeURIComponent(key)}`;
}

function originOf(url: string): string {
  return new URL(url).origin;
}

function maybeDelivered(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } })?.cause;
  return cause?.code !== undefined && MAYBE_DELIVERED.has(cause.code);
}

function isTimeout(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

/**
 * One request, never following redirects. The whole exchange must end within `timeoutMs`, except with
 * `stream`: then only the answer's headers must arrive in time, and a 200 answer's body is handed back unread.
 */
async function send(
  method: string,
  url: string,
  body: unknown,
  timeoutMs: number,
  client: Pick<KvClientOptions, 'token' | 'fetch'>,
  options: { stream?: boolean; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (client.token) headers.authorization = `Bearer ${client.token}`;
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
    Math.max(1, Math.floor(timeoutMs)),
  );
  let response: Response;
  try {
    try {
      response = await (client.fetch ?? fetch)(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: 'manual',
        signal: controller.signal,
      });
    } catch (error) {
      // A certificate kvctl does not trust stays untrusted: said at once, not retried until the time is up.
      const tls = describeTlsFailure(error);
      if (tls) throw new KvctlError(`TLS failure with ${originOf(url)}: ${tls}`, ExitCode.Failed);
      throw error;
    }
    if (options.stream && response.status === 200 && response.body) {
      clearTimeout(timer);
      return { status: 200, headers: response.headers, body: undefined, url, stream: response.body, abort: () => controller.abort() };
    }
    return await readAnswer(response, url);
  } finally {
    clearTimeout(timer);
  }
}

async function readAnswer(response: Response, url: string): Promise<Answer> {
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, headers: response.headers, body: parsed, url };
}

/**
 * A response body's chunks, failing with a KvctlError when none arrives for `idleMs` or the connection
 * breaks; the request is cancelled however the reading ends.
 */
async function* readWithIdleTimeout(
  stream: ReadableStream<Uint8Array>,
  idleMs: number,
  origin: string,
  abort?: () => void,
): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new KvctlError(`the download from ${origin} stalled: no data for ${idleMs} ms`, ExitCode.Failed)), idleMs);
      });
      let result: Awaited<ReturnType<typeof reader.read>>;
      try {
        result = await Promise.race([reader.read(), idle]);
      } catch (error) {
        if (error instanceof KvctlError) throw error;
        throw new KvctlError(`the download from ${origin} broke off: ${describeNetworkError(error, idleMs)}`, ExitCode.Failed);
      } finally {
        clearTimeout(timer);
      }
      if (result.done) return;
      yield result.value;
    }
  } finally {
    reader.cancel().catch(() => undefined);
    abort?.();
  }
}

/**
 * Concurrent clients: each a sequential process that, until stopped, reads, writes or deletes a random key
 * of a small set (or, in the cas workload, also compares and sets it), with a unique value per write and a
 * timeout per request, and records every operation in the history format of test/linearizability/history.ts.
 *
 * Outcomes, as docs/api.md defines them:
 * - 200 (and 404 "Key not found" for a read): `ok`.
 * - 307: `fail` (nothing was proposed); the client goes to the leader the redirect names.
 * - 503 with `outcome: "failed"`: `fail`. A write's 503 with `outcome: "unknown"`: `unknown`. Every 503
 *   read: `fail` (nothing was read).
 * - 410 "Removed from the cluster" (a node the membership nemesis took out, in its last moments; a write's
 *   with `outcome: "failed"`): `fail`, nothing was proposed.
 * - Connection refused: `fail` (the request never arrived). A timeout, a reset, anything else: `unknown`
 *   for writes (it may have arrived); a read that got no answer is `unknown` (dropped by the checker).
 * - Any other answer (400, 500, ...) is `unknown` for a write and is also reported as unexpected: the
 *   harness sends only valid requests, so it means a bug somewhere.
 * - A compare-and-set (a conditional PUT, see casOnce): 200 is `ok` with `swapped: true`; 412 is `ok` with
 *   `swapped: false`, an observation (the register did not hold the expected value when the entry was
 *   applied) rather than a failure; the rest as for any write.
 *
 * Clients track the leader: they start on a random node, follow redirects, and after a failure or a
 * timeout either ask the same node again or move to a random one; a few requests go to a random node
 * anyway, so followers and cut-off nodes keep being asked too. A share of the writes go to fresh keys
 * (the set workload, see freshWrites).
 *
 * Safe retries (retryWrites, on by default): every write carries its own `Idempotency-Key`, and a write whose
 * outcome is unknown is sent again, the same request with the same key, until an answer settles it (200, or
 * 412 for a cas) or the budget runs out. It stays one operation in the history, from its first request to its
 * last answer: `ok` if any answer settled it, else `unknown`. A retry answered 307, 503 "failed" or refused
 * does not make it `fail`: an earlier attempt may still commit.
 */
import { Rng } from '../simulation/rng';
import { HistoryOp, Outcome } from '../linearizability/history';
import { NodeEndpoint } from './cluster-net';
import { HarnessFetch } from './tls';
import { IndexedWrite } from './watch-checks';

export interface ClientOptions {
  clients: number;
  keys: string[];
  endpoints: readonly NodeEndpoint[];
  /**
   * Per request: uniform in [min, max] ms, drawn for each request. Short ones give up while a fault lasts
   * and ask again (a paused leader then answers requests sent after a new leader took over); long ones
   * outlast the node's own request timeout and see its answer.
   */
  timeoutMs: [number, number];
  rng: Rng;
  now: () => number;
  record: (op: HistoryOp) => void;
  /** Weights of get / put / delete / cas (default: the register workload's, no cas). */
  mix?: Mix;
  /** Think time between a client's operations, in ms: uniform in [min, max]. */
  thinkMs?: [number, number];
  /**
   * Share of writes that go to a fresh key of their own (`f-<client>-<n>`), never written again: the set
   * workload. At the end every fresh key is read: an acknowledged write must be there, a failed one must
   * not. A register shows a lost write only when nothing overwrote it; a fresh key always shows it.
   * Default 0.1.
   */
  freshWrites?: number;
  /**
   * Reads with `?consistency=stale`, which are NOT linearizable: only to show that the suite catches a
   * store that serves stale reads (a self-test of the harness), never in a real run.
   */
  staleReads?: boolean;
  /** How requests are sent (default: the global fetch; with TLS, one that trusts the run's CA). */
  fetch?: HarnessFetch;
  /**
   * Writes carry an `Idempotency-Key` (the write's unique value, or its would-be value for a delete) and a
   * write of unknown outcome is retried with it (to the same node or another, following redirects) until an
   * answer settles it or `retryBudgetMs` after its first request. Default true; false: the writes of the
   * suite before retries (no key, an unknown outcome stays unknown).
   */
  retryWrites?: boolean;
  /** Default 10 s: longer than most faults are held, so most retries end with an answer. */
  retryBudgetMs?: number;
}

/** What the safe retries did (retryWrites). */
export interface RetryCounts {
  /** Writes sent with an Idempotency-Key. */
  keyed: number;
  /** Writes sent more than once, and the requests beyond the first. */
  retried: number;
  attempts: number;
  /** Retried writes an answer settled (ok), and those still unknown when the budget ran out or the run stopped. */
  settled: number;
  exhausted: number;
  /** Answers with `Idempotent-Replayed: true`: the store answered a retry with the first outcome. */
  replayed: number;
}

export interface Unexpected {
  op: HistoryOp;
  status?: number;
  body?: unknown;
  error?: string;
}

type Answer = { status: number; location: string | null; replayed: boolean; body: any } | { error: Error };

/**
 * How often a client picks each operation. `cas` is a read followed, if the read succeeded, by a
 * compare-and-set of the value read (casOnce): both are in the history.
 */
export interface Mix {
  get: number;
  put: number;
  delete: number;
  cas?: number;
}

export type Workload = 'register' | 'cas';
export const WORKLOADS: readonly Workload[] = ['register', 'cas'];

/**
 * - register: reads, blind writes and deletes (a register per key, plus the set workload's fresh keys).
 * - cas: Jepsen's compare-and-set register: half the operations are compare-and-sets, the rest reads, blind
 *   writes and a few deletes (so that create-if-absent, `If-None-Match: *`, is exercised too).
 */
export const WORKLOAD_MIX: Record<Workload, Mix> = {
  register: { get: 0.5, put: 0.35, delete: 0.15 },
  cas: { get: 0.25, put: 0.2, delete: 0.05, cas: 0.5 },
};

/** The key set each workload uses by default: Jepsen's cas register uses a handful of keys. */
export const WORKLOAD_KEYS: Record<Workload, number> = { register: 8, cas: 5 };

/** A conditional write: `expected` the value read (null: the key was absent), at `modIndex`. */
interface CasRequest {
  expected: string | null;
  modIndex: number | null;
}

/** `token`: the write's Idempotency-Key; `persist`: its retries go on after stop() (the harness's own writes). */
type WriteRequest = Pick<HistoryOp, 'op' | 'key' | 'value'> & Partial<CasRequest> & { token?: string; persist?: boolean };

export class ClientPool {
  private stopping = false;
  private loops: Promise<void>[] = [];
  private nextId = 1;
  readonly unexpected: Unexpected[] = [];
  /** The fresh keys written so far (see freshWrites). */
  readonly freshKeys: string[] = [];
  /** Settled writes whose answer named the index that applied them (for the watch check, watch-checks.ts). */
  readonly indexed: IndexedWrite[] = [];
  readonly retries: RetryCounts = { keyed: 0, retried: 0, attempts: 0, settled: 0, exhausted: 0, replayed: 0 };

  constructor(private readonly options: ClientOptions) {}

  start(): void {
    this.loops = Array.from({ length: this.options.clients }, (_, c) => this.loop(`c${c + 1}`, this.options.rng.fork()));
  }

  /** Lets every client finish its operation in flight (at most one timeout), then resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  /** One linearizable read of `key` at a node, recorded in the history as client `client`. */
  async read(client: string, key: string, node: number): Promise<HistoryOp> {
    return this.perform(client, { op: 'get', key }, node, this.options.timeoutMs[1]).then((r) => r.op);
  }

  /**
   * One put of `value` to `key` at a node, recorded in the history as client `client`; with retries on, retried
   * like any write, even after stop().
   */
  async write(client: string, key: string, value: string, node: number): Promise<HistoryOp> {
    return this.perform(client, { op: 'put', key, value, token: value, persist: true }, node, this.options.timeoutMs[1]).then((r) => r.op);
  }

  private async loop(client: string, rng: Rng): Promise<void> {
    const { endpoints, keys } = this.options;
    const mix = this.options.mix ?? WORKLOAD_MIX.register;
    const [thinkMin, thinkMax] = this.options.thinkMs ?? [0, 20];
    let node = rng.int(endpoints.length);
    let seq = 0;
    while (!this.stopping) {
      let key = rng.pick(keys);
      const r = rng.next() * (mix.get + mix.put + mix.delete + (mix.cas ?? 0));
      const kind = r < mix.get ? 'get' : r < mix.get + mix.put ? 'put' : r < mix.get + mix.put + mix.delete ? 'delete' : 'cas';
      const value = `${client}-${++seq}`;
      if (kind === 'put' && rng.chance(this.options.freshWrites ?? 0.1)) {
        key = `f-${value}`;
        this.freshKeys.push(key);
      }
      const target = rng.chance(0.05) ? rng.int(endpoints.length) : node;
      const timeout = rng.range(...this.options.timeoutMs);
      const { op, redirect } =
        kind === 'cas'
          ? await this.casOnce(client, key, value, target, timeout)
          : await this.perform(client, kind === 'put' ? { op: kind, key, value, token: value } : { op: kind, key, token: value }, target, timeout);
      // Follow a redirect; after a failure or a timeout, half the time try the same node again (a paused or
      // cut-off leader then still has clients when it comes back), else another one.
      if (redirect !== undefined) node = redirect;
      else if (op.outcome !== 'ok') node = rng.chance(0.5) ? target : rng.int(endpoints.length);
      else node = target;
      // After a failure, back off a little: an election takes a few hundred ms, no need to spin through it.
      const think = op.outcome === 'ok' || redirect !== undefined ? rng.range(thinkMin, thinkMax) : rng.range(50, 150);
      if (think > 0) await new Promise((resolve) => setTimeout(resolve, think));
    }
  }

  /**
   * Jepsen's cas(expected, new) on an API whose condition is a version (modIndex), not a value: read the key
   * (value and modIndex), then PUT `value` with `If-Match: "<modIndex>"` (`If-None-Match: *` if the key was
   * absent), recorded as cas(expected = the value read, value). Both operations are in the history. Sound
   * because every write's value is unique: the key holds the value read exactly as long as its modIndex is
   * the one read (a later write changes both; no write brings an old value back), so "If-Match holds" and
   * "the register holds `expected`" are the same condition (docs/chaos.md, "The cas workload"). A read that
   * did not succeed leaves nothing to compare with: then the read is the only operation.
   */
  private async casOnce(client: string, key: string, value: string, node: number, timeoutMs: number): Promise<{ op: HistoryOp; redirect?: number }> {
    const read = await this.perform(client, { op: 'get', key }, node, timeoutMs);
    if (read.op.outcome !== 'ok') return read;
    const cas: CasRequest = read.op.result!.found ? { expected: read.op.result!.value!, modIndex: read.modIndex ?? null } : { expected: null, modIndex: null };
    if (cas.expected !== null && cas.modIndex === null) {
      // A 200 without a modIndex: the API promises one (docs/api.md); nothing to compare with.
      this.unexpected.push({ op: read.op, status: 200, body: 'no modIndex in the answer' });
      return read;
    }
    // A linearizable read may come from a follower: the write goes wherever the read was answered, and a
    // follower redirects it.
    return this.perform(client, { op: 'cas', key, value, token: value, ...cas }, node, timeoutMs);
  }

  /**
   * One operation: a request, and for a write of unknown outcome with retries on, the same request again (same
   * Idempotency-Key) until an answer settles it or the budget runs out. Recorded once, when it ends.
   */
  private async perform(client: string, request: WriteRequest, node: number, timeoutMs: number): Promise<{ op: HistoryOp; redirect?: number; modIndex?: number }> {
    const op: HistoryOp = { id: this.nextId++, client, op: request.op, key: request.key, start: 0, outcome: 'unknown' };
    if (request.op === 'cas') op.expected = request.expected ?? null;
    if (request.value !== undefined) op.value = request.value;
    const keyed = request.op !== 'get' && request.token !== undefined && (this.options.retryWrites ?? true);
    if (keyed) this.retries.keyed++;
    op.start = this.options.now();
    const deadline = op.start + (this.options.retryBudgetMs ?? 10_000);
    let answer = await this.send(request, node, timeoutMs, keyed);
    let redirect = this.classify(op, answer);
    // Settled by an answer (ok, or a definite failure of the first request), or not to be retried.
    if (keyed && op.outcome === 'unknown' && !this.unexpectedAnswer(op)) {
      this.retries.retried++;
      const rng = this.options.rng;
      let target = node;
      // (classify() changes op.outcome behind the compiler's back: read it through outcomeOf.)
      while (outcomeOf(op) !== 'ok' && (!this.stopping || request.persist) && this.options.now() < deadline && !this.unexpectedAnswer(op)) {
        // An election takes a few hundred ms; the node that timed out may be the one that comes back first.
        await new Promise((resolve) => setTimeout(resolve, rng.range(100, 300)));
        target = redirect ?? (rng.chance(0.5) ? target : rng.int(this.options.endpoints.length));
        this.retries.attempts++;
        answer = await this.send(request, target, timeoutMs, keyed);
        redirect = this.classify(op, answer);
        // An earlier request may still commit: only an answer that settles the write ends its uncertainty.
        if (outcomeOf(op) === 'fail') op.outcome = 'unknown';
      }
      if (outcomeOf(op) === 'ok') this.retries.settled++;
      else {
        this.retries.exhausted++;
        redirect = undefined;
      }
    }
    op.end = this.options.now();
    this.options.record(op);
    const index = 'body' in answer && Number.isSafeInteger(answer.body?.index) ? (answer.body.index as number) : undefined;
    if (op.op !== 'get' && op.outcome === 'ok' && index !== undefined) this.indexed.push({ op, index });
    const modIndex = 'body' in answer && op.op === 'get' && Number.isSafeInteger(answer.body?.modIndex) ? (answer.body.modIndex as number) : undefined;
    return { op, redirect, modIndex };
  }

  /** Whether the last answer classified for `op` was one the API does not allow (retrying it proves nothing). */
  private unexpectedAnswer(op: HistoryOp): boolean {
    return this.unexpected.length > 0 && this.unexpected[this.unexpected.length - 1].op === op;
  }

  /** One HTTP request of an operation. */
  private async send(request: WriteRequest, node: number, timeoutMs: number, keyed: boolean): Promise<Answer> {
    const base = this.options.endpoints[node].clientUrl;
    const path = `/kv/${encodeURIComponent(request.key)}`;
    const method = request.op === 'get' ? 'GET' : request.op === 'put' || request.op === 'cas' ? 'PUT' : 'DELETE';
    const url = base + path + (request.op === 'get' && this.options.staleReads ? '?consistency=stale' : '');
    const init: RequestInit = { method, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) };
    const headers: Record<string, string> = {};
    if (keyed) headers['idempotency-key'] = request.token!;
    if (request.op === 'put' || request.op === 'cas') {
      headers['content-type'] = 'application/json';
      if (request.op === 'cas') {
        if (request.modIndex === null || request.modIndex === undefined) headers['if-none-match'] = '*';
        else headers['if-match'] = `"${request.modIndex}"`;
      }
      init.body = JSON.stringify({ value: request.value });
    }
    init.headers = headers;
    try {
      const response = await (this.options.fetch ?? fetch)(url, init);
      const text = await response.text();
      let body: any = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON: kept as text for the report.
      }
      const replayed = response.headers.get('idempotent-replayed') === 'true';
      if (replayed) this.retries.replayed++;
      return { status: response.status, location: response.headers.get('location'), replayed, body };
    } catch (error) {
      return { error: error as Error };
    }
  }

  /** Sets op.outcome and op.result from the answer; returns the node a redirect points at. */
  private classify(op: HistoryOp, answer: Answer): number | undefined {
    const write = op.op !== 'get';
    if ('error' in answer) {
      op.outcome = connectionRefused(answer.error) ? 'fail' : 'unknown';
      return undefined;
    }
    const { status, body } = answer;
    if (status === 200 && op.op === 'get' && typeof body?.value === 'string') {
      op.outcome = 'ok';
      op.result = { found: true, value: body.value };
    } else if (status === 404 && op.op === 'get' && body?.error === 'Key not found') {
      op.outcome = 'ok';
      op.result = { found: false };
    } else if (status === 200 && op.op === 'put' && body?.success === true) {
      op.outcome = 'ok';
    } else if (status === 200 && op.op === 'cas' && body?.success === true) {
      op.outcome = 'ok';
      op.result = { swapped: true };
    } else if (status === 412 && op.op === 'cas' && body?.outcome === 'failed') {
      // The condition was evaluated when the entry was applied, at one point of the log: an observation
      // that the key was not at the version read, i.e. did not hold the value read (unique values).
      op.outcome = 'ok';
      op.result = { swapped: false };
    } else if (status === 200 && op.op === 'delete' && body?.success === true && typeof body.existed === 'boolean') {
      op.outcome = 'ok';
      op.result = { found: body.existed };
    } else if (status === 307) {
      op.outcome = 'fail';
      // A Location that is no absolute URL (a leader whose address the node does not know) leads nowhere.
      const location = answer.location && URL.canParse(answer.location) ? new URL(answer.location).origin : undefined;
      const to = this.options.endpoints.findIndex((e) => new URL(e.url).origin === location);
      if (to >= 0) return to;
      this.unexpected.push({ op, status, body });
    } else if (status === 410 && body?.error === 'Removed from the cluster' && (!write || body?.outcome === 'failed')) {
      op.outcome = 'fail';
    } else if (status === 503 && (!write || body?.outcome === 'failed')) {
      op.outcome = 'fail';
    } else if (status === 503 && body?.outcome === 'unknown') {
      op.outcome = 'unknown';
    } else {
      op.outcome = write ? 'unknown' : 'fail';
      this.unexpected.push({ op, status, body });
    }
    return undefined;
  }
}

function outcomeOf(op: HistoryOp): Outcome {
  return op.outcome;
}

/** The request never reached the server: connect() was refused. */
function connectionRefused(error: Error): boolean {
  const cause = (error as { cause?: { code?: string } }).cause;
  return cause?.code === 'ECONNREFUSED';
}

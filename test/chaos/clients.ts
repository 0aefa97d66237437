/**
 * Concurrent clients: each a sequential process that, until stopped, reads, writes or deletes a random key
 * of a small set, with a unique value per write and a timeout per request, and records every operation in
 * the history format of test/linearizability/history.ts.
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
 *
 * Clients track the leader: they start on a random node, follow redirects, and after a failure or a
 * timeout either ask the same node again or move to a random one; a few requests go to a random node
 * anyway, so followers and cut-off nodes keep being asked too. A share of the writes go to fresh keys
 * (the set workload, see freshWrites).
 */
import { Rng } from '../simulation/rng';
import { HistoryOp } from '../linearizability/history';
import { NodeEndpoint } from './cluster-net';
import { HarnessFetch } from './tls';

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
  /** Weights of get / put / delete. */
  mix?: { get: number; put: number; delete: number };
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
}

export interface Unexpected {
  op: HistoryOp;
  status?: number;
  body?: unknown;
  error?: string;
}

type Answer = { status: number; location: string | null; body: any } | { error: Error };

const DEFAULT_MIX = { get: 0.5, put: 0.35, delete: 0.15 };

export class ClientPool {
  private stopping = false;
  private loops: Promise<void>[] = [];
  private nextId = 1;
  readonly unexpected: Unexpected[] = [];
  /** The fresh keys written so far (see freshWrites). */
  readonly freshKeys: string[] = [];

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

  private async loop(client: string, rng: Rng): Promise<void> {
    const { endpoints, keys } = this.options;
    const mix = this.options.mix ?? DEFAULT_MIX;
    const [thinkMin, thinkMax] = this.options.thinkMs ?? [0, 20];
    let node = rng.int(endpoints.length);
    let seq = 0;
    while (!this.stopping) {
      let key = rng.pick(keys);
      const r = rng.next() * (mix.get + mix.put + mix.delete);
      const kind = r < mix.get ? 'get' : r < mix.get + mix.put ? 'put' : 'delete';
      const value = `${client}-${++seq}`;
      if (kind === 'put' && rng.chance(this.options.freshWrites ?? 0.1)) {
        key = `f-${value}`;
        this.freshKeys.push(key);
      }
      const request = kind === 'put' ? { op: kind, key, value } : { op: kind, key };
      const target = rng.chance(0.05) ? rng.int(endpoints.length) : node;
      const timeout = rng.range(...this.options.timeoutMs);
      const { op, redirect } = await this.perform(client, request as Pick<HistoryOp, 'op' | 'key' | 'value'>, target, timeout);
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

  private async perform(
    client: string,
    request: Pick<HistoryOp, 'op' | 'key' | 'value'>,
    node: number,
    timeoutMs: number,
  ): Promise<{ op: HistoryOp; redirect?: number }> {
    const base = this.options.endpoints[node].clientUrl;
    const path = `/kv/${encodeURIComponent(request.key)}`;
    const op: HistoryOp = { id: this.nextId++, client, op: request.op, key: request.key, start: 0, outcome: 'unknown' };
    if (request.value !== undefined) op.value = request.value;
    const method = request.op === 'get' ? 'GET' : request.op === 'put' ? 'PUT' : 'DELETE';
    const url = base + path + (request.op === 'get' && this.options.staleReads ? '?consistency=stale' : '');
    const init: RequestInit = { method, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) };
    if (request.op === 'put') {
      init.headers = { 'content-type': 'application/json' };
      init.body = JSON.stringify({ value: request.value });
    }
    let answer: Answer;
    op.start = this.options.now();
    try {
      const response = await (this.options.fetch ?? fetch)(url, init);
      const text = await response.text();
      let body: any = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON: kept as text for the report.
      }
      answer = { status: response.status, location: response.headers.get('location'), body };
    } catch (error) {
      answer = { error: error as Error };
    }
    op.end = this.options.now();
    const redirect = this.classify(op, answer);
    this.options.record(op);
    return { op, redirect };
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

/** The request never reached the server: connect() was refused. */
function connectionRefused(error: Error): boolean {
  const cause = (error as { cause?: { code?: string } }).cause;
  return cause?.code === 'ECONNREFUSED';
}

import { HttpService } from '@nestjs/axios';
import type { AxiosResponse } from 'axios';
import { firstValueFrom, timeout as within } from 'rxjs';
import type { AddMemberAnswer, AddMemberRequest } from './membership-node';

/**
 * The joining node's side of `POST /cluster/members` and `POST /cluster/members/:nodeId/promote`: per-request
 * admin calls through @nestjs/axios's HttpService (the design card's choice for joins), retried while the
 * cluster cannot answer yet, given up at once when it refuses.
 */

/** The cluster refused the join or the promotion for good (4xx), or never answered in time. */
export class JoinError extends Error {
  constructor(
    message: string,
    /** The HTTP status of a refusal; undefined when the cluster did not answer in time. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'JoinError';
  }
}

export interface JoinOptions {
  /** CLUSTER_TOKEN, sent as `Authorization: Bearer` (the membership routes need it when the cluster has one). */
  token?: string;
  /** Give up after this long, retries included. */
  timeoutMs: number;
  /** Pause between attempts (default 500 ms). */
  retryMs?: number;
  log?: (line: string) => void;
}

export interface PromoteOptions {
  token?: string;
  retryMs?: number;
  /** Budget of one request (default 10 s: the leader answers once the change commits, or after its REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** True once this node knows itself a voter (the promotion applied here): asking stops. */
  isVoter: () => boolean;
  log?: (line: string) => void;
  /** Stops asking (the node is shutting down); the promise then resolves. */
  signal?: AbortSignal;
}

const DEFAULT_RETRY_MS = 500;
const MAX_REDIRECTS = 5;

/** The answer of one request whose redirects were followed; `url` is where the last one went. */
interface Answer {
  url: string;
  status: number;
  data: unknown;
}

/** What a member answered after `attempt`: an answer, or why there is none (no answer, too many redirects). */
type Outcome = { answer: Answer } | { problem: string };

/**
 * Asks the cluster to add this node: POSTs `request` to `<joinUrl>/cluster/members`, follows a 307 to the
 * leader itself (reading `Location`: a POST must not be left to a client's redirect policy), and retries every
 * `retryMs` while no leader can take it (503, a node that does not answer) until `timeoutMs`. A repeated
 * request is safe: the leader answers a member already added as asked with 200 and the same shape.
 * Rejects with a JoinError at once on a refusal (400, 401, 403, 409, 410, any 4xx; but a 409 for another
 * change in progress is waited out like a 503), naming the reason; and
 * when `timeoutMs` passes, with the last problem met.
 */
export async function joinCluster(http: HttpService, joinUrl: string, request: AddMemberRequest, opts: JoinOptions): Promise<AddMemberAnswer> {
  const deadline = Date.now() + opts.timeoutMs;
  const retryMs = opts.retryMs ?? DEFAULT_RETRY_MS;
  const start = `${joinUrl.replace(/\/+$/, '')}/cluster/members`;
  let problem = 'no answer';
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new JoinError(`could not join the cluster through ${joinUrl} within ${opts.timeoutMs} ms: ${problem}`);
    const outcome = await ask(http, start, request, { token: opts.token, timeoutMs: remaining, deadline });
    if ('answer' in outcome) {
      const { url, status, data } = outcome.answer;
      if (status === 200 || status === 201) {
        if (!isAddMemberAnswer(data)) throw new JoinError(`${originOf(url)} answered ${status} without an add-member answer`, status);
        return data;
      }
      // Another change in flight (another node joining at the same moment) passes: wait for it, as for 503.
      const pending = status === 409 && /membership change is in progress/.test(detail(data));
      if (status >= 400 && status < 500 && !pending) throw new JoinError(refusal('join refused', outcome.answer), status);
      problem = `${originOf(url)} answered ${status}${detail(data)}`;
    } else {
      problem = outcome.problem;
    }
    opts.log?.(`join: ${problem}; retrying in ${retryMs} ms`);
    await pause(Math.min(retryMs, Math.max(0, deadline - Date.now())));
  }
}

/**
 * Asks the leader, until it accepts, to promote this learner to voter: `POST <url>/cluster/members/<nodeId>/promote`
 * to each of `urls()` in turn (following a 307 to the leader) every `retryMs`. 409 (not caught up yet, another
 * change pending) means wait and ask again; 503 or no answer, ask the next URL. Resolves on a 200, when
 * `isVoter()` turns true, or when `signal` aborts; rejects with a JoinError on any other refusal (404: no
 * longer a member; 401/403: the token; 410: the node asked was removed).
 */
export async function promoteWhenCaughtUp(http: HttpService, urls: () => string[], nodeId: string, opts: PromoteOptions): Promise<void> {
  const retryMs = opts.retryMs ?? DEFAULT_RETRY_MS;
  const path = `/cluster/members/${encodeURIComponent(nodeId)}/promote`;
  let lastReported: string | undefined;
  const report = (line: string) => {
    // One line per new reason: "not caught up" answers come every retryMs while a learner catches up.
    if (line !== lastReported) opts.log?.(line);
    lastReported = line;
  };
  while (!opts.signal?.aborted && !opts.isVoter()) {
    for (const url of urls()) {
      if (opts.signal?.aborted) return;
      const timeoutMs = opts.requestTimeoutMs ?? 10_000;
      const outcome = await ask(http, `${url.replace(/\/+$/, '')}${path}`, undefined, {
        token: opts.token,
        timeoutMs,
        deadline: Date.now() + timeoutMs,
        signal: opts.signal,
      });
      if (!('answer' in outcome)) {
        report(`promote: ${outcome.problem}`);
        continue;
      }
      const { answer } = outcome;
      if (answer.status === 200) {
        opts.log?.(`promote: ${nodeId} is a voter now (through ${originOf(answer.url)})`);
        return;
      }
      if (answer.status === 409) {
        report(`promote: not yet${detail(answer.data)}; asking again every ${retryMs} ms`);
        break;
      }
      if (answer.status >= 400 && answer.status < 500) throw new JoinError(refusal(`promotion of ${nodeId} refused`, answer), answer.status);
      report(`promote: ${originOf(answer.url)} answered ${answer.status}${detail(answer.data)}`);
    }
    await pause(retryMs, opts.signal);
  }
}

/** One request and the redirects it meets (each to the `Location` given, relative to the request's URL). */
async function ask(
  http: HttpService,
  url: string,
  body: unknown,
  o: { token?: string; timeoutMs: number; deadline: number; signal?: AbortSignal },
): Promise<Outcome> {
  let target = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const timeoutMs = Math.max(1, Math.min(o.timeoutMs, o.deadline - Date.now()));
    let response: AxiosResponse<unknown>;
    try {
      response = await firstValueFrom(
        http.post<unknown>(target, body, {
          timeout: timeoutMs,
          maxRedirects: 0,
          responseType: 'json',
          validateStatus: () => true,
          headers: o.token ? { authorization: `Bearer ${o.token}` } : undefined,
          signal: o.signal,
        }).pipe(within({ first: timeoutMs })),
      );
    } catch (error) {
      return { problem: `${originOf(target)}: ${describe(error, timeoutMs)}` };
    }
    const location = header(response, 'location');
    if ((response.status === 307 || response.status === 308) && location) {
      target = new URL(location, target).href;
      continue;
    }
    return { answer: { url: target, status: response.status, data: response.data } };
  }
  return { problem: `more than ${MAX_REDIRECTS} redirects from ${originOf(url)} (last to ${originOf(target)}): the leader is changing` };
}

function header(response: AxiosResponse<unknown>, name: string): string | undefined {
  const value = (response.headers as Record<string, unknown>)?.[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function isAddMemberAnswer(data: unknown): data is AddMemberAnswer {
  const a = data as Partial<AddMemberAnswer> | null;
  return typeof a?.clusterId === 'string' && typeof a.index === 'number' && Array.isArray(a.initialVoters) && Array.isArray(a.members);
}

const HINTS: Record<number, string> = {
  401: ' (the cluster has a CLUSTER_TOKEN: start this node with the same one)',
  403: ' (the token is not allowed to change the membership)',
  410: ' (the node asked was removed from the cluster: JOIN another member)',
};

function refusal(what: string, { url, status, data }: Answer): string {
  return `${what} by ${originOf(url)}: HTTP ${status}${detail(data)}${HINTS[status] ?? ''}`;
}

/** `: <the answer's error>`, or nothing when it has none. */
function detail(data: unknown): string {
  const error = (data as { error?: unknown } | null)?.error;
  return typeof error === 'string' && error !== '' ? `: ${error}` : '';
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

function describe(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; code?: string; message?: string };
  if (e?.name === 'TimeoutError' || e?.code === 'ECONNABORTED' || e?.code === 'ETIMEDOUT') return `no answer within ${timeoutMs} ms`;
  if (e?.name === 'CanceledError' || e?.code === 'ERR_CANCELED') return 'cancelled';
  return e?.message || e?.code || 'request failed';
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

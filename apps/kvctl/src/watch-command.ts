import { ExitCode, KvctlError } from './kvctl-error';
import { describeNetworkError, parseEndpoint } from './kv-client';
import { SseParser } from './sse-parser';
import { describeTlsFailure } from './tls-options';

/** One change as `kvctl watch` prints it. */
export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  value?: string;
  index: number;
}

export interface WatchOptions {
  endpoints: string[];
  /** Exactly one of key and prefix. */
  key?: string;
  prefix?: string;
  fromIndex?: number;
  token?: string;
  fetch?: typeof fetch;
  /** Give up once no node has answered for this long (a connection that breaks is retried until then). */
  timeoutMs: number;
  /** A stream that brings nothing (not even a heartbeat) for this long is taken for dead and reopened. */
  idleMs?: number;
  /** Stop after this many events (scripts, tests); undefined: until interrupted. */
  count?: number;
  /** Stops the watch (SIGINT). */
  signal?: AbortSignal;
  /** Called for each event, in order. */
  onEvent: (event: WatchEvent) => void;
  /** Told of reconnections, on stderr. */
  onNotice?: (text: string) => void;
}

/** Three heartbeats of a node with the default WATCH_HEARTBEAT_MS. */
const DEFAULT_IDLE_MS = 45_000;
const RETRY_MS = 500;

/** The way a watch connection ended, when it did not end the command. */
type Ending = { kind: 'dropped'; why: string } | { kind: 'done' };

/**
 * `kvctl watch`: follows a key or prefix over GET /watch, on any node. A connection that breaks, goes idle, or
 * that the node closes (shutdown, removal, a snapshot restore) is reopened on the next endpoint with
 * `Last-Event-ID`, so no change is missed or printed twice. A 410 (the history no longer reaches back to
 * where the watch is) ends the command with exit code 1 and says how to go on.
 */
export async function watchCommand(options: WatchOptions): Promise<void> {
  if ((options.key === undefined) === (options.prefix === undefined)) throw new KvctlError('give a key or --prefix, not both', ExitCode.Usage);
  if (options.key === '') throw new KvctlError('the key must not be empty', ExitCode.Usage);
  if (options.endpoints.length === 0) throw new KvctlError('no endpoints given', ExitCode.Usage);
  const endpoints = options.endpoints.map(parseEndpoint);
  const query =
    options.key !== undefined ? `key=${encodeURIComponent(options.key)}` : `prefix=${encodeURIComponent(options.prefix!)}`;
  let lastEventId: string | undefined = options.fromIndex !== undefined ? String(options.fromIndex - 1) : undefined;
  let remaining = options.count;
  let turn = 0;
  let lastAnswer = Date.now();
  const problems: string[] = [];
  while (!options.signal?.aborted) {
    const endpoint = endpoints[turn % endpoints.length];
    const ending = await connect(endpoint);
    if (ending.kind === 'done') return;
    problems.push(`${endpoint}: ${ending.why}`);
    if (Date.now() - lastAnswer > options.timeoutMs) {
      throw new KvctlError(`cannot watch: no node answered for ${options.timeoutMs} ms (${problems.slice(-endpoints.length).join('; ')})`, ExitCode.Failed);
    }
    options.onNotice?.(`kvctl: ${endpoint}: ${ending.why}; reconnecting${lastEventId !== undefined ? ` after index ${lastEventId}` : ''}\n`);
    turn++;
    await sleep(turn % endpoints.length === 0 ? RETRY_MS : 0, options.signal);
  }

  async function connect(endpoint: string): Promise<Ending> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    const controller = new AbortController();
    const stop = () => controller.abort();
    options.signal?.addEventListener('abort', stop);
    const idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(new DOMException('idle', 'TimeoutError')), idleMs);
    };
    try {
      armIdle();
      let response: Response;
      try {
        response = await (options.fetch ?? fetch)(`${endpoint}/watch?${query}`, { headers, signal: controller.signal, redirect: 'manual' });
      } catch (error) {
        if (options.signal?.aborted) return { kind: 'done' };
        const tls = describeTlsFailure(error);
        if (tls) throw new KvctlError(`TLS failure with ${endpoint}: ${tls}`, ExitCode.Failed);
        return { kind: 'dropped', why: describeNetworkError(error, idleMs) };
      }
      lastAnswer = Date.now();
      if (response.status !== 200 || !response.body) return await refused(endpoint, response);
      let ending: Ending | undefined;
      const parser = new SseParser((event) => {
        if (ending) return;
        if (event.event === 'put' || event.event === 'delete') {
          const data = JSON.parse(event.data) as { key: string; value?: string; index: number };
          options.onEvent({ type: event.event, key: data.key, ...(data.value !== undefined ? { value: data.value } : {}), index: data.index });
          lastEventId = event.id;
          if (remaining !== undefined && --remaining <= 0) ending = { kind: 'done' };
        } else if (event.event === 'compacted' || event.event === 'closed') {
          // Another node may still hold the history; if none does, the reconnection answers 410.
          ending = { kind: 'dropped', why: `the node ended the stream (${event.event}: ${safeError(event.data)})` };
        }
      });
      const decoder = new TextDecoder();
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return ending ?? { kind: 'dropped', why: 'the node closed the stream' };
          armIdle();
          lastAnswer = Date.now();
          parser.push(decoder.decode(value, { stream: true }));
          // The start frame's id counts too: a resume before any event starts where this one did.
          if (parser.lastEventId !== '' && (lastEventId === undefined || Number(parser.lastEventId) > Number(lastEventId))) {
            lastEventId = parser.lastEventId;
          }
          if (ending) return ending;
        }
      } catch (error) {
        if (options.signal?.aborted) return { kind: 'done' };
        return { kind: 'dropped', why: `the stream broke off (${describeNetworkError(error, idleMs)})` };
      } finally {
        reader.cancel().catch(() => undefined);
      }
    } finally {
      clearTimeout(idle);
      options.signal?.removeEventListener('abort', stop);
      controller.abort();
    }
  }
}

async function refused(endpoint: string, response: Response): Promise<Ending> {
  const text = await response.text().catch(() => '');
  let body: { error?: string; oldestIndex?: number } = {};
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  const detail = body.error ?? `HTTP ${response.status}`;
  if (response.status === 410 && typeof body.oldestIndex === 'number') {
    throw new KvctlError(
      `the watch history no longer reaches back that far (${detail}). Re-read the keys, then watch with --from-index ${body.oldestIndex}`,
      ExitCode.Failed,
    );
  }
  if (response.status === 400) throw new KvctlError(`refused by the node: ${detail}`, ExitCode.Usage);
  if (response.status === 401 || response.status === 403) throw new KvctlError(`${endpoint} answered ${response.status}: ${detail}`, ExitCode.Failed);
  // 410 without oldestIndex (a removed node), 503, ...: another node may serve the watch.
  return { kind: 'dropped', why: `answered ${response.status}: ${detail}` };
}

function safeError(data: string): string {
  try {
    return (JSON.parse(data) as { error?: string }).error ?? data;
  } catch {
    return data;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** One line per event: `<index> PUT <key> <value>` or `<index> DELETE <key>` (newlines in values escaped). */
export function formatWatchEvent(event: WatchEvent): string {
  if (event.type === 'delete') return `${event.index} DELETE ${event.key}\n`;
  return `${event.index} PUT ${event.key} ${JSON.stringify(event.value).slice(1, -1)}\n`;
}

/**
 * The run's watchers (docs/chaos.md, "Watchers"): a few clients of `GET /watch` that follow the workload's keys
 * through every fault, the way a careful application would, and record every event for watch-checks.ts.
 *
 * Each watcher starts on its own node with `fromIndex=1`, before the clients. Its connection ends when the node
 * ends the stream (`event: compacted` after a snapshot install, `event: closed`), when the stream goes silent
 * for `idleMs` (the nodes send a heartbeat every WATCH_HEARTBEAT_MS; a paused or killed node sends nothing),
 * when it breaks, and on purpose every few seconds (a hop), so that resuming is exercised all run long. It
 * then resumes on another node with `Last-Event-ID` = the last index it saw: the same segment goes on.
 *
 * A `410` (the node's history no longer reaches back to that index: it restarted from a snapshot, installed
 * one, or trimmed its history) sends the watcher to the other nodes, which may hold an older history. Only
 * when every node was asked since the first 410 and none served does it reset as the API says: re-read the
 * keys (a linearizable listing), then watch from the smallest `oldestIndex` it was given, in a new segment.
 */
import { Rng } from '../simulation/rng';
import { NodeEndpoint } from './cluster-net';
import { HarnessFetch } from './tls';
import { WatcherLog, WatchEvent, WatchFilter, WatchSegment, matches } from './watch-checks';

export interface WatcherOptions {
  endpoints: readonly NodeEndpoint[];
  /** One watcher per filter; watcher i starts on node i (modulo the cluster size). */
  filters: readonly WatchFilter[];
  rng: Rng;
  now: () => number;
  fetch?: HarnessFetch;
  /** A stream silent this long is taken for dead (default 2000 ms: four heartbeats of WATCH_HEARTBEAT_MS=500). */
  idleMs?: number;
  /** Each connection is ended on purpose after a time drawn in this range (default 1-4 s). */
  hopMs?: [number, number];
}

/** What the watchers did, summed over all of them. */
export interface WatcherCounts {
  watchers: number;
  events: number;
  /** Connections after the first, and why the previous one ended. */
  reconnects: number;
  hops: number;
  ended: number;
  idle: number;
  broken: number;
  /** 410 answers, and resets (every node answered 410 or nothing: re-read, new segment). */
  gone: number;
  resets: number;
  /** Connections refused, timed out or answered anything but 200 or 410 with oldestIndex. */
  unavailable: number;
}

/** The heartbeat the nodes are started with, so that a silent stream is found quickly. */
export const WATCH_HEARTBEAT_MS = 500;

type Ending = 'hop' | 'ended' | 'idle' | 'broken' | 'stopped' | { gone: number } | 'unavailable';

class ChaosWatcher {
  readonly log: WatcherLog;
  readonly counts = { events: 0, connects: 0, hop: 0, ended: 0, idle: 0, broken: 0, gone: 0, resets: 0, unavailable: 0 };
  /** Answers that break the API's promises about the stream itself (a start frame that does not resume where asked). */
  readonly problems: string[] = [];
  private stopped = false;
  /** The current segment has been served once: later connections resume it with Last-Event-ID. */
  private resumed = false;
  private controller?: AbortController;
  private seenEnd?: () => void;
  private endMarker?: { key: string; value: string };
  endSeen = false;

  constructor(
    name: string,
    filter: WatchFilter,
    private node: number,
    private readonly options: WatcherOptions,
    private readonly rng: Rng,
  ) {
    this.log = { name, filter, segments: [{ from: 1, to: 0, events: [] }] };
  }

  private get segment(): WatchSegment {
    return this.log.segments[this.log.segments.length - 1];
  }

  async run(): Promise<void> {
    const n = this.options.endpoints.length;
    // Since the first 410 of a resume attempt: the nodes asked, and the oldest index each offered.
    let sweep: Map<number, number | undefined> | undefined;
    while (!this.stopped) {
      const ending = await this.connect(this.node);
      if (this.stopped) return;
      if (ending === 'hop' || ending === 'ended' || ending === 'idle' || ending === 'broken') this.counts[ending]++;
      if (typeof ending === 'object' || ending === 'unavailable') {
        if (typeof ending === 'object') sweep ??= new Map();
        sweep?.set(this.node, typeof ending === 'object' ? ending.gone : undefined);
        if (sweep && sweep.size === n) {
          const offered = [...sweep].filter(([, oldest]) => oldest !== undefined) as [number, number][];
          if (offered.length > 0) {
            const [node, oldest] = offered.reduce((a, b) => (b[1] < a[1] ? b : a));
            await this.reset(oldest);
            this.node = node;
            sweep = undefined;
            continue;
          }
          sweep = undefined;
        }
        // Next node in turn; a short pause once every node was tried (a majority may be down for a while).
        this.node = (this.node + 1) % n;
        if (!sweep || sweep.size % n === 0) await sleep(this.rng.range(100, 200));
        continue;
      }
      sweep = undefined;
      // Served, then ended: resume elsewhere (any other node), as a client would after losing its node.
      this.node = n === 1 ? 0 : (this.node + 1 + this.rng.int(n - 1)) % n;
    }
  }

  /** Stops at the next event or at once. */
  stop(): void {
    this.stopped = true;
    this.controller?.abort();
  }

  /** Resolves once an event puts `value` in `key` (the run's end marker), proving the watcher caught up. */
  waitFor(key: string, value: string): Promise<void> {
    this.endMarker = { key, value };
    if (this.endSeen || this.segment.events.some((e) => e.key === key && e.value === value)) {
      this.endSeen = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.seenEnd = resolve));
  }

  /** Every node answered 410 or nothing: re-read the keys, then a new segment from `oldest`. */
  private async reset(oldest: number): Promise<void> {
    this.counts.resets++;
    const filter = this.log.filter;
    const prefix = 'key' in filter ? filter.key : filter.prefix;
    // The API's recipe: a linearizable read first, so the state read is at least at oldest - 1. The watch check
    // does not use what it read (the new segment is checked on its own); a read that fails is retried once.
    for (let attempt = 0; attempt < 2; attempt++) {
      const url = `${this.options.endpoints[this.rng.int(this.options.endpoints.length)].clientUrl}/kv?prefix=${encodeURIComponent(prefix)}&keysOnly=true&limit=1000`;
      const ok = await (this.options.fetch ?? fetch)(url, { signal: AbortSignal.timeout(3000) }).then(
        (r) => r.text().then(() => r.status === 200),
        () => false,
      );
      if (ok) break;
    }
    this.log.segments.push({ from: oldest, to: oldest - 1, events: [] });
    this.resumed = false;
  }

  private async connect(node: number): Promise<Ending> {
    const endpoint = this.options.endpoints[node];
    const filter = this.log.filter;
    const query = 'key' in filter ? `key=${encodeURIComponent(filter.key)}` : `prefix=${encodeURIComponent(filter.prefix)}`;
    const controller = new AbortController();
    this.controller = controller;
    let reason: Ending | undefined;
    const end = (why: Ending) => {
      reason ??= why;
      controller.abort();
    };
    const idleMs = this.options.idleMs ?? 2000;
    let idle = setTimeout(() => end('idle'), idleMs);
    const [hopMin, hopMax] = this.options.hopMs ?? [1000, 4000];
    const hop = setTimeout(() => end('hop'), this.rng.range(hopMin, hopMax));
    const asked = this.segment.to;
    // A segment starts with fromIndex (the first watch, or oldestIndex after a reset) and goes on with
    // Last-Event-ID, as a client that follows the API does; both must start the stream right after `asked`.
    const fresh = !this.resumed;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (!fresh) headers['last-event-id'] = String(asked);
    try {
      let response: Response;
      try {
        response = await (this.options.fetch ?? fetch)(`${endpoint.clientUrl}/watch?${query}${fresh ? `&fromIndex=${asked + 1}` : ''}`, {
          headers,
          signal: controller.signal,
          redirect: 'manual',
        });
      } catch {
        if (this.stopped) return 'stopped';
        this.counts.unavailable++;
        return 'unavailable';
      }
      this.counts.connects++;
      if (response.status !== 200 || !response.body) {
        const body = (await response.json().catch(() => undefined)) as { oldestIndex?: number } | undefined;
        if (response.status === 410 && Number.isSafeInteger(body?.oldestIndex)) {
          this.counts.gone++;
          // The API: a 410 means the history starts after what was asked, and names where it starts.
          if (body!.oldestIndex! <= asked + 1) this.problems.push(`${endpoint.name} answered 410 to ${fresh ? 'fromIndex' : 'Last-Event-ID'} ${fresh ? asked + 1 : asked} with oldestIndex ${body!.oldestIndex}`);
          return { gone: body!.oldestIndex! };
        }
        this.counts.unavailable++;
        return 'unavailable';
      }
      this.resumed = true;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      let first = true;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return reason ?? 'broken';
          clearTimeout(idle);
          idle = setTimeout(() => end('idle'), idleMs);
          buffer += decoder.decode(value, { stream: true });
          for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
            const frame = parseFrame(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
            if (first && frame.id !== undefined) {
              first = false;
              // The start frame's id is the index before the first one the stream may send: where we asked.
              if (frame.id !== String(asked)) this.problems.push(`${endpoint.name} answered Last-Event-ID ${asked} with a stream starting after ${frame.id}`);
            }
            if (frame.event === 'put' || frame.event === 'delete') this.record(frame.event, frame.data, frame.id);
            else if (frame.event === 'compacted' || frame.event === 'closed') end('ended');
            if (reason !== undefined) break;
          }
          if (reason !== undefined) return reason;
        }
      } catch {
        if (this.stopped) return 'stopped';
        return reason ?? 'broken';
      } finally {
        reader.cancel().catch(() => undefined);
      }
    } finally {
      clearTimeout(idle);
      clearTimeout(hop);
      controller.abort();
    }
  }

  private record(type: 'put' | 'delete', data: string | undefined, id: string | undefined): void {
    let parsed: { key?: unknown; value?: unknown; index?: unknown } | undefined;
    try {
      parsed = data === undefined ? undefined : JSON.parse(data);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed?.key !== 'string' || !Number.isSafeInteger(parsed.index) || String(parsed.index) !== id || (type === 'put' && typeof parsed.value !== 'string')) {
      this.problems.push(`an event the API does not allow: id ${id}, event ${type}, data ${data}`);
      return;
    }
    const event: WatchEvent = { index: parsed.index as number, type, key: parsed.key };
    if (type === 'put') event.value = parsed.value as string;
    this.counts.events++;
    const segment = this.segment;
    segment.events.push(event);
    segment.to = Math.max(segment.to, event.index);
    if (this.endMarker && event.key === this.endMarker.key && event.value === this.endMarker.value && matches(this.log.filter, event.key)) {
      this.endSeen = true;
      this.seenEnd?.();
    }
  }
}

/** The fields of one SSE frame (the nodes write `\n` line ends and one data line). */
function parseFrame(text: string): { id?: string; event?: string; data?: string } {
  const frame: { id?: string; event?: string; data?: string } = {};
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id' || field === 'event' || field === 'data') frame[field] = value;
  }
  return frame;
}

export class WatcherPool {
  private readonly watchers: ChaosWatcher[];
  private loops: Promise<void>[] = [];

  constructor(private readonly options: WatcherOptions) {
    const n = options.endpoints.length;
    this.watchers = options.filters.map((filter, i) => new ChaosWatcher(`w${i + 1}`, filter, i % n, options, options.rng.fork()));
  }

  start(): void {
    this.loops = this.watchers.map((w) => w.run());
  }

  /**
   * Waits until every watcher saw the end marker (a put written after the clients stopped), so that each one's
   * last segment reaches the end of the run; resolves with the names of those that did not within `timeoutMs`.
   */
  async waitForEnd(key: string, value: string, timeoutMs: number): Promise<string[]> {
    const following = this.watchers.filter((w) => matches(w.log.filter, key));
    let timer: NodeJS.Timeout | undefined;
    // The timer is cleared once they all caught up: a pending one would keep the process (and jest) alive.
    await Promise.race([Promise.all(following.map((w) => w.waitFor(key, value))), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    return following.filter((w) => !w.endSeen).map((w) => w.log.name);
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.stop();
    await Promise.all(this.loops);
  }

  get logs(): WatcherLog[] {
    return this.watchers.map((w) => w.log);
  }

  get problems(): string[] {
    return this.watchers.flatMap((w) => w.problems.map((p) => `${w.log.name}: ${p}`));
  }

  get counts(): WatcherCounts {
    const sum = (f: (c: ChaosWatcher['counts']) => number) => this.watchers.reduce((s, w) => s + f(w.counts), 0);
    return {
      watchers: this.watchers.length,
      events: sum((c) => c.events),
      reconnects: sum((c) => Math.max(0, c.connects - 1)),
      hops: sum((c) => c.hop),
      ended: sum((c) => c.ended),
      idle: sum((c) => c.idle),
      broken: sum((c) => c.broken),
      gone: sum((c) => c.gone),
      resets: sum((c) => c.resets),
      unavailable: sum((c) => c.unavailable),
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

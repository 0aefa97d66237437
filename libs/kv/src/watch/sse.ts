import { KvChange } from './kv-change';

/**
 * Server-Sent Events frames (WHATWG HTML, "Server-sent events"). The data is one line of JSON (JSON.stringify
 * escapes CR and LF, the only line ends SSE knows), so a value can hold anything.
 */

/** A change: `id` is its log index (what a client sends back as Last-Event-ID), `event` put or delete. */
export function formatChange(change: KvChange): string {
  const data =
    change.type === 'put'
      ? JSON.stringify({ key: change.key, value: change.value, index: change.index })
      : JSON.stringify({ key: change.key, index: change.index });
  return `id: ${change.index}\nevent: ${change.type}\ndata: ${data}\n\n`;
}

/**
 * Sent first: sets the client's last event id to the index before the first one it can receive, without
 * dispatching an event (a frame with an id and no data), so that a client dropped before any change still
 * resumes from where it started. The retry field is the reconnection delay a browser EventSource uses.
 */
export function formatStart(startIndex: number, retryMs: number): string {
  return `: watching from index ${startIndex}\nretry: ${retryMs}\nid: ${startIndex - 1}\n\n`;
}

/** The watcher fell behind the history (or the node restored a snapshot): no gap is ever skipped silently. */
export function formatCompacted(oldestIndex: number, reason: string): string {
  return `event: compacted\ndata: ${JSON.stringify({ error: reason, oldestIndex })}\n\n`;
}

/** The node ends the stream (shutting down, removed from the cluster); the client may resume elsewhere. */
export function formatClosed(reason: string): string {
  return `event: closed\ndata: ${JSON.stringify({ error: reason })}\n\n`;
}

/** A comment line: ignored by clients, keeps idle connections alive through proxies. */
export const HEARTBEAT = ': ping\n\n';

/**
 * Parses a Last-Event-ID header into the fromIndex it asks for (the index after it), or undefined when the
 * header is absent. Throws RangeError for a value that is not a whole number.
 */
export function fromLastEventId(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const text = (Array.isArray(header) ? header[0] : header).trim();
  if (!/^\d{1,15}$/.test(text)) throw new RangeError('Last-Event-ID must be a log index (a whole number)');
  return Number(text) + 1;
}

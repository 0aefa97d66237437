/** One dispatched Server-Sent Event. */
export interface SseEvent {
  /** The `event:` field ('message' when absent). */
  event: string;
  data: string;
  /** The last event id in force when it was dispatched ('' when none yet). */
  id: string;
}

/**
 * An incremental `text/event-stream` parser after the WHATWG HTML rules: lines end with CRLF, LF or CR; `:`
 * starts a comment; an empty line dispatches the event (none when it has no data, though an `id:` still sets
 * lastEventId, which is what a reconnection sends as Last-Event-ID).
 */
export class SseParser {
  lastEventId = '';
  comments = 0;
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private pendingId: string | undefined;

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  push(text: string): void {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\n|\r/.exec(this.buffer);
      // A lone CR at the end may be the start of a CRLF: wait for the next chunk.
      if (!match || (match[0] === '\r' && match.index === this.buffer.length - 1)) return;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.pendingId = value;
  }

  private dispatch(): void {
    if (this.pendingId !== undefined) this.lastEventId = this.pendingId;
    this.pendingId = undefined;
    const data = this.data;
    const event = this.event || 'message';
    this.data = [];
    this.event = '';
    if (data.length === 0) return;
    this.onEvent({ event, data: data.join('\n'), id: this.lastEventId });
  }
}

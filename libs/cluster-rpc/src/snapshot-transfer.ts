import { Message, NodeId } from '@app/consensus/core';
import { ClientRequest, IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { FRAME_HEADER, sealFrame } from './frame';
import { encodeMessages } from './message-codec';
import { PEER_SNAPSHOT_CONTENT_TYPE, PEER_SNAPSHOT_PATH } from './peer-protocol';
import { StallWatchdog } from './stall-watchdog';

/** A snapshot file as SnapshotFiles.openForSending() returns it. */
export interface SnapshotSource {
  size: number;
  stream: AsyncIterable<Uint8Array>;
}

/** How an outgoing snapshot transfer ended. */
export interface SnapshotTransferResult {
  /** False only when the peer answered 200: it has received and verified the whole file. */
  failed: boolean;
  /** Why it failed. */
  error?: Error;
  /** It was stopped by this side: a newer transfer to the peer replaced it, or the node is stopping. */
  aborted: boolean;
  /** Bytes of the file handed to the connection. */
  bytes: number;
  seconds: number;
}

export interface SnapshotTransferEvents {
  /** `bytes` more of the file were handed to the connection. */
  progress(bytes: number): void;
  /** Called exactly once, with the outcome. */
  done(result: SnapshotTransferResult): void;
}

/** The answer's body is read up to this much (a JSON `{index, term}` or `{error}`). */
const MAX_ANSWER = 4096;

/**
 * One outgoing snapshot transfer: `POST /raft/snapshot` on a connection of its own, whose chunked body is one
 * frame holding the MsgSnap followed by the file's bytes, read from the source only as fast as the socket
 * takes them (each write that fills the socket's buffer waits for it to drain), so at most one chunk of the
 * file is held here, and the peer's message stream, on its own connection, is never queued behind it.
 *
 * It succeeds when the peer answers 200 with the snapshot's index and term (it has verified the whole file).
 * It fails on any error, another status, a cut connection, or no progress (a chunk read, the socket
 * draining, the answer arriving) for `stallTimeoutMs`; abort() stops it. The connection is torn down on
 * every failure, which is how the peer learns to discard what it received.
 */
export class SnapshotTransfer {
  private request?: ClientRequest;
  private watchdog?: StallWatchdog;
  private settled = false;
  private bytes = 0;
  private readonly started = Date.now();

  /** `peer`: the recipient's NODE_ID; `url`: its base URL; `tlsAgent`: for https://, the node's (PeerTls.agent). */
  constructor(
    readonly peer: NodeId,
    readonly url: string,
    readonly message: Message,
    private readonly source: SnapshotSource,
    private readonly headers: Record<string, string>,
    private readonly stallTimeoutMs: number,
    private readonly events: SnapshotTransferEvents,
    private readonly tlsAgent?: HttpsAgent,
  ) {}

  get index(): number {
    return this.message.snapshot!.metadata.index;
  }

  get size(): number {
    return this.source.size;
  }

  start(): void {
    const url = new URL(PEER_SNAPSHOT_PATH, this.url);
    const tls = url.protocol === 'https:';
    const send = tls ? httpsRequest : httpRequest;
    const request = send(url, {
      method: 'POST',
      // Its own connection: a transfer runs at the network's pace and must not hold up anything else (over
      // TLS a socket of the agent's, which the transfer keeps until it ends, and which holds the certificates).
      agent: tls && this.tlsAgent ? this.tlsAgent : false,
      headers: { ...this.headers, 'content-type': PEER_SNAPSHOT_CONTENT_TYPE, 'transfer-encoding': 'chunked' },
    });
    this.request = request;
    this.watchdog = new StallWatchdog(this.stallTimeoutMs, () =>
      this.settle(new Error(`no progress for ${this.stallTimeoutMs} ms`)),
    );
    request.on('error', (error) => this.settle(error));
    request.on('close', () => this.settle(new Error('the connection closed before the peer answered')));
    request.on('response', (response) => this.onResponse(response));
    void this.pump(request);
  }

  /** Stops the transfer; it is reported failed (and aborted) unless it had already ended. */
  abort(reason: Error): void {
    this.settle(reason, true);
  }

  private async pump(request: ClientRequest): Promise<void> {
    try {
      await this.write(request, sealFrame(encodeMessages([this.message], FRAME_HEADER)));
      // Leaving the loop early (settled, or a throw) returns the iterator: the source closes its file.
      for await (const chunk of this.source.stream) {
        if (this.settled) return;
        this.watchdog!.progress();
        this.bytes += chunk.length;
        this.events.progress(chunk.length);
        await this.write(request, chunk);
        if (this.settled) return;
      }
      if (!this.settled) request.end();
    } catch (error) {
      this.settle(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Writes a chunk; when the socket's buffer is full, resolves once it has drained (or the request died). */
  private write(request: ClientRequest, chunk: Uint8Array): Promise<void> | undefined {
    if (this.settled || request.write(chunk)) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        request.off('drain', done);
        request.off('close', done);
        this.watchdog!.progress();
        resolve();
      };
      request.on('drain', done);
      request.on('close', done);
    });
  }

  private onResponse(response: IncomingMessage): void {
    this.watchdog!.progress();
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      if (body.length < MAX_ANSWER) body += chunk;
    });
    response.on('error', (error) => this.settle(error));
    response.on('end', () => {
      if (response.statusCode !== 200) {
        this.settle(new Error(`the peer refused it (${response.statusCode}): ${body.slice(0, MAX_ANSWER)}`));
        return;
      }
      const expected = this.message.snapshot!.metadata;
      let answer: { index?: unknown; term?: unknown } | undefined;
      try {
        answer = JSON.parse(body) as typeof answer;
      } catch {
        answer = undefined;
      }
      if (answer?.index !== expected.index || answer?.term !== expected.term) {
        this.settle(new Error(`the peer answered 200 for another snapshot: ${body.slice(0, MAX_ANSWER)}`));
        return;
      }
      this.settle();
    });
  }

  /** Ends the transfer once: tears the connection down and reports the outcome. */
  private settle(error?: Error, aborted = false): void {
    if (this.settled) return;
    this.settled = true;
    this.watchdog?.stop();
    this.request?.destroy();
    this.events.done({
      failed: error !== undefined,
      error,
      aborted,
      bytes: this.bytes,
      seconds: (Date.now() - this.started) / 1000,
    });
  }
}

import { Message, MessageType, SnapshotMetadata } from '@app/consensus/core';
import { IncomingSnapshotFile, SnapshotFiles } from '@app/consensus/ports';
import { Readable } from 'node:stream';
import { FRAME_HEADER } from './frame';
import { decodeMessages } from './message-codec';
import { MAX_SNAPSHOT_FRAME } from './peer-protocol';
import { StallWatchdog } from './stall-watchdog';

/**
 * Why a snapshot transfer was not accepted, as its HTTP answer: 400 when what the sender sent is wrong (a bad
 * frame, a message that is not its MsgSnap to this node, a file that fails verification or is another
 * snapshot than announced), 503 when this node could not take it (storage failed, the transfer was cut or
 * replaced, the node is stopping).
 */
export class SnapshotTransferError extends Error {
  constructor(
    readonly status: 400 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotTransferError';
  }
}

export interface ReceivedSnapshot {
  /** The MsgSnap, to hand to the node now that its file is verified. */
  message: Message;
  /** What the file says it is (equal to the message's index and term). */
  metadata: SnapshotMetadata;
  /** Bytes of the file. */
  bytes: number;
}

export interface IncomingSnapshotOptions {
  /**
   * Checks the decoded leading frame and returns its MsgSnap; throws (any error: answered 400) when it is not
   * exactly one MsgSnap from the admitted sender to this node.
   */
  accept(messages: Message[]): Message;
  /** The transfer is cut when the sender sends nothing for this long. */
  stallTimeoutMs: number;
  /** `bytes` more of the file were written. */
  progress?(bytes: number): void;
}

/**
 * Receives one snapshot transfer (the body of `POST /raft/snapshot`): reads the leading frame, decodes its
 * MsgSnap, then writes the rest of the body to a new SnapshotFiles.receive() file, awaiting each write before
 * reading on (so a slow disk slows the sender down through TCP instead of filling memory), and finish()es it.
 * The incoming file is aborted on every failure, including a cut connection and cancel().
 */
export class IncomingSnapshot {
  private cancelled?: Error;
  private bytes = 0;

  constructor(
    private readonly body: Readable,
    private readonly files: SnapshotFiles,
    private readonly options: IncomingSnapshotOptions,
  ) {}

  /** Cuts the transfer (a newer one from the same sender replaces it, or the node is stopping). */
  cancel(reason: Error): void {
    this.cancelled ??= reason;
    this.body.destroy(reason);
  }

  /** Resolves once the file is verified and matches its MsgSnap; rejects with a SnapshotTransferError. */
  async receive(): Promise<ReceivedSnapshot> {
    const watchdog = new StallWatchdog(this.options.stallTimeoutMs, () =>
      this.cancel(new Error(`nothing received from the sender for ${this.options.stallTimeoutMs} ms`)),
    );
    let file: IncomingSnapshotFile | undefined;
    try {
      let message: Message | undefined;
      let head: Buffer = Buffer.alloc(0);
      for await (const chunk of this.body as AsyncIterable<Buffer>) {
        watchdog.progress();
        let data = chunk;
        if (!message) {
          head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
          const frame = this.leadingFrame(head);
          if (!frame) continue;
          message = this.decode(frame);
          file = this.open();
          data = head.subarray(FRAME_HEADER + frame.length);
          head = Buffer.alloc(0);
          if (data.length === 0) continue;
        }
        await this.write(file!, data);
        watchdog.progress();
      }
      watchdog.stop();
      if (!message) throw new SnapshotTransferError(400, 'the body ended before its leading frame (the MsgSnap) was complete');
      const metadata = await this.finish(file!);
      const announced = message.snapshot!.metadata;
      if (metadata.index !== announced.index || metadata.term !== announced.term) {
        throw new SnapshotTransferError(
          400,
          `the file holds snapshot ${metadata.index} (term ${metadata.term}), the MsgSnap announced ` +
            `${announced.index} (term ${announced.term})`,
        );
      }
      if (this.cancelled) throw this.cancelled;
      return { message, metadata, bytes: this.bytes };
    } catch (error) {
      // Whatever was received is worthless now, even a file that verified (another snapshot, or replaced).
      file?.abort();
      if (error instanceof SnapshotTransferError) throw error;
      const reason = this.cancelled ?? (error as Error);
      throw new SnapshotTransferError(503, `the transfer was cut after ${this.bytes} bytes: ${reason.message}`);
    } finally {
      watchdog.stop();
    }
  }

  /** The leading frame's batch once `head` holds it whole, else undefined. */
  private leadingFrame(head: Buffer): Buffer | undefined {
    if (head.length < FRAME_HEADER) return undefined;
    const length = head.readUInt32LE(0);
    if (length > MAX_SNAPSHOT_FRAME) {
      throw new SnapshotTransferError(400, `leading frame of ${length} bytes exceeds ${MAX_SNAPSHOT_FRAME}`);
    }
    if (head.length < FRAME_HEADER + length) return undefined;
    return head.subarray(FRAME_HEADER, FRAME_HEADER + length);
  }

  private decode(frame: Buffer): Message {
    try {
      const m = this.options.accept(decodeMessages(frame));
      if (m.type !== MessageType.MsgSnap || !m.snapshot) throw new Error('not a MsgSnap');
      return m;
    } catch (error) {
      throw new SnapshotTransferError(400, `invalid leading frame: ${(error as Error).message}`);
    }
  }

  private open(): IncomingSnapshotFile {
    try {
      return this.files.receive();
    } catch (error) {
      throw new SnapshotTransferError(503, `cannot store a snapshot: ${(error as Error).message}`);
    }
  }

  private async write(file: IncomingSnapshotFile, data: Buffer): Promise<void> {
    try {
      await file.write(data);
    } catch (error) {
      throw new SnapshotTransferError(503, `cannot store the snapshot: ${(error as Error).message}`);
    }
    this.bytes += data.length;
    this.options.progress?.(data.length);
  }

  private async finish(file: IncomingSnapshotFile): Promise<SnapshotMetadata> {
    try {
      return await file.finish();
    } catch (error) {
      throw new SnapshotTransferError(400, `the snapshot file failed verification: ${(error as Error).message}`);
    }
  }
}

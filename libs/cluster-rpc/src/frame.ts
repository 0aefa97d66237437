/**
 * Framing of the peer stream: the body of POST /raft/stream is a sequence of frames, each a message batch
 * (message-codec.ts) behind its length.
 *
 *   frame := length u32 LE | batch (length bytes)
 *
 * The answer's body carries no data, only liveness: the receiver writes one PONG byte at a fixed interval,
 * so the sender can tell a live stream from one stuck behind a cut link or a paused process.
 */

export const FRAME_HEADER = 4;
/** A frame larger than this is a protocol error (a sender caps batches far below). */
export const MAX_FRAME = 64 * 1024 * 1024;
export const PONG = Buffer.from([0]);

/** Completes a frame whose first FRAME_HEADER bytes were left free for it: writes the batch's length there. */
export function sealFrame(frame: Buffer): Buffer {
  frame.writeUInt32LE(frame.length - FRAME_HEADER, 0);
  return frame;
}

export class FrameError extends Error {
  constructor(message: string) {
    super(`invalid peer stream: ${message}`);
    this.name = 'FrameError';
  }
}

/**
 * Reassembles frames from the chunks of a byte stream, in order. Chunks are kept as they arrive and joined
 * only once a frame is complete, so a large frame costs one copy, not one per chunk.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the frame being assembled, once its header has arrived. */
  private expected = -1;

  constructor(private readonly onFrame: (frame: Buffer) => void) {}

  /** Feeds one chunk; calls onFrame for each frame it completes. Throws FrameError on a bad length. */
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < FRAME_HEADER) return;
        const length = this.take(FRAME_HEADER).readUInt32LE(0);
        if (length > MAX_FRAME) throw new FrameError(`frame of ${length} bytes exceeds ${MAX_FRAME}`);
        this.expected = length;
      }
      if (this.buffered < this.expected) return;
      const frame = this.take(this.expected);
      this.expected = -1;
      this.onFrame(frame);
    }
  }

  /** Bytes received but not yet delivered as a frame. */
  get pending(): number {
    return this.buffered + (this.expected >= 0 ? FRAME_HEADER : 0);
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let copied = 0;
      while (copied < n) {
        const chunk = this.chunks[0];
        const want = n - copied;
        if (chunk.length <= want) {
          chunk.copy(out, copied);
          copied += chunk.length;
          this.chunks.shift();
        } else {
          chunk.copy(out, copied, 0, want);
          this.chunks[0] = chunk.subarray(want);
          copied = n;
        }
      }
    }
    this.buffered -= n;
    return out;
  }
}

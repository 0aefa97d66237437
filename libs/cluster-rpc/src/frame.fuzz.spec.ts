import fc from 'fast-check';
import { FRAME_HEADER, FrameDecoder, FrameError, MAX_FRAME } from './frame';

/**
 * The frame decoder against random streams, cut into random chunks, checked against a reference that reads
 * the whole stream at once. Bounded runs; fast-check prints the seed of a failure.
 */

/** The reference: the frames of a complete stream, and where it stops (a refused header, or the end). */
function reference(stream: Buffer): { frames: Buffer[]; consumed: number; refusedAt?: number } {
  const frames: Buffer[] = [];
  let o = 0;
  while (stream.length - o >= FRAME_HEADER) {
    const length = stream.readUInt32LE(o);
    if (length > MAX_FRAME) return { frames, consumed: o, refusedAt: o };
    if (stream.length - o - FRAME_HEADER < length) break;
    frames.push(stream.subarray(o + FRAME_HEADER, o + FRAME_HEADER + length));
    o += FRAME_HEADER + length;
  }
  return { frames, consumed: o };
}

/** Cuts `stream` at the given offsets (taken modulo its length). */
function chunk(stream: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (stream.length === 0 ? 0 : c % (stream.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, stream.length]) {
    out.push(stream.subarray(prev, c));
    prev = c;
  }
  return out;
}

/** A frame whose header may lie: it declares `declared` bytes and carries `payload`. */
const segment = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 40 }).map((p) => ({ declared: p.length, payload: p })) },
  { weight: 1, arbitrary: fc.record({ declared: fc.nat({ max: 60 }), payload: fc.uint8Array({ maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ declared: fc.constantFrom(MAX_FRAME, MAX_FRAME + 1, 0xffffffff), payload: fc.uint8Array({ maxLength: 8 }) }) },
);
const segmentedStream = fc.array(segment, { maxLength: 8 }).map((segments) =>
  Buffer.concat(
    segments.map(({ declared, payload }) => {
      const header = Buffer.alloc(FRAME_HEADER);
      header.writeUInt32LE(declared, 0);
      return Buffer.concat([header, payload]);
    }),
  ),
);
const anyStream = fc.oneof(segmentedStream, fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)));

describe('FrameDecoder, fuzzed', () => {
  it('delivers exactly the frames a whole-stream reading finds, refuses only with FrameError, and buffers at most one frame', () => {
    fc.assert(
      fc.property(anyStream, fc.array(fc.nat(), { maxLength: 10 }), (stream, cuts) => {
        const expected = reference(stream);
        const seen: Buffer[] = [];
        const decoder = new FrameDecoder((f) => seen.push(Buffer.from(f)));
        let fed = 0;
        let refused = false;
        for (const piece of chunk(stream, cuts)) {
          try {
            decoder.push(piece);
          } catch (error) {
            expect(error).toBeInstanceOf(FrameError);
            refused = true;
            break;
          }
          fed += piece.length;
          const delivered = seen.reduce((n, f) => n + FRAME_HEADER + f.length, 0);
          // Everything fed is either delivered or pending, and what is pending belongs to one frame.
          expect(decoder.pending).toBe(fed - delivered);
          expect(decoder.pending).toBeLessThanOrEqual(FRAME_HEADER + MAX_FRAME);
          if (decoder.pending >= FRAME_HEADER) {
            const declared = stream.readUInt32LE(delivered);
            expect(decoder.pending).toBeLessThan(FRAME_HEADER + declared);
          }
        }
        expect(refused).toBe(expected.refusedAt !== undefined);
        expect(seen.map((f) => f.toString('hex'))).toEqual(expected.frames.map((f) => f.toString('hex')));
        if (!refused) expect(decoder.pending).toBe(stream.length - expected.consumed);
      }),
      { numRuns: 500 },
    );
  });
});

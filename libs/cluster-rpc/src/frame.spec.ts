import { FRAME_HEADER, FrameDecoder, FrameError, MAX_FRAME } from './frame';

function frame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  out.writeUInt32LE(payload.length, 0);
  payload.copy(out, FRAME_HEADER);
  return out;
}

describe('FrameDecoder', () => {
  const payloads = [Buffer.from('first'), Buffer.alloc(0), Buffer.from('a longer third frame, '.repeat(20)), Buffer.from([0, 1, 2])];
  const stream = Buffer.concat(payloads.map(frame));

  it('delivers every frame, in order, whatever the chunk boundaries', () => {
    for (let size = 1; size <= stream.length; size++) {
      const seen: string[] = [];
      const decoder = new FrameDecoder((f) => seen.push(f.toString('hex')));
      for (let at = 0; at < stream.length; at += size) decoder.push(stream.subarray(at, at + size));
      expect(seen).toEqual(payloads.map((p) => p.toString('hex')));
      expect(decoder.pending).toBe(0);
    }
  });

  it('splits the stream at every single offset', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const seen: Buffer[] = [];
      const decoder = new FrameDecoder((f) => seen.push(Buffer.from(f)));
      decoder.push(stream.subarray(0, cut));
      decoder.push(stream.subarray(cut));
      expect(Buffer.concat(seen)).toEqual(Buffer.concat(payloads));
      expect(seen).toHaveLength(payloads.length);
    }
  });

  it('holds an incomplete frame until the rest arrives', () => {
    const seen: Buffer[] = [];
    const decoder = new FrameDecoder((f) => seen.push(f));
    const one = frame(Buffer.from('payload'));
    decoder.push(one.subarray(0, 6));
    expect(seen).toHaveLength(0);
    expect(decoder.pending).toBe(6);
    decoder.push(one.subarray(6));
    expect(seen.map(String)).toEqual(['payload']);
  });

  it('refuses a frame longer than the limit before buffering it', () => {
    const decoder = new FrameDecoder(() => undefined);
    const header = Buffer.alloc(FRAME_HEADER);
    header.writeUInt32LE(MAX_FRAME + 1, 0);
    expect(() => decoder.push(header)).toThrow(FrameError);
  });
});

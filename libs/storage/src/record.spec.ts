import { EntryType } from '@app/consensus/core';
import { decodeRecord, encodeRecord, findNextRecord, HEADER_SIZE, RecordType } from './record';
import {
  decodeBatchEnd,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeSegmentHeader,
  decodeTruncate,
  encodeBatchEnd,
  encodeConfState,
  encodeHardState,
  encodeSegmentHeader,
  encodeTruncate,
  entryRecordSize,
  PayloadError,
  writeEntryRecord,
} from './record-payloads';

describe('record framing', () => {
  it.each([
    ['empty payload', RecordType.BatchEnd, Buffer.alloc(0)],
    ['small payload', RecordType.HardState, Buffer.from('hello')],
    ['64 KiB payload', RecordType.Entry, Buffer.alloc(65536, 0xab)],
  ])('round-trips a record with %s', (_name, type, payload) => {
    const rec = encodeRecord(type, payload);
    expect(rec.length).toBe(HEADER_SIZE + payload.length);
    const out = decodeRecord(rec, 0);
    expect(out).toMatchObject({ ok: true, type, end: rec.length });
    expect(out.ok && Buffer.compare(out.payload, payload)).toBe(0);
  });

  it('lays the header out as documented: CRC-32 of all that follows, length, type, three zero bytes', () => {
    const rec = encodeRecord(RecordType.Truncate, Buffer.from([1, 2, 3]));
    expect(rec.readUInt32LE(4)).toBe(3);
    expect(rec[8]).toBe(RecordType.Truncate);
    expect([...rec.subarray(9, 12)]).toEqual([0, 0, 0]);
    const { crc32 } = jest.requireActual<typeof import('node:zlib')>('node:zlib');
    expect(crc32('123456789')).toBe(0xcbf43926); // the standard CRC-32, as docs/storage.md says
    expect(rec.readUInt32LE(0)).toBe(crc32(rec.subarray(4)));
  });

  it('decodes records packed back to back', () => {
    const buf = Buffer.concat([
      encodeRecord(RecordType.HardState, Buffer.from('a')),
      encodeRecord(RecordType.Entry, Buffer.from('bb')),
      encodeRecord(RecordType.BatchEnd, encodeBatchEnd(2)),
    ]);
    const types: RecordType[] = [];
    for (let p = 0; p < buf.length; ) {
      const r = decodeRecord(buf, p);
      if (!r.ok) throw new Error(r.reason);
      types.push(r.type);
      p = r.end;
    }
    expect(types).toEqual([RecordType.HardState, RecordType.Entry, RecordType.BatchEnd]);
  });

  it('reports every proper prefix of a record as incomplete', () => {
    const rec = encodeRecord(RecordType.Entry, Buffer.alloc(40, 7));
    for (let cut = 0; cut < rec.length; cut++) {
      const r = decodeRecord(rec.subarray(0, cut), 0);
      expect(r).toMatchObject({ ok: false, incomplete: true });
    }
  });

  it('detects every single flipped bit', () => {
    const rec = encodeRecord(RecordType.Entry, Buffer.from('the quick brown fox'));
    for (let bit = 0; bit < rec.length * 8; bit++) {
      const bad = Buffer.from(rec);
      bad[bit >> 3] ^= 1 << (bit & 7);
      const r = decodeRecord(bad, 0);
      expect(r.ok).toBe(false);
    }
  });

  it('rejects unknown types, non-zero reserved bytes and implausible lengths before the checksum', () => {
    const rec = encodeRecord(RecordType.Entry, Buffer.from('x'));
    const unknown = Buffer.from(rec);
    unknown[8] = 99;
    expect(decodeRecord(unknown, 0)).toMatchObject({ ok: false, reason: 'unknown record type 99' });
    const reserved = Buffer.from(rec);
    reserved[10] = 1;
    expect(decodeRecord(reserved, 0)).toMatchObject({ ok: false, reason: 'non-zero reserved header bytes' });
    const huge = Buffer.from(rec);
    huge.writeUInt32LE(0xffffffff, 4);
    expect(decodeRecord(huge, 0)).toMatchObject({ ok: false, incomplete: false });
  });

  it('finds the next intact record after damage, and none in zeros or garbage', () => {
    const good = encodeRecord(RecordType.HardState, encodeHardState({ term: 3, vote: 'n1', commit: 2 }));
    const buf = Buffer.concat([Buffer.from('garbage!'), good]);
    expect(findNextRecord(buf, 0)).toBe(8);
    expect(findNextRecord(Buffer.alloc(4096), 0)).toBe(-1);
    const noise = Buffer.alloc(4096);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
    expect(findNextRecord(noise, 0)).toBe(-1);
  });
});

describe('record payloads', () => {
  it('round-trips an entry record written in place', () => {
    const e = { index: 2 ** 53 - 1, term: 2 ** 40 + 3, type: EntryType.ConfChange, data: Buffer.from('payload') };
    const buf = Buffer.alloc(entryRecordSize(e) + 5);
    expect(writeEntryRecord(buf, 5, e)).toBe(buf.length);
    const r = decodeRecord(buf, 5);
    if (!r.ok) throw new Error(r.reason);
    expect(r.type).toBe(RecordType.Entry);
    const back = decodeEntry(r.payload);
    expect({ ...back, data: Buffer.from(back.data).toString() }).toEqual({ ...e, data: 'payload' });
  });

  it('round-trips hard state, conf state, segment header, truncate and batch end', () => {
    const hs = { term: 7, vote: 'nœud-2', commit: 123456789012 };
    expect(decodeHardState(encodeHardState(hs))).toEqual(hs);
    expect(decodeHardState(encodeHardState({ term: 0, vote: '', commit: 0 }))).toEqual({ term: 0, vote: '', commit: 0 });
    expect(decodeConfState(encodeConfState({ voters: ['a', 'b', 'c'] }))).toEqual({ voters: ['a', 'b', 'c'] });
    expect(decodeConfState(encodeConfState({ voters: ['a'], learners: ['z'] }))).toEqual({ voters: ['a'], learners: ['z'] });
    expect(decodeSegmentHeader(encodeSegmentHeader({ seq: 9, firstIndex: 1000, prevTerm: 4 }))).toEqual({
      version: 1,
      seq: 9,
      firstIndex: 1000,
      prevTerm: 4,
    });
    expect(decodeTruncate(encodeTruncate(42))).toBe(42);
    expect(decodeBatchEnd(encodeBatchEnd(3))).toBe(3);
  });

  it('rejects malformed payloads with PayloadError', () => {
    expect(() => decodeEntry(Buffer.alloc(5))).toThrow(PayloadError);
    const badType = Buffer.alloc(17);
    badType[16] = 9;
    expect(() => decodeEntry(badType)).toThrow('unknown entry type 9');
    expect(() => decodeHardState(Buffer.concat([encodeHardState({ term: 1, vote: 'a', commit: 0 }), Buffer.from([0])]))).toThrow(
      PayloadError,
    );
    const header = encodeSegmentHeader({ seq: 1, firstIndex: 1, prevTerm: 0 });
    header.writeUInt16LE(2, 4);
    expect(() => decodeSegmentHeader(header)).toThrow('segment format version 2');
    const beyond = Buffer.alloc(8, 0xff);
    expect(() => decodeTruncate(beyond)).toThrow('u64 value beyond 2^53 - 1');
  });
});

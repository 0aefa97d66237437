import { EntryType, Message, MessageType } from '@app/consensus/core';
import { decodeMessages, encodeMessages, MessageDecodeError } from './message-codec';

const base: Message = {
  type: MessageType.MsgHeartbeat,
  to: 'http://localhost:3002',
  from: 'http://localhost:3001',
  term: 7,
  logTerm: 0,
  index: 0,
  commit: 41,
  reject: false,
  rejectHint: 0,
};

const app: Message = {
  ...base,
  type: MessageType.MsgApp,
  logTerm: 6,
  index: 40,
  entries: [
    { term: 7, index: 41, type: EntryType.Normal, data: new Uint8Array() },
    { term: 7, index: 42, type: EntryType.Normal, data: Buffer.from('{"put":"ключ"}') },
    { term: 7, index: 2 ** 53 - 1, type: EntryType.ConfChange, data: new Uint8Array([0, 255, 1]) },
  ],
};

const plain = (m: Message) => ({
  ...m,
  entries: m.entries?.map((e) => ({ ...e, data: Array.from(e.data) })),
  snapshot: m.snapshot && { ...m.snapshot, data: Array.from(m.snapshot.data) },
});

describe('message codec', () => {
  it.each<[string, Message[]]>([
    ['an empty batch', []],
    ['a heartbeat', [base]],
    ['a rejection with a hint', [{ ...base, type: MessageType.MsgAppResp, reject: true, rejectHint: 12, logTerm: 3, index: 20 }]],
    ['a read index request with its context', [{ ...base, type: MessageType.MsgReadIndex, context: 'read-ctx-ü-1' }]],
    ['an empty context', [{ ...base, type: MessageType.MsgHeartbeat, context: '' }]],
    ['entries of every kind', [app]],
    [
      'a snapshot',
      [
        {
          ...base,
          type: MessageType.MsgSnap,
          snapshot: { metadata: { index: 9, term: 2, confState: { voters: ['a', 'b'] } }, data: Buffer.from('state') },
        },
      ],
    ],
    ['a mixed batch', [base, app, { ...base, type: MessageType.MsgVote, index: 5, logTerm: 2 }]],
  ])('round-trips %s', (_name, messages) => {
    const decoded = decodeMessages(encodeMessages(messages));
    expect(decoded.map(plain)).toEqual(messages.map(plain));
  });

  it('rejects every truncation of a valid batch', () => {
    const bytes = encodeMessages([base, app]);
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => decodeMessages(bytes.subarray(0, cut))).toThrow(MessageDecodeError);
    }
  });

  it('rejects trailing bytes, a bad magic, an unknown type and a negative number', () => {
    const bytes = encodeMessages([base]);
    expect(() => decodeMessages(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/trailing/);
    const badMagic = Buffer.from(bytes);
    badMagic[0] ^= 0xff;
    expect(() => decodeMessages(badMagic)).toThrow(/magic/);
    const badType = Buffer.from(bytes);
    badType[7] = 250;
    expect(() => decodeMessages(badType)).toThrow(/unknown message type 250/);
    const negative = Buffer.from(bytes);
    negative.writeDoubleLE(-1, 9);
    expect(() => decodeMessages(negative)).toThrow(/bad number/);
  });
});

import { EntryType, Message, MessageType } from '@app/consensus/core';
import { decodeMessages, encodeMessages, isNetworkMessageType, MAX_NODE_ID_BYTES, MessageDecodeError } from './message-codec';

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
    { term: 7, index: 43, type: EntryType.ConfChange, data: new Uint8Array([0, 255, 1]) },
  ],
};

/** The last index a float64 holds exactly. */
const atTheEnd: Message = {
  ...base,
  type: MessageType.MsgApp,
  index: 2 ** 53 - 2,
  logTerm: 7,
  entries: [{ term: 7, index: 2 ** 53 - 1, type: EntryType.Normal, data: Buffer.from('x') }],
};

const snap: Message = {
  ...base,
  type: MessageType.MsgSnap,
  snapshot: { metadata: { index: 9, term: 2, confState: { voters: ['a', 'b'] } }, data: Buffer.from('state') },
};

/** A MsgSnap whose metadata bytes are `json` (the encoder writes whatever it is given). */
function withMeta(json: string): Buffer {
  const bytes = encodeMessages([snap]);
  const meta = Buffer.from(JSON.stringify(snap.snapshot!.metadata));
  const at = bytes.indexOf(meta);
  const replacement = Buffer.from(json);
  const out = Buffer.concat([bytes.subarray(0, at - 4), Buffer.alloc(4), replacement, bytes.subarray(at + meta.length)]);
  out.writeUInt32LE(replacement.length, at - 4);
  return out;
}

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
    ['indexes up to 2^53 - 1', [atTheEnd]],
    ['a forwarded read index without a term', [{ ...base, type: MessageType.MsgReadIndex, term: 0, context: 'ctx' }]],
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

  it('rejects trailing bytes, a bad magic and a bad version', () => {
    const bytes = encodeMessages([base]);
    expect(() => decodeMessages(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/1 trailing bytes/);
    const badMagic = Buffer.from(bytes);
    badMagic[0] ^= 0xff;
    expect(() => decodeMessages(badMagic)).toThrow(/magic/);
    const badVersion = Buffer.from(bytes);
    badVersion[2] = 2;
    expect(() => decodeMessages(badVersion)).toThrow(/unsupported version 2/);
  });

  /** Offsets in the encoding of a single message: the batch header is 7 bytes, then type, flags, 5 x f64. */
  const TYPE = 7;
  const FLAGS = 8;
  const f64At = { term: 9, logTerm: 17, index: 25, commit: 33, rejectHint: 41 };
  const patched = (m: Message, patch: (b: Buffer) => void) => {
    const b = Buffer.from(encodeMessages([m]));
    patch(b);
    return b;
  };
  const many = (n: number) => Array.from({ length: n }, () => base);

  it.each<[string, Buffer, RegExp]>([
    ['an unknown message type', patched(base, (b) => (b[TYPE] = 250)), /message 0: unknown message type 250$/],
    ['a local message type (MsgHup)', patched(base, (b) => (b[TYPE] = MessageType.MsgHup)), /MsgHup never crosses the network/],
    ['a local message type (MsgProp)', patched(base, (b) => (b[TYPE] = MessageType.MsgProp)), /MsgProp never crosses the network/],
    ['unknown flag bits', patched(base, (b) => (b[FLAGS] = 0x80)), /unknown flags 0x80/],
    ['a negative term', patched(base, (b) => b.writeDoubleLE(-1, f64At.term)), /\(MsgHeartbeat\): term is -1, not an integer/],
    ['a fractional index', patched(base, (b) => b.writeDoubleLE(1.5, f64At.index)), /index is 1.5, not an integer/],
    ['a NaN commit', patched(base, (b) => b.writeDoubleLE(NaN, f64At.commit)), /commit is NaN/],
    ['an infinite logTerm', patched(base, (b) => b.writeDoubleLE(Infinity, f64At.logTerm)), /logTerm is Infinity/],
    ['a rejectHint of 2^53', patched(base, (b) => b.writeDoubleLE(2 ** 53, f64At.rejectHint)), /rejectHint is 9007199254740992/],
    ['a heartbeat at term 0', patched(base, (b) => b.writeDoubleLE(0, f64At.term)), /term is 0, but its sender always has a term/],
    ['a MsgApp at term 0', encodeMessages([{ ...app, term: 0, logTerm: 0, entries: [] }]), /\(MsgApp\): term is 0/],
    ['a vote whose logTerm passes its term', encodeMessages([{ ...base, type: MessageType.MsgVote, term: 3, logTerm: 4 }]), /logTerm 4 is above the term 3/],
    ['an empty `to`', encodeMessages([{ ...base, to: '' }]), /to is 0 bytes long, allowed 1 to 1024/],
    ['an empty `from`', encodeMessages([{ ...base, from: '' }]), /from is 0 bytes long/],
    ['a `from` of 1025 bytes', encodeMessages([{ ...base, from: 'x'.repeat(MAX_NODE_ID_BYTES + 1) }]), /from is 1025 bytes long/],
    ['a `from` that is not UTF-8', patched(base, (b) => (b[49 + 2 + base.to.length + 2] = 0xff)), /from is not valid UTF-8/],
    ['a context that is not UTF-8', patched({ ...base, context: 'ab' }, (b) => (b[b.length - 5] = 0xc3)), /context is not valid UTF-8/],
    ['a message count the batch cannot hold', patched(base, (b) => b.writeUInt32LE(2, 3)), /2 messages cannot fit in the \d+ bytes left/],
    ['a message count of 2^32 - 1', patched(base, (b) => b.writeUInt32LE(0xffffffff, 3)), /4294967295 messages cannot fit/],
    ['a string length past the end', patched(base, (b) => b.writeUInt16LE(0xffff, 49)), /to is 65535 bytes long/],
    [
      'an entry count of 2^32 - 1',
      patched(app, (b) => b.writeUInt32LE(0xffffffff, 49 + 2 + base.to.length + 2 + base.from.length)),
      /4294967295 entries cannot fit in the \d+ bytes left/,
    ],
    ['entries on a heartbeat', encodeMessages([{ ...base, entries: app.entries }]), /carries 3 entries; only MsgApp carries entries/],
    ['an entry index that skips one', encodeMessages([{ ...app, entries: [app.entries![0], app.entries![2]] }]), /entry 1 has index 43, expected 42/],
    ['a first entry that does not follow index', encodeMessages([{ ...app, index: 39 }]), /entry 0 has index 41, expected 40/],
    ['entries out of order', encodeMessages([{ ...app, entries: [app.entries![1], app.entries![0]] }]), /entry 0 has index 42, expected 41/],
    [
      'an entry term above the message term',
      encodeMessages([{ ...app, entries: [{ ...app.entries![0], term: 8 }] }]),
      /entry 0 has term 8, outside \[6, 7\]/,
    ],
    [
      'an entry term below the preceding entry',
      encodeMessages([{ ...app, entries: [app.entries![0], { ...app.entries![1], term: 6 }] }]),
      /entry 1 has term 6, outside \[7, 7\]/,
    ],
    [
      'a first entry term below logTerm',
      encodeMessages([{ ...app, entries: [{ ...app.entries![0], term: 5 }] }]),
      /entry 0 has term 5, outside \[6, 7\]/,
    ],
    [
      'an entry at term 0',
      encodeMessages([{ ...app, logTerm: 0, entries: [{ ...app.entries![0], term: 0 }] }]),
      /entry 0 has term 0, outside \[1, 7\]/,
    ],
    [
      'an unknown entry type',
      encodeMessages([{ ...app, entries: [{ ...app.entries![0], type: 9 as EntryType }] }]),
      /entry 0 has unknown type 9/,
    ],
    [
      'entry data past the end',
      patched({ ...app, entries: [app.entries![2]], index: 42 }, (b) => b.writeUInt32LE(1000, b.length - app.entries![2].data.length - 4)),
      /truncated: entry 0 data needs 1000 bytes/,
    ],
    ['a snapshot on a heartbeat', encodeMessages([{ ...base, snapshot: snap.snapshot }]), /carries a snapshot; only MsgSnap does/],
    ['a MsgSnap without a snapshot', encodeMessages([{ ...snap, snapshot: undefined }]), /\(MsgSnap\): carries no snapshot/],
    ['snapshot metadata that is not JSON', withMeta('{'), /snapshot metadata is not JSON/],
    ['snapshot metadata that is null', withMeta('null'), /snapshot metadata is not an object/],
    ['a snapshot index that is negative', withMeta('{"index":-1,"term":1,"confState":{"voters":["a"]}}'), /integer index and term/],
    ['a snapshot term above the message term', withMeta('{"index":1,"term":8,"confState":{"voters":["a"]}}'), /snapshot term 8 is above/],
    ['snapshot voters that are not ids', withMeta('{"index":1,"term":1,"confState":{"voters":[1]}}'), /confState needs voters/],
    ['snapshot learners that are not a list', withMeta('{"index":1,"term":1,"confState":{"voters":[],"learners":"a"}}'), /confState/],
    ['a bad message after good ones', encodeMessages([...many(2), { ...base, to: '' }]), /message 2 \(MsgHeartbeat\): to is 0 bytes/],
  ])('refuses %s, naming the problem', (_name, bytes, problem) => {
    expect(() => decodeMessages(bytes)).toThrow(MessageDecodeError);
    expect(() => decodeMessages(bytes)).toThrow(problem);
  });

  it('reads -0 as 0', () => {
    const bytes = patched(base, (b) => b.writeDoubleLE(-0, f64At.index));
    expect(Object.is(decodeMessages(bytes)[0].index, 0)).toBe(true);
  });

  it('keeps only the known fields of snapshot metadata', () => {
    const [m] = decodeMessages(withMeta('{"index":3,"term":2,"confState":{"voters":["a"],"learners":["b"],"x":1},"extra":true}'));
    expect(m.snapshot!.metadata).toEqual({ index: 3, term: 2, confState: { voters: ['a'], learners: ['b'] } });
  });

  it('lets every network message type through and no local one', () => {
    const network = Object.values(MessageType).filter((t): t is MessageType => typeof t === 'number' && isNetworkMessageType(t));
    expect(network.map((t) => MessageType[t]).sort()).toEqual(
      [
        'MsgApp', 'MsgAppResp', 'MsgVote', 'MsgVoteResp', 'MsgSnap', 'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgTransferLeader',
        'MsgTimeoutNow', 'MsgReadIndex', 'MsgReadIndexResp', 'MsgPreVote', 'MsgPreVoteResp',
      ].sort(),
    );
  });
});

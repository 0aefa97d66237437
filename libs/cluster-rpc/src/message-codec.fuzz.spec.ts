import { Entry, EntryType, Message, MessageType } from '@app/consensus/core';
import fc from 'fast-check';
import { decodeMessages, encodeMessages, MAX_NODE_ID_BYTES, MessageDecodeError } from './message-codec';

/**
 * Fuzzing the wall between the network and the Raft core. Bounded runs (the unit project stays fast); on a
 * failure fast-check prints the seed and the path, and `fc.assert(..., { seed, path })` replays it.
 */

const MAX_INDEX = Number.MAX_SAFE_INTEGER;

/** Sent by a leader or a candidate: never at term 0. */
const WITH_TERM = new Set([
  MessageType.MsgApp,
  MessageType.MsgHeartbeat,
  MessageType.MsgSnap,
  MessageType.MsgVote,
  MessageType.MsgPreVote,
  MessageType.MsgTimeoutNow,
  MessageType.MsgReadIndexResp,
]);
const OWN_LOG_TERM = new Set([MessageType.MsgApp, MessageType.MsgVote, MessageType.MsgPreVote]);
const NETWORK_TYPES = [
  ...WITH_TERM,
  MessageType.MsgAppResp,
  MessageType.MsgVoteResp,
  MessageType.MsgHeartbeatResp,
  MessageType.MsgTransferLeader,
  MessageType.MsgReadIndex,
  MessageType.MsgPreVoteResp,
];

const isIndex = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && !Object.is(v, -0);
const isId = (v: unknown) => typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= MAX_NODE_ID_BYTES;

/**
 * What the core may be handed, restated independently of the decoder (docs/cluster-rpc.md): undefined when
 * `m` is well-formed, else the first problem.
 */
function problemWith(m: Message): string | undefined {
  if (!NETWORK_TYPES.includes(m.type)) return `type ${m.type}`;
  for (const f of ['term', 'logTerm', 'index', 'commit', 'rejectHint'] as const) if (!isIndex(m[f])) return f;
  if (WITH_TERM.has(m.type) && m.term === 0) return 'term 0';
  if (OWN_LOG_TERM.has(m.type) && m.logTerm > m.term) return 'logTerm > term';
  if (!isId(m.to) || !isId(m.from)) return 'to/from';
  if (typeof m.reject !== 'boolean') return 'reject';
  if (m.context !== undefined && typeof m.context !== 'string') return 'context';
  if (m.entries !== undefined) {
    if (m.type !== MessageType.MsgApp || m.entries.length === 0) return 'entries';
    let prev = m.logTerm;
    for (const [k, e] of m.entries.entries()) {
      if (!isIndex(e.term) || e.term === 0 || e.term < prev || e.term > m.term) return `entry ${k} term`;
      if (e.index !== m.index + 1 + k) return `entry ${k} index`;
      if (e.type !== EntryType.Normal && e.type !== EntryType.ConfChange) return `entry ${k} type`;
      if (!(e.data instanceof Uint8Array)) return `entry ${k} data`;
      prev = e.term;
    }
  }
  if ((m.snapshot !== undefined) !== (m.type === MessageType.MsgSnap)) return 'snapshot presence';
  if (m.snapshot) {
    const { index, term, confState } = m.snapshot.metadata;
    if (!isIndex(index) || !isIndex(term) || term > m.term) return 'snapshot index/term';
    if (!Array.isArray(confState?.voters) || !confState.voters.every(isId)) return 'snapshot voters';
    if (confState.learners !== undefined && !(Array.isArray(confState.learners) && confState.learners.every(isId))) return 'snapshot learners';
    if (!(m.snapshot.data instanceof Uint8Array)) return 'snapshot data';
  }
  return undefined;
}

// ---- valid messages ----

/** Mostly small numbers, sometimes the edge of what a float64 holds exactly. */
const num = (min: number, max: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min, max: Math.min(max, min + 1000) }) },
    { weight: 1, arbitrary: fc.integer({ min: Math.max(min, max - 1000), max }) },
    { weight: 1, arbitrary: fc.integer({ min, max }) },
  );
const text = (minLength: number, maxLength: number) =>
  fc.oneof(fc.string({ unit: 'grapheme', minLength, maxLength }), fc.string({ unit: 'binary', minLength, maxLength }));
const nodeId = fc.oneof(
  fc.constantFrom('http://localhost:3001', 'http://localhost:3002', 'https://node-3.internal:443'),
  text(1, 40).filter((s) => Buffer.byteLength(s) <= MAX_NODE_ID_BYTES),
  fc.constant('x'.repeat(MAX_NODE_ID_BYTES)),
);
const data = fc.uint8Array({ maxLength: 64 });

/** Entries following `index`, with non-decreasing terms in [max(logTerm, 1), term]. */
const entriesAfter = (index: number, logTerm: number, term: number): fc.Arbitrary<Entry[] | undefined> =>
  fc.option(
    fc
      .array(fc.record({ term: fc.integer({ min: Math.max(logTerm, 1), max: term }), type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange), data }), {
        minLength: 1,
        maxLength: Math.min(5, MAX_INDEX - index),
      })
      .map((es) => {
        const terms = es.map((e) => e.term).sort((a, b) => a - b);
        return es.map((e, k) => ({ ...e, term: terms[k], index: index + 1 + k }));
      }),
    { nil: undefined },
  );

const validMessage: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...NETWORK_TYPES),
    to: nodeId,
    from: nodeId,
    reject: fc.boolean(),
    context: fc.option(text(0, 30), { nil: undefined }),
    index: num(0, MAX_INDEX - 1),
    commit: num(0, MAX_INDEX),
    rejectHint: num(0, MAX_INDEX),
    anyTerm: num(0, MAX_INDEX),
  })
  .chain(({ anyTerm, ...m }) => {
    const term = WITH_TERM.has(m.type) ? Math.max(anyTerm, 1) : anyTerm;
    const logTerm = OWN_LOG_TERM.has(m.type) ? num(0, term) : num(0, MAX_INDEX);
    return logTerm.chain((lt) => {
      const base: Message = { ...m, term, logTerm: lt };
      if (m.type === MessageType.MsgApp) return entriesAfter(m.index, lt, term).map((entries) => (entries ? { ...base, entries } : base));
      if (m.type === MessageType.MsgSnap) {
        return fc
          .record({ index: num(0, MAX_INDEX), term: num(0, term), voters: fc.array(nodeId, { maxLength: 3 }), learners: fc.option(fc.array(nodeId, { maxLength: 2 }), { nil: undefined }), data })
          .map(({ voters, learners, data: snapData, ...meta }) => ({
            ...base,
            snapshot: { metadata: { ...meta, confState: learners ? { voters, learners } : { voters } }, data: snapData },
          }));
      }
      return fc.constant(base);
    });
  });
const validBatch = fc.array(validMessage, { maxLength: 4 });

// ---- hostile bytes ----

const SPECIAL_DOUBLES = [-1, -0, 0.5, 1.5, 2 ** 53, 2 ** 64, -(2 ** 53), NaN, Infinity, -Infinity, Number.MIN_VALUE];

type Mutation =
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'double'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'cut'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('double' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...SPECIAL_DOUBLES), fc.double()) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0, 1, 2, 0xffff, 0xffffffff), fc.nat({ max: 0xffffffff })) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const mu of mutations) {
    if (b.length === 0) break;
    const at = mu.at % b.length;
    switch (mu.kind) {
      case 'set':
        b[at] = mu.byte;
        break;
      case 'double':
        if (at + 8 <= b.length) b.writeDoubleLE(mu.value, at);
        break;
      case 'u32':
        if (at + 4 <= b.length) b.writeUInt32LE(mu.value, at);
        break;
      case 'cut':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), mu.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + mu.length)]);
        break;
    }
  }
  return b;
}

/** Decodes hostile bytes: only a MessageDecodeError may come out, or messages the core may take. */
function decodeHostile(bytes: Buffer): 'refused' | 'accepted' {
  let messages: Message[];
  try {
    messages = decodeMessages(bytes);
  } catch (error) {
    if (error instanceof MessageDecodeError) return 'refused';
    throw error;
  }
  for (const m of messages) {
    const problem = problemWith(m);
    if (problem) throw new Error(`decoded an ill-formed message (${problem}): ${JSON.stringify(m)}`);
  }
  return 'accepted';
}

const plain = (m: Message) => ({
  ...m,
  entries: m.entries?.map((e) => ({ ...e, data: Buffer.from(e.data).toString('hex') })),
  snapshot: m.snapshot && { ...m.snapshot, data: Buffer.from(m.snapshot.data).toString('hex') },
});

describe('message codec, fuzzed', () => {
  it('the generator of valid messages makes only well-formed ones (the check itself)', () => {
    fc.assert(
      fc.property(validMessage, (m) => problemWith(m) === undefined),
      { numRuns: 300 },
    );
  });

  it('the well-formedness check refuses what the decoder must refuse (the check itself)', () => {
    const m: Message = { type: MessageType.MsgApp, to: 'a', from: 'b', term: 2, logTerm: 1, index: 5, commit: 0, reject: false, rejectHint: 0 };
    const e = (term: number, index: number): Entry => ({ term, index, type: EntryType.Normal, data: new Uint8Array() });
    expect(problemWith({ ...m, entries: [e(2, 6)] })).toBeUndefined();
    expect(problemWith({ ...m, entries: [e(2, 7)] })).toBe('entry 0 index');
    expect(problemWith({ ...m, entries: [e(3, 6)] })).toBe('entry 0 term');
    expect(problemWith({ ...m, term: 0, logTerm: 0 })).toBe('term 0');
    expect(problemWith({ ...m, to: '' })).toBe('to/from');
    expect(problemWith({ ...m, index: -0 })).toBe('index');
    expect(problemWith({ ...m, type: MessageType.MsgProp })).toBe(`type ${MessageType.MsgProp}`);
  });

  it('round-trips every valid batch: decode(encode(batch)) equals batch', () => {
    fc.assert(
      fc.property(validBatch, (batch) => {
        expect(decodeMessages(encodeMessages(batch)).map(plain)).toEqual(batch.map(plain));
      }),
      { numRuns: 300 },
    );
  });

  it('on random bytes, only refuses with MessageDecodeError or returns well-formed messages', () => {
    const header = Buffer.from([0x46, 0x52, 1]); // magic and version, so that the rest is read
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 400 }), (withHeader, body) => {
        decodeHostile(withHeader ? Buffer.concat([header, body]) : Buffer.from(body));
      }),
      { numRuns: 500 },
    );
  });

  it('on mutations of valid batches, only refuses with MessageDecodeError or returns well-formed messages', () => {
    const outcomes = { refused: 0, accepted: 0 };
    fc.assert(
      fc.property(validBatch, fc.array(mutation, { minLength: 1, maxLength: 4 }), (batch, mutations) => {
        outcomes[decodeHostile(mutate(encodeMessages(batch), mutations))]++;
      }),
      { numRuns: 1000 },
    );
    // Both sides are exercised: mutations that keep a batch valid (e.g. in entry data) and ones that do not.
    expect(outcomes.refused).toBeGreaterThan(0);
    expect(outcomes.accepted).toBeGreaterThan(0);
  });
});

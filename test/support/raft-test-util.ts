// Helpers shared by the core's unit tests (spec files only; not exported from the library).
import { Entry, EntryType, Message, MessageType, NodeId } from '@app/consensus/core';
import { RaftConfig, resolveConfig } from '../../libs/consensus/src/core/config';
import { MemoryStorage } from '../../libs/consensus/src/core/memory-storage';
import { newMessage } from '../../libs/consensus/src/core/message';
import { Raft } from '../../libs/consensus/src/core/raft';

/** An entry with the given index and term and optional payload. */
export function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(data) };
}

/** Entries with consecutive indices from `first`, with the given terms. */
export function ents(first: number, terms: number[]): Entry[] {
  return terms.map((t, k) => ent(first + k, t));
}

/** [index, term] pairs, for compact assertions. */
export function it2(es: readonly Entry[]): [number, number][] {
  return es.map((e) => [e.index, e.term]);
}

/** A deterministic generator of values in [0, 1) for tests. */
export function seededRandom(seed = 1): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** The messages the Raft instance queued (after flushing deferred appends), taken from it. */
export function takeMsgs(r: Raft): Message[] {
  r.flush();
  const m = r.msgs;
  r.msgs = [];
  return m;
}

/** A message from `from` to `to` in `term`, with `fields` over the defaults. */
export function msg(type: MessageType, from: NodeId, to: NodeId, term: number, fields: Partial<Message> = {}): Message {
  return { ...newMessage(type, to, from, term), ...fields };
}

/** The core's test configuration: 10/1 ticks, no pre-vote or check-quorum unless `opts` says so. */
export function testConfig(id: NodeId, peers: NodeId[], opts: Partial<RaftConfig> = {}, storage = new MemoryStorage()): RaftConfig {
  return {
    id,
    peers,
    storage,
    electionTick: 10,
    heartbeatTick: 1,
    preVote: false,
    checkQuorum: false,
    random: seededRandom(id.charCodeAt(0)),
    ...opts,
  };
}

/** A Raft instance for the core's tests (testConfig). */
export function newRaft(id: NodeId, peers: NodeId[], opts: Partial<RaftConfig> = {}, storage = new MemoryStorage()): Raft {
  return new Raft(resolveConfig(testConfig(id, peers, opts, storage)));
}

/** The strict driver for a bare Raft: everything unstable becomes durable (storage + stableTo + onPersisted). */
export function persistAll(r: Raft): void {
  const es = r.raftLog.nextUnstableEnts();
  r.raftLog.unstable.acceptInProgress();
  if (es.length === 0) return;
  (r.raftLog.storage as MemoryStorage).append(es);
  const last = es[es.length - 1];
  r.raftLog.unstable.stableTo(last.index, last.term);
  r.onPersisted();
}

import { ConfChange, ConfChangeType, NodeId } from './types';

/**
 * ConfChange entries: their encoding, and the rules of a simple (one member at a time) change, after
 * etcd-io/raft's confchange.Changer.Simple. Pure functions; raft.ts applies the result.
 */

/**
 * Version of the encoding. A decoder meeting a newer version refuses it rather than misreading it: a
 * node must be upgraded before the cluster writes entries it cannot apply.
 */
const ENCODING_VERSION = 1;

interface Encoded {
  v: number;
  type: ConfChangeType;
  id: NodeId;
  ctx?: string;
}

/** The entry data of a ConfChange: compact versioned JSON, `{"v":1,"type":0,"id":"n4","ctx":"..."}`. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const e: Encoded = { v: ENCODING_VERSION, type: cc.type, id: cc.nodeId };
  if (cc.context !== undefined) e.ctx = cc.context;
  return new TextEncoder().encode(JSON.stringify(e));
}

/** Decodes a ConfChange entry's data. Throws an Error naming the defect on malformed data or another version. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let e: unknown;
  try {
    e = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (err) {
    throw new Error(`raft: malformed ConfChange entry (${(err as Error).message})`);
  }
  if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new Error('raft: malformed ConfChange entry (not an object)');
  const { v, type, id, ctx } = e as Partial<Encoded>;
  if (v !== ENCODING_VERSION) throw new Error(`raft: malformed ConfChange entry (unsupported version ${JSON.stringify(v)})`);
  if (typeof type !== 'number' || ConfChangeType[type] === undefined) {
    throw new Error(`raft: malformed ConfChange entry (unknown type ${JSON.stringify(type)})`);
  }
  if (typeof id !== 'string' || id === '') throw new Error('raft: malformed ConfChange entry (node id missing)');
  if (ctx !== undefined && typeof ctx !== 'string') throw new Error('raft: malformed ConfChange entry (context is not a string)');
  const cc: ConfChange = { type, nodeId: id };
  if (ctx !== undefined) cc.context = ctx;
  return cc;
}

/** "AddNode n4", for logs and errors. */
export function describeConfChange(cc: ConfChange): string {
  return `${ConfChangeType[cc.type] ?? cc.type} ${cc.nodeId}`;
}

/** The members of a configuration, each list in the order members joined. */
export interface Membership {
  voters: NodeId[];
  learners: NodeId[];
}

/**
 * The configuration after `cc`, or a string saying why the change is refused (the configuration then
 * stays as it is). No-ops (adding a voter again, removing an unknown id) return an equal configuration.
 * A change may never leave the configuration without voters: nobody could commit anything again.
 */
export function applySimpleChange(cur: Membership, cc: ConfChange): Membership | string {
  const id = cc.nodeId;
  const isVoter = cur.voters.includes(id);
  const isLearner = cur.learners.includes(id);
  switch (cc.type) {
    case ConfChangeType.AddNode:
      if (isVoter) return cur;
      // A learner is promoted: it keeps its Progress (the log it already holds).
      return { voters: [...cur.voters, id], learners: cur.learners.filter((l) => l !== id) };
    case ConfChangeType.AddLearnerNode:
      // Demoting a voter in one step would change the quorum behind the leader's back (etcd needs a
      // joint configuration for it): refused.
      if (isVoter) return `${id} is a voter; demoting a voter to a learner is not supported`;
      if (isLearner) return cur;
      return { voters: cur.voters, learners: [...cur.learners, id] };
    case ConfChangeType.RemoveNode:
      if (isLearner) return { voters: cur.voters, learners: cur.learners.filter((l) => l !== id) };
      if (!isVoter) return cur;
      if (cur.voters.length === 1) return `removing ${id} would leave no voters`;
      return { voters: cur.voters.filter((v) => v !== id), learners: cur.learners };
    default:
      return `unknown change type ${String(cc.type)}`;
  }
}

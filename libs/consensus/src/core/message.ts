import { Message, MessageType, NodeId } from './types';

/** Builds a message with every required field present (messages are plain data for the transport). */
export function newMessage(type: MessageType, to: NodeId, from: NodeId, term: number): Message {
  return { type, to, from, term, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0 };
}

/** Context of a MsgVote/MsgPreVote sent by a campaign forced by leadership transfer (bypasses leases). */
export const CAMPAIGN_TRANSFER = 'transfer';

/** Message types produced and consumed by the local node only; they never cross the network. */
export function isLocalMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgHup ||
    t === MessageType.MsgBeat ||
    t === MessageType.MsgProp ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgSnapStatus ||
    t === MessageType.MsgCheckQuorum
  );
}

/** Responses: the core ignores them from nodes it does not track. */
export function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgAppResp ||
    t === MessageType.MsgVoteResp ||
    t === MessageType.MsgHeartbeatResp ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgPreVoteResp
  );
}

export function voteRespMsgType(t: MessageType): MessageType {
  if (t === MessageType.MsgVote) return MessageType.MsgVoteResp;
  if (t === MessageType.MsgPreVote) return MessageType.MsgPreVoteResp;
  throw new Error(`not a vote message: ${MessageType[t]}`);
}

/**
 * The early-send rule (Raft thesis 10.2.1). A leader's MsgApp, MsgHeartbeat and MsgSnap do not depend on
 * anything in the same Ready being durable: the leader counts itself toward a commit quorum only for
 * entries it has persisted (in advance()), and its term and vote were made durable before its MsgVote
 * went out. A driver MAY therefore send these before the Ready's persistence completes (replicating to
 * followers in parallel with its own fsync). Every other message (votes, vote and pre-vote responses,
 * append and heartbeat responses, MsgTimeoutNow, MsgReadIndex(Resp), ...) MUST wait until the Ready's
 * hard state and entries are durable, because it promises something about that state.
 */
export function canSendBeforePersist(m: Message): boolean {
  return m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap;
}

/**
 * Errors the core throws to its caller. They are thrown only for conditions the caller can act on
 * (retry elsewhere, fix the call); broken internal invariants throw a plain Error and mean a bug.
 */

/**
 * A proposal (or a read request) was not accepted: this node is not the leader, a leadership transfer is
 * in progress, the uncommitted-size limit would be exceeded, or no leader is known. Nothing was appended;
 * the caller may retry, typically on the leader.
 */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`raft proposal dropped: ${reason}`);
    this.name = 'ProposalDroppedError';
  }
}

/** step() received a message type that only the local node may produce (MsgHup, MsgBeat, MsgProp, ...). */
export class StepLocalMessageError extends Error {
  constructor(type: string) {
    super(`raft: cannot step local message type ${type} received from the network`);
    this.name = 'StepLocalMessageError';
  }
}

/** The ready()/advance() hand-off was used out of order (ready() twice without advance(), or the reverse). */
export class ReadyProtocolError extends Error {
  constructor(message: string) {
    super(`raft: ${message}`);
    this.name = 'ReadyProtocolError';
  }
}

/** The RaftConfig (or the state found in storage) cannot start a node. */
export class RaftConfigError extends Error {
  constructor(message: string) {
    super(`raft config: ${message}`);
    this.name = 'RaftConfigError';
  }
}

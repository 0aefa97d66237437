/**
 * Errors of the consensus driver, as the public API sees them. The KV library maps them to HTTP in one
 * exception filter.
 */

/** This node is not the leader; `leaderUrl` is where the client should go (empty when unknown). */
export class NotLeaderError extends Error {
  constructor(
    readonly leaderName: string,
    readonly leaderUrl: string,
  ) {
    super(`not leader; the leader is ${leaderName} (${leaderUrl})`);
    this.name = 'NotLeaderError';
  }
}

/** No leader is known right now (an election is under way, or this node is cut off from a quorum). */
export class NoLeaderError extends Error {
  constructor() {
    super('no leader is known');
    this.name = 'NoLeaderError';
  }
}

/**
 * A proposal was accepted into the leader's log but was not seen committed in time. Its outcome is
 * unknown: it may still commit later if a quorum returns.
 */
export class ProposalTimeoutError extends Error {
  constructor(
    readonly index: number,
    readonly timeoutMs: number,
  ) {
    super(`proposal at index ${index} was not committed within ${timeoutMs} ms; its outcome is unknown`);
    this.name = 'ProposalTimeoutError';
  }
}

/** A proposal definitely did not take effect (another leader's entry was committed at its index). */
export class ProposalLostError extends Error {
  constructor(readonly index: number) {
    super(`proposal at index ${index} was overwritten by a new leader and did not take effect`);
    this.name = 'ProposalLostError';
  }
}

/** The leader refused the proposal (leadership transfer in progress, or too much uncommitted data). */
export class ProposalRejectedError extends Error {
  constructor(reason: string) {
    super(`proposal rejected: ${reason}`);
    this.name = 'ProposalRejectedError';
  }
}

/** A linearizable read could not confirm leadership in time; nothing was read. */
export class ReadTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`could not confirm leadership with a quorum within ${timeoutMs} ms`);
    this.name = 'ReadTimeoutError';
  }
}

/**
 * Too many requests of one kind (writes waiting for their commit, or linearizable reads waiting for their
 * read index) are already waiting on this node; nothing was proposed or read. Retry after a moment.
 */
export class OverloadedError extends Error {
  constructor(
    readonly kind: 'write' | 'read',
    readonly limit: number,
  ) {
    super(`${limit} ${kind}s are already waiting on this node (MAX_PENDING_REQUESTS)`);
    this.name = 'OverloadedError';
  }
}

/** The node is shutting down and takes no new requests. */
export class ShuttingDownError extends Error {
  constructor() {
    super('node is shutting down');
    this.name = 'ShuttingDownError';
  }
}

/** The node's configuration contradicts the identity recorded in its data directory; it must not start. */
export class IdentityMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityMismatchError';
  }
}

/**
 * The disk refused a write (ENOSPC, EDQUOT, or EIO while writing): nothing of it was kept and the storage
 * is still usable, so the write may be retried once space returns (RaftStorage.save). `code` is the
 * system's error code. Not for a failed fsync: after one, the page cache cannot be trusted.
 */
export class StorageFullError extends Error {
  readonly retryable = true;
  constructor(
    message: string,
    readonly code: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'StorageFullError';
  }
}

/** True for a StorageFullError, also across module copies (checked by name and flag, not by class). */
export function isStorageFull(error: unknown): error is StorageFullError {
  return error instanceof Error && error.name === 'StorageFullError' && (error as StorageFullError).retryable === true;
}

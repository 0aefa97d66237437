/**
 * The Raft core: the algorithm as a pure, deterministic state machine (no I/O, timers or Nest; see
 * docs/consensus.md). Adapters that need only the vocabulary (types, Storage, errors) import this entry,
 * `@app/consensus/core`, and do not load the Nest driver.
 */
export * from './types';
export * from './storage';
export { RawNode } from './raw-node';
export { encodeConfChange, decodeConfChange } from './confchange';
export type { Status, ProgressStatus } from './raw-node';
export type { RaftConfig, RaftLogger } from './config';
export { MemoryStorage, SnapshotOutOfDateError } from './memory-storage';
export { ProposalDroppedError, StepLocalMessageError, ReadyProtocolError, RaftConfigError } from './errors';
export { canSendBeforePersist, newMessage } from './message';
export type { ProgressState } from './progress';

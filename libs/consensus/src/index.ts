// ---- Raft core (pure, deterministic; see docs/consensus.md) -------------------------------------------
export * from './core/types';
export * from './core/storage';
export { RawNode } from './core/raw-node';
export type { Status, ProgressStatus } from './core/raw-node';
export type { RaftConfig, RaftLogger } from './core/config';
export { MemoryStorage, SnapshotOutOfDateError } from './core/memory-storage';
export { ProposalDroppedError, StepLocalMessageError, ReadyProtocolError, RaftConfigError } from './core/errors';
export { canSendBeforePersist } from './core/message';
export type { ProgressState } from './core/progress';
// ---- end of Raft core exports --------------------------------------------------------------------------

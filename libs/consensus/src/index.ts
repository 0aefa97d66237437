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

// ---- The Nest side: ports the other libraries implement, the driver and its module ---------------------
export * from './ports';
export * from './errors';
export { RaftNodeService, CONSENSUS_OPTIONS } from './raft-node.service';
export type { Applied, ConsensusOptions, NodeStatus, PeerStatus } from './raft-node.service';
export { RaftMetrics } from './raft.metrics';
export { ConsensusModule } from './consensus.module';
export type { ConsensusModuleAsyncOptions } from './consensus.module';

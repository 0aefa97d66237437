// The Raft core (pure, deterministic; also importable alone as `@app/consensus/core`).
export * from './core';

// The node loop and its ports: what runs the core, in production and in the simulator alike.
export * from './ports';
export * from './errors';
export { RaftNode } from './raft-node';
export type { RaftNodeOptions, RaftNodePorts, CoreTuning } from './raft-node-options';
export type { Applied, ProposalWaiter } from './proposal-tracker';
export type { ReadWaiter } from './read-batcher';
export type { NodeStatus, PeerStatus } from './node-status';
export * from './membership';
export { PROMOTE_MAX_LAG } from './members';
export { clusterIdFor, identityMeta, IDENTITY_META_FORMAT, readIdentity, recordIdentity, recordRemoved } from './identity';
export type { IdentityMeta } from './identity';
export { systemClock } from './system-clock';

// The Nest side: the service that binds the ports and its module.
export { RaftNodeService, CONSENSUS_OPTIONS } from './raft-node.service';
export type { ConsensusOptions } from './raft-node.service';
export { RaftMetrics } from './raft.metrics';
export { ConsensusModule } from './consensus.module';
export type { ConsensusModuleAsyncOptions } from './consensus.module';

import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { randomInt } from 'node:crypto';
import { NodeId } from './core/types';
import { checkIdentity } from './identity';
import { PEER_TRANSPORT, PeerTransport, RAFT_STORAGE, RaftStorage, STATE_MACHINE, StateMachine } from './ports';
import { RaftMetrics } from './raft.metrics';
import { RaftNode } from './raft-node';
import { systemClock } from './system-clock';

export const CONSENSUS_OPTIONS = Symbol('CONSENSUS_OPTIONS');

export interface ConsensusOptions {
  /** This member's identity in the Raft group: its advertised URL. */
  id: NodeId;
  /** Human name (NODE_ID), reported as the leader's name. */
  name: string;
  /** Every voter's identity, this node's included. */
  members: NodeId[];
  /** Fingerprint of the member set, recorded in the data directory at first start. */
  clusterId: string;
  heartbeatIntervalMs: number;
  /** Base election timeout; the core randomizes each election wait in [base, 2 x base). */
  electionTimeoutMs: number;
  /** How long a proposal or a linearizable read may wait before the client is answered. */
  requestTimeoutMs: number;
  /** Bounds the leader's uncommitted tail (bytes): proposals beyond are refused instead of queued. */
  maxUncommittedBytes?: number;
  /** At most this many writes, and this many linearizable reads, wait at once (see RaftNodeOptions). */
  maxPendingRequests?: number;
  /** See RaftNodeOptions.snapshotEntries / snapshotCatchUpEntries. */
  snapshotEntries?: number;
  snapshotCatchUpEntries?: number;
  /** Size of the newest snapshot file, for the metrics (undefined when unknown). */
  snapshotBytes?: () => number | undefined;
  /** Source of randomness for election timeouts (default: crypto). */
  random?: () => number;
  /** Called when the node cannot go on safely (see RaftNodeOptions.onFatal). Default: exit with code 70. */
  onFatal?: (error: Error) => void;
}

/**
 * The Nest shell around RaftNode: binds its ports to the WAL, the peer transport, the KV state machine, the
 * system clock, Nest's logger and the Prometheus metrics, and ties it to the application's lifecycle (the
 * data directory's identity is checked and the node started at bootstrap; it stops with the module).
 */
@Injectable()
export class RaftNodeService extends RaftNode implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(
    @Inject(CONSENSUS_OPTIONS) private readonly consensus: ConsensusOptions,
    @Inject(RAFT_STORAGE) private readonly raftStorage: RaftStorage,
    @Inject(PEER_TRANSPORT) transport: PeerTransport,
    @Inject(STATE_MACHINE) stateMachine: StateMachine,
    private readonly raftMetrics: RaftMetrics,
  ) {
    const { heartbeatIntervalMs, electionTimeoutMs } = consensus;
    super(
      {
        id: consensus.id,
        name: consensus.name,
        members: consensus.members,
        tickMs: heartbeatIntervalMs,
        electionTick: Math.max(2, Math.round(electionTimeoutMs / heartbeatIntervalMs)),
        requestTimeoutMs: consensus.requestTimeoutMs,
        maxPendingRequests: consensus.maxPendingRequests,
        snapshotEntries: consensus.snapshotEntries,
        snapshotCatchUpEntries: consensus.snapshotCatchUpEntries,
        tuning: { maxUncommittedEntriesSize: consensus.maxUncommittedBytes ?? 64 * 1024 * 1024 },
        random: consensus.random ?? (() => randomInt(0x100000000) / 0x100000000),
        onFatal: consensus.onFatal ?? (() => process.exit(70)),
      },
      { storage: raftStorage, transport, stateMachine, clock: systemClock, logger: new Logger('Raft'), metrics: raftMetrics },
    );
  }

  /**
   * Checks the data directory's identity, then starts the node. Rejects with IdentityMismatchError when the
   * directory belongs to another node or another cluster.
   */
  async onApplicationBootstrap(): Promise<void> {
    await checkIdentity(this.raftStorage, this.consensus);
    await new Promise<void>((resolve, reject) => this.start((error) => (error ? reject(error) : resolve())));
    this.raftMetrics.bind(() => {
      const s = this.raftStatus();
      const log = this.raftStorage.storage;
      return {
        term: s.term,
        state: s.raftState,
        commit: s.commit,
        lastIndex: s.lastIndex,
        applied: this.applied,
        snapshotIndex: log.snapshot().metadata.index,
        firstIndex: log.firstIndex(),
        snapshotBytes: this.consensus.snapshotBytes?.(),
      };
    });
  }

  onModuleDestroy(): Promise<void> {
    return this.stop();
  }
}

import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { randomInt } from 'node:crypto';
import { recordRemoved } from './identity';
import { CLUSTER_BOOTSTRAP, ClusterBootstrap } from './membership';
import { PEER_TRANSPORT, PeerTransport, RAFT_STORAGE, RaftStorage, STATE_MACHINE, StateMachine } from './ports';
import { RaftMetrics } from './raft.metrics';
import { RaftNode } from './raft-node';
import { systemClock } from './system-clock';

export const CONSENSUS_OPTIONS = Symbol('CONSENSUS_OPTIONS');

export interface ConsensusOptions {
  /**
   * NODE_ID: this member's identity in the Raft group and its name (RaftNodeOptions.id and .name). The
   * members and the cluster come from CLUSTER_BOOTSTRAP at start.
   */
  name: string;
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
  /** WAL_DIR, named in the warning logged when the disk refuses writes. */
  walDir?: string;
  /** Size of the newest snapshot file, for the metrics (undefined when unknown). */
  snapshotBytes?: () => number | undefined;
  /** Source of randomness for election timeouts (default: crypto). */
  random?: () => number;
  /** Called when the node cannot go on safely (see RaftNodeOptions.onFatal). Default: exit with code 70. */
  onFatal?: (error: Error) => void;
  /**
   * Called once the node was removed from the cluster and recorded it in its data directory (so that it
   * refuses to start on it again). Default: exit with code 0, a moment later (the answer to the request
   * that removed it, when this node led, goes out first).
   */
  onRemoved?: () => void;
}

/**
 * The Nest shell around RaftNode: binds its ports to the WAL, the peer transport, the KV state machine, the
 * system clock, Nest's logger and the Prometheus metrics, and ties it to the application's lifecycle: at
 * bootstrap, it finds the node's cluster identity (CLUSTER_BOOTSTRAP: the data directory's record, or
 * discovery, or a join) and then starts the node (see started()); it stops with the module.
 */
@Injectable()
export class RaftNodeService extends RaftNode implements OnApplicationBootstrap, OnModuleDestroy {
  /** Finding the cluster, then starting the node (onApplicationBootstrap). */
  private bootstrapping?: Promise<void>;

  constructor(
    @Inject(CONSENSUS_OPTIONS) private readonly consensus: ConsensusOptions,
    @Inject(RAFT_STORAGE) private readonly raftStorage: RaftStorage,
    @Inject(PEER_TRANSPORT) transport: PeerTransport,
    @Inject(STATE_MACHINE) stateMachine: StateMachine,
    private readonly raftMetrics: RaftMetrics,
    @Inject(CLUSTER_BOOTSTRAP) private readonly bootstrap: ClusterBootstrap,
  ) {
    const { heartbeatIntervalMs, electionTimeoutMs } = consensus;
    super(
      {
        id: consensus.name,
        name: consensus.name,
        tickMs: heartbeatIntervalMs,
        electionTick: Math.max(2, Math.round(electionTimeoutMs / heartbeatIntervalMs)),
        requestTimeoutMs: consensus.requestTimeoutMs,
        maxPendingRequests: consensus.maxPendingRequests,
        snapshotEntries: consensus.snapshotEntries,
        snapshotCatchUpEntries: consensus.snapshotCatchUpEntries,
        walDir: consensus.walDir,
        tuning: { maxUncommittedEntriesSize: consensus.maxUncommittedBytes ?? 64 * 1024 * 1024 },
        random: consensus.random ?? (() => randomInt(0x100000000) / 0x100000000),
        onFatal: consensus.onFatal ?? (() => process.exit(70)),
        onRemoved: () => void this.removedFromCluster(),
      },
      { storage: raftStorage, transport, stateMachine, clock: systemClock, logger: new Logger('Raft'), metrics: raftMetrics },
    );
  }

  /**
   * Starts the node in the background: finds the cluster identity, hands it to the node (useIdentity), then
   * starts it; started() tells when that is done, or why it failed.
   *
   * Not awaited here, on purpose: at first start, discovery waits for every peer to answer `GET /raft/hello`,
   * and the peers are waiting for this node's answer too. Nest opens the HTTP server only once every bootstrap
   * hook has returned, so a hook that waited would keep every node of a new cluster from ever answering.
   */
  onApplicationBootstrap(): void {
    this.bootstrapping ??= this.startInCluster();
    // Whoever runs the node awaits started() (main.ts): an unobserved failure must not crash the process first.
    this.bootstrapping.catch(() => undefined);
  }

  /**
   * Resolves once the node has started. Rejects with the reason it cannot: the data directory belongs to
   * another node or cluster, or to a removed node (IdentityMismatchError); discovery or the join refused
   * (ClusterBootstrapError); the storage failed. Call after the application's bootstrap.
   */
  started(): Promise<void> {
    return this.bootstrapping ?? Promise.reject(new Error('the node is started at application bootstrap, which has not run'));
  }

  private async startInCluster(): Promise<void> {
    const identity = await this.bootstrap.resolve();
    this.useIdentity(identity);
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
        storageFull: this.freeze.frozen,
        storageRefusedWrites: this.freeze.counts.refusedWrites,
        storageDroppedMessages: this.freeze.counts.droppedMessages,
      };
    });
  }

  private async removedFromCluster(): Promise<void> {
    const logger = new Logger('Raft');
    try {
      await recordRemoved(this.raftStorage);
    } catch (error) {
      logger.error(`${this.consensus.name}: could not record the removal in WAL_DIR: ${(error as Error).message}`);
    }
    logger.log(`${this.consensus.name}: removed from the cluster; exiting (this data directory will not start again)`);
    if (this.consensus.onRemoved) this.consensus.onRemoved();
    else setTimeout(() => process.exit(0), 500);
  }

  onModuleDestroy(): Promise<void> {
    return this.stop();
  }
}

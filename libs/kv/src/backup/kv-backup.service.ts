import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ConfState, NoLeaderError, RAFT_STORAGE, RaftNode, RaftStorage, SnapshotMetadata, StateType } from '@app/consensus';
import { encodeSnapshotFile } from '@app/storage';
import { KvStateMachine } from '../kv-state-machine';

/**
 * A consistent snapshot of the whole map, ready to be streamed as a snapshot file (docs/storage.md, "Snapshot
 * files"). It pins a point-in-time view of the state machine until released: call release() once done with
 * it (file() does so itself when it ends, fails or is closed early; a second release does nothing).
 */
export interface KvBackup {
  /** The log position the content reflects (the node's applied index, and that entry's term) and the members. */
  readonly metadata: SnapshotMetadata;
  /** Number of keys in the snapshot. */
  readonly keys: number;
  /**
   * The file's bytes, a record at a time, pulled lazily: the content is encoded as it is consumed, so neither
   * the node nor the consumer holds the whole file. Call it once.
   */
  file(): AsyncGenerator<Buffer>;
  release(): void;
}

/**
 * Backups of the map (`GET /cluster/snapshot`, `kvctl snapshot save`): what etcd's `snapshot save` does.
 *
 * The snapshot is taken at a linearizable point, as a linearizable read is (KvService.get): a ReadIndex
 * barrier on the leader (a follower refuses with NotLeaderError, which the API answers with a redirect),
 * then, in the same synchronous turn as the barrier's continuation, the state machine's view and the
 * node's applied index. Nothing can apply an entry between those two reads, so the view is exactly the map at
 * that index, and that index is at or past every write acknowledged before the request.
 */
@Injectable()
export class KvBackupService implements OnModuleInit {
  private readonly logger = new Logger('Backup');
  private raftStorage?: RaftStorage;

  constructor(
    private readonly raft: RaftNode,
    private readonly stateMachine: KvStateMachine,
    private readonly moduleRef: ModuleRef,
  ) {}

  onModuleInit(): void {
    // The term of the applied entry is in the log, which the node's storage holds. The KV module is not
    // given the storage module (app wiring), so it is looked up in the whole application; a test app
    // without storage simply cannot take backups.
    try {
      this.raftStorage = this.moduleRef.get<RaftStorage>(RAFT_STORAGE, { strict: false });
    } catch {
      this.raftStorage = undefined;
    }
  }

  /**
   * Takes a snapshot after a read barrier. Rejects as a linearizable read does: NotLeaderError on a follower,
   * NoLeaderError, ReadTimeoutError, OverloadedError, ShuttingDownError; nothing is pinned then.
   */
  async snapshot(): Promise<KvBackup> {
    await this.raft.readBarrier();
    // From here to the view, no await: the view and the applied index must describe one state.
    const index = this.raft.applied;
    const view = this.stateMachine.snapshot();
    let metadata: SnapshotMetadata;
    try {
      metadata = { index, term: this.termOf(index), confState: this.confState() };
    } catch (error) {
      view.release();
      throw error;
    }
    const logger = this.logger;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      view.release();
    };
    async function* file(): AsyncGenerator<Buffer> {
      try {
        yield* encodeSnapshotFile(metadata, view.chunks());
      } catch (error) {
        logger.warn(`backup at index ${metadata.index} failed while streaming: ${(error as Error).message}`);
        throw error;
      } finally {
        release();
      }
    }
    return { metadata, keys: view.size, file, release };
  }

  /** The term of the entry at `index`, which this node applied: so the log holds it (or its snapshot ends there). */
  private termOf(index: number): number {
    if (!this.raftStorage) throw new Error('backups need the node storage (RAFT_STORAGE), which this application does not provide');
    return this.raftStorage.storage.term(index);
  }

  /**
   * The members to record. The leader tracks every voter's progress, itself included. A leader that stepped
   * down since its barrier falls back on the configuration the log records, when it records one (after a
   * snapshot); otherwise the request fails as a read would, and the client retries.
   */
  private confState(): ConfState {
    const status = this.raft.raftStatus();
    if (status.raftState === StateType.Leader) return { voters: Object.keys(status.progress) };
    const recorded = this.raftStorage?.storage.initialState().confState;
    if (recorded && recorded.voters.length > 0) return recorded;
    throw new NoLeaderError();
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { RaftNode } from '@app/consensus';
import { encodeCommand } from './kv-command';
import { ApplyResult, KvStateMachine } from './kv-state-machine';
import { Consistency } from './dto/read-query.dto';
import type { WatchHubOptions } from './watch/watch-hub';
import type { WatchStreamOptions } from './watch/watch-options';
import { DataQuotaExceededError, InvalidKeyError, ValueTooLargeError } from './kv.errors';

export const KV_OPTIONS = Symbol('KV_OPTIONS');

export interface KvOptions {
  maxKeyBytes: number;
  maxValueBytes: number;
  /** MAX_DATA_BYTES: the quota on KvStateMachine.dataBytes (undefined: none). See exceedsDataQuota. */
  maxDataBytes?: number;
  /** GET /watch: history bounds, heartbeat, per-stream buffer (defaults: DEFAULT_WATCH_OPTIONS, DEFAULT_STREAM_OPTIONS). */
  watch?: Partial<WatchHubOptions & WatchStreamOptions>;
}

/**
 * The quota decision: a put that changes the map's size by `growth` bytes (KvStateMachine.putGrowth) while
 * it holds `dataBytes` is refused when it grows the data past `quotaBytes`. A put that does not grow the data
 * (an overwrite with a value no longer) is always allowed, even over the quota, so that a full store can be
 * brought back under it; deletes are never checked.
 */
export function exceedsDataQuota(dataBytes: number, growth: number, quotaBytes: number | undefined): boolean {
  return quotaBytes !== undefined && growth > 0 && dataBytes + growth > quotaBytes;
}

/** The KV operations: writes go through Raft; linearizable reads through a ReadIndex barrier. */
@Injectable()
export class KvService {
  constructor(
    private readonly raft: RaftNode,
    private readonly stateMachine: KvStateMachine,
    @Inject(KV_OPTIONS) private readonly options: KvOptions,
  ) {}

  /** Stores `value` under `key` once committed by a quorum and applied. Returns the log index. */
  async put(key: string, value: string): Promise<{ index: number }> {
    this.checkKey(key);
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > this.options.maxValueBytes) throw new ValueTooLargeError(bytes, this.options.maxValueBytes);
    this.checkQuota(key, value);
    const { index } = await this.raft.propose(encodeCommand({ op: 'put', key, value }));
    return { index };
  }

  /** Removes `key` once committed; succeeds whether or not it existed, and says which. */
  async delete(key: string): Promise<{ index: number; existed: boolean }> {
    this.checkKey(key);
    const { index, result } = await this.raft.propose(encodeCommand({ op: 'delete', key }));
    return { index, existed: (result as ApplyResult).existed };
  }

  /**
   * Reads `key`: linearizable (on any node: the leader confirms a read index with a quorum, a follower asks the
   * leader for it, and the node answers once it has applied that index) or stale (this node's copy, at once).
   */
  async get(key: string, consistency: Consistency = 'linearizable'): Promise<string | undefined> {
    this.checkKey(key);
    if (consistency === 'linearizable') await this.raft.readBarrier({ onFollower: true });
    return this.stateMachine.get(key);
  }

  /**
   * Checked against the leader's applied state, before proposing: writes proposed but not yet applied are
   * not counted, so dataBytes may overshoot the quota by what they add (at most MAX_PENDING_REQUESTS x
   * (MAX_KEY_BYTES + MAX_VALUE_BYTES), plus what a former leader left in the log unapplied). A follower does
   * not check: propose() redirects the write to the leader, which decides on its own state.
   */
  private checkQuota(key: string, value: string): void {
    const quota = this.options.maxDataBytes;
    if (quota === undefined || !this.raft.isLeader) return;
    const dataBytes = this.stateMachine.dataBytes;
    if (exceedsDataQuota(dataBytes, this.stateMachine.putGrowth(key, value), quota)) {
      throw new DataQuotaExceededError(dataBytes, quota);
    }
  }

  private checkKey(key: string): void {
    if (key.length === 0) throw new InvalidKeyError('key must not be empty');
    const bytes = Buffer.byteLength(key, 'utf8');
    if (bytes > this.options.maxKeyBytes) {
      throw new InvalidKeyError(`key is ${bytes} bytes; the limit is ${this.options.maxKeyBytes} (MAX_KEY_BYTES)`);
    }
  }
}

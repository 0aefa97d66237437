import { Inject, Injectable } from '@nestjs/common';
import { RaftNode } from '@app/consensus';
import { encodeCommand } from './kv-command';
import { ApplyResult, KvStateMachine } from './kv-state-machine';
import { Consistency } from './dto/read-query.dto';
import { InvalidKeyError, ValueTooLargeError } from './kv.errors';

export const KV_OPTIONS = Symbol('KV_OPTIONS');

export interface KvOptions {
  maxKeyBytes: number;
  maxValueBytes: number;
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

  private checkKey(key: string): void {
    if (key.length === 0) throw new InvalidKeyError('key must not be empty');
    const bytes = Buffer.byteLength(key, 'utf8');
    if (bytes > this.options.maxKeyBytes) {
      throw new InvalidKeyError(`key is ${bytes} bytes; the limit is ${this.options.maxKeyBytes} (MAX_KEY_BYTES)`);
    }
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { RaftNode } from '@app/consensus';
import { encodeCommand, KvCondition, KvIdempotency } from './kv-command';
import { DEFAULT_IDEMPOTENCY_MAX_KEYS, DEFAULT_IDEMPOTENCY_WINDOW_MS, IdempotentOutcome } from './idempotency-table';
import { requestFingerprint, WriteRequest } from './write-options';
import { KvRecord } from './kv-snapshot-format';
import { ApplyResult, KvStateMachine } from './kv-state-machine';
import { Consistency } from './dto/read-query.dto';
import { DataQuotaExceededError, IdempotencyKeyReusedError, InvalidKeyError, PreconditionFailedError, ValueTooLargeError } from './kv.errors';
import type { WatchHubOptions } from './watch/watch-hub';
import type { WatchStreamOptions } from './watch/watch-options';

/**
 * About how many bytes of keys and values (UTF-8) one page of a listing holds at most: a page ends at the
 * item that reaches it (and says `more`), so that `limit` values of up to MAX_VALUE_BYTES each cannot make
 * one answer of gigabytes. A page always holds at least one item.
 */
export const LIST_PAGE_BYTES = 4 * 1024 * 1024;

/** What to list (see KvService.list). */
export interface ListRequest {
  /** '' lists every key. */
  prefix: string;
  /** The cursor: the last key of the previous page (excluded). */
  after?: string;
  /** The most items in the page (the controller allows 1 to LIST_MAX_LIMIT). */
  limit: number;
  /** Leave the values out. */
  keysOnly: boolean;
}

export interface ListPage {
  /** In UTF-8 byte order; `value` is absent with keysOnly. */
  items: Array<{ key: string; value?: string; createIndex?: number; modIndex?: number }>;
  /** Whether more keys of the prefix follow the last item. */
  more: boolean;
  /** The last item's key when `more`, else null: the `after` of the next page. */
  next: string | null;
}

export const KV_OPTIONS = Symbol('KV_OPTIONS');

/** What a write may carry besides its key, value and condition. */
export interface WriteOptions {
  /** Seconds until the key expires (a PUT; see write-options.ts, parseTtl). Without it, the key never does. */
  ttl?: number;
  /**
   * An Idempotency-Key (see write-options.ts, parseIdempotencyKey): a write with a key already applied for the
   * same request is answered that first outcome (`replayed: true`) without applying again; with a key
   * already applied for another request, it fails with IdempotencyKeyReusedError.
   */
  idempotencyKey?: string;
}

export interface KvOptions {
  maxKeyBytes: number;
  maxValueBytes: number;
  /** MAX_DATA_BYTES: the quota on KvStateMachine.dataBytes (undefined: none). See exceedsDataQuota. */
  maxDataBytes?: number;
  /** GET /watch: history bounds, heartbeat, per-stream buffer (defaults: DEFAULT_WATCH_OPTIONS, DEFAULT_STREAM_OPTIONS). */
  watch?: Partial<WatchHubOptions & WatchStreamOptions>;
  /** How often the leader looks for expired keys (default DEFAULT_EXPIRY_INTERVAL_MS, a heartbeat). */
  expiryIntervalMs?: number;
  /** IDEMPOTENCY_WINDOW_S in ms (default DEFAULT_IDEMPOTENCY_WINDOW_MS); the same on every member. */
  idempotencyWindowMs?: number;
  /** IDEMPOTENCY_MAX_KEYS (default DEFAULT_IDEMPOTENCY_MAX_KEYS); the same on every member. */
  idempotencyMaxKeys?: number;
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
  ) {
    if (options.idempotencyWindowMs !== undefined || options.idempotencyMaxKeys !== undefined) {
      stateMachine.useIdempotencyLimits({
        windowMs: options.idempotencyWindowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS,
        maxKeys: options.idempotencyMaxKeys ?? DEFAULT_IDEMPOTENCY_MAX_KEYS,
      });
    }
  }

  /** Wall clock, ms since the epoch: the `at` of the commands that need time (a replaceable seam for tests). */
  now: () => number = () => Date.now();

  /**
   * Stores `value` under `key` once committed by a quorum and applied. Returns the log index (the key's new
   * modIndex) and the key's createIndex. With a `condition`, evaluated when the entry is applied, rejects with
   * PreconditionFailedError if it did not hold (nothing changed).
   */
  async put(
    key: string,
    value: string,
    condition?: KvCondition,
    options: WriteOptions = {},
  ): Promise<{ index: number; createIndex: number; modIndex: number; replayed: boolean }> {
    this.checkKey(key);
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > this.options.maxValueBytes) throw new ValueTooLargeError(bytes, this.options.maxValueBytes);
    const { ttl } = options;
    const idempotency = this.idempotency(options, { method: 'PUT', key, value, condition, ttl });
    const replay = idempotency && this.replay(key, condition, idempotency);
    if (replay) return { index: replay.index, createIndex: replay.createIndex!, modIndex: replay.modIndex!, replayed: true };
    this.checkQuota(key, value);
    // The leader's clock: propose() redirects a follower's write, so `at` is taken where it is proposed.
    const timed = ttl === undefined && !idempotency ? {} : { ...(ttl === undefined ? {} : { ttl }), at: this.now() };
    const proposed = await this.raft.propose(encodeCommand({ op: 'put', key, value, condition, ...timed, ...(idempotency ? { idempotency } : {}) }));
    const { index, applied } = outcome(key, condition, idempotency, proposed.index, proposed.result as ApplyResult);
    return { index, createIndex: applied.createIndex ?? index, modIndex: applied.modIndex ?? index, replayed: index !== proposed.index };
  }

  /** Removes `key` once committed; succeeds whether or not it existed, and says which. `condition`: as for put. */
  async delete(key: string, condition?: KvCondition, options: WriteOptions = {}): Promise<{ index: number; existed: boolean; replayed: boolean }> {
    this.checkKey(key);
    const idempotency = this.idempotency(options, { method: 'DELETE', key, condition });
    const replay = idempotency && this.replay(key, condition, idempotency);
    if (replay) return { index: replay.index, existed: replay.existed, replayed: true };
    const timed = idempotency ? { at: this.now(), idempotency } : {};
    const proposed = await this.raft.propose(encodeCommand({ op: 'delete', key, condition, ...timed }));
    const { index, applied } = outcome(key, condition, idempotency, proposed.index, proposed.result as ApplyResult);
    return { index, existed: applied.existed, replayed: index !== proposed.index };
  }

  private idempotency(options: WriteOptions, request: WriteRequest): KvIdempotency | undefined {
    const token = options.idempotencyKey;
    return token === undefined ? undefined : { token, fingerprint: requestFingerprint(request) };
  }

  /**
   * The fast path of a retry: this node has already applied the key's first write, so its outcome is final
   * and is answered at once, without a proposal (on a follower too). Undefined when the key is not known
   * here (the write is then proposed, and apply decides).
   */
  private replay(key: string, condition: KvCondition | undefined, idempotency: KvIdempotency): IdempotentOutcome | undefined {
    const seen = this.stateMachine.idempotentOutcome(idempotency.token);
    if (seen === undefined) return undefined;
    if (!seen.fingerprint.equals(idempotency.fingerprint)) throw new IdempotencyKeyReusedError(idempotency.token);
    checkCondition(key, condition, { ...seen.outcome, valid: true }, true);
    return seen.outcome;
  }

  /**
   * Reads `key`: linearizable (on any node: the leader confirms a read index with a quorum, a follower asks the
   * leader for it, and the node answers once it has applied that index) or stale (this node's copy, at once).
   */
  async get(key: string, consistency: Consistency = 'linearizable'): Promise<string | undefined> {
    return (await this.read(key, consistency))?.value;
  }

  /** What a read waits for: linearizable, the read index (ReadIndex, forwarded by a follower); stale, nothing. */
  private async barrier(consistency: Consistency): Promise<void> {
    if (consistency === 'linearizable') await this.raft.readBarrier({ onFollower: true });
  }

  /** get(), with the key's createIndex and modIndex. */
  async read(key: string, consistency: Consistency = 'linearizable'): Promise<KvRecord | undefined> {
    this.checkKey(key);
    await this.barrier(consistency);
    return this.stateMachine.getRecord(key);
  }

  /**
   * One page of the keys starting with `prefix`, after `after`, in UTF-8 byte order, with their values, at
   * the same consistency as get(). The page is read in one synchronous step after the read barrier, so it is
   * the state at one applied index; successive pages may see writes made in between (a key created behind
   * the cursor is not seen, one deleted ahead of it is not returned). The page ends early, with `more`, once
   * its keys and values reach LIST_PAGE_BYTES.
   */
  async list(request: ListRequest, consistency: Consistency = 'linearizable'): Promise<ListPage> {
    const { prefix, after, limit, keysOnly } = request;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`list limit must be a positive integer (got ${limit})`);
    await this.barrier(consistency);
    const page = this.stateMachine.keys({ prefix, after, limit });
    const items: ListPage['items'] = [];
    let more = page.more;
    let bytes = 0;
    for (const key of page.keys) {
      const record = keysOnly ? undefined : this.stateMachine.getRecord(key)!;
      items.push(record === undefined ? { key } : { key, value: record.value, createIndex: record.createIndex, modIndex: record.modIndex });
      bytes += Buffer.byteLength(key, 'utf8') + (record === undefined ? 0 : Buffer.byteLength(record.value, 'utf8'));
      if (bytes >= LIST_PAGE_BYTES && items.length < page.keys.length) {
        more = true;
        break;
      }
    }
    return { items, more, next: more ? items[items.length - 1].key : null };
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

/**
 * The index and result of an applied write: its own, or (a retry) the first write's with its index. Throws
 * IdempotencyKeyReusedError or PreconditionFailedError as apply decided.
 */
function outcome(
  key: string,
  condition: KvCondition | undefined,
  idempotency: KvIdempotency | undefined,
  index: number,
  result: ApplyResult,
): { index: number; applied: ApplyResult } {
  if (result.idempotencyMismatch) throw new IdempotencyKeyReusedError(idempotency!.token);
  const first = result.replayOf ?? index;
  return { index: first, applied: checkCondition(key, condition, result, result.replayOf !== undefined) };
}

/** The result of an applied write, or PreconditionFailedError when its condition did not hold. */
function checkCondition(key: string, condition: KvCondition | undefined, result: ApplyResult, replayed = false): ApplyResult {
  if (condition === undefined || result.conditionHeld) return result;
  const now = result.modIndex === null ? 'the key does not exist' : `the key was last changed at index ${result.modIndex}`;
  const wanted =
    condition.kind === 'absent'
      ? 'If-None-Match: * (create only)'
      : condition.kind === 'exists'
        ? 'If-Match: * (the key must exist)'
        : `If-Match: "${condition.modIndex}"`;
  throw new PreconditionFailedError(key, result.modIndex, `Precondition failed: ${wanted}, but ${now}`, replayed);
}

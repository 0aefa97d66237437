import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { RaftNode } from '@app/consensus';
import { InvalidKeyError } from '../kv.errors';
import { KV_OPTIONS, KvOptions } from '../kv.service';
import { WatchFilter, WatchHub } from './watch-hub';
import { DEFAULT_STREAM_OPTIONS, WatchStreamOptions } from './watch-options';

/** How often a removed node's streams are looked for (removal is rare; this bounds how long they outlive it). */
const REMOVAL_CHECK_MS = 500;

/**
 * Runs the watch hub in the node: binds it to the node's applied index, sends heartbeats, ends every stream
 * when the node is removed from the cluster or shuts down (before the HTTP server closes, which would
 * otherwise wait for endless responses).
 */
@Injectable()
export class WatchService implements OnModuleInit, OnModuleDestroy {
  private timers: NodeJS.Timeout[] = [];
  readonly stream: WatchStreamOptions;

  constructor(
    readonly hub: WatchHub,
    private readonly raft: RaftNode,
    @Inject(KV_OPTIONS) private readonly options: KvOptions,
  ) {
    this.stream = { ...DEFAULT_STREAM_OPTIONS, ...options.watch };
    if (options.watch) hub.configure(options.watch);
  }

  onModuleInit(): void {
    this.hub.bind(() => this.raft.applied);
    const heartbeat = setInterval(() => this.hub.heartbeat(), this.stream.heartbeatMs);
    const removal = setInterval(() => {
      if (this.raft.isRemoved && this.hub.watcherCount > 0) this.hub.closeAll('this node was removed from the cluster');
    }, REMOVAL_CHECK_MS);
    heartbeat.unref();
    removal.unref();
    this.timers = [heartbeat, removal];
  }

  onModuleDestroy(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.hub.closeAll('this node is shutting down');
  }

  /** The filter a query asks for; throws InvalidKeyError (400) unless exactly one of key and prefix is valid. */
  filterOf(key: string | undefined, prefix: string | undefined): WatchFilter {
    if ((key === undefined) === (prefix === undefined)) throw new InvalidKeyError('give exactly one of key and prefix');
    const name = key ?? prefix!;
    if (key !== undefined && key.length === 0) throw new InvalidKeyError('key must not be empty');
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes > this.options.maxKeyBytes) {
      throw new InvalidKeyError(`${key !== undefined ? 'key' : 'prefix'} is ${bytes} bytes; the limit is ${this.options.maxKeyBytes} (MAX_KEY_BYTES)`);
    }
    return key !== undefined ? { key } : { prefix: prefix! };
  }
}

import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { RaftNode } from '@app/consensus';
import { ExpiryScheduler } from './kv-expiry';
import { KvStateMachine } from './kv-state-machine';
import { KV_OPTIONS, KvOptions } from './kv.service';

/** How often the leader looks for expired keys, unless KvOptions.expiryIntervalMs says otherwise. */
export const DEFAULT_EXPIRY_INTERVAL_MS = 100;

/** The Nest shell of ExpiryScheduler: ticks it on a timer, with the node's leadership and the wall clock. */
@Injectable()
export class KvExpiryService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('KvExpiry');
  readonly scheduler: ExpiryScheduler;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly raft: RaftNode,
    machine: KvStateMachine,
    @Inject(KV_OPTIONS) private readonly options: KvOptions,
  ) {
    this.scheduler = new ExpiryScheduler({
      machine,
      isLeader: () => raft.isLeader,
      propose: (data) => raft.propose(data),
      now: () => Date.now(),
      warn: (message) => this.logger.warn(message),
    });
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.scheduler.tick(), this.options.expiryIntervalMs ?? DEFAULT_EXPIRY_INTERVAL_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

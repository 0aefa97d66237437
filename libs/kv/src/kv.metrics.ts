import { Inject, Injectable } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { KV_OPTIONS, KvOptions } from './kv.service';
import { KvStateMachine } from './kv-state-machine';

/**
 * Prometheus gauges of the map's size against its quota, read at scrape time (KvStateMachine keeps dataBytes
 * on apply, so a scrape costs nothing). The alert rules compare the two (RaftKvDataQuotaNearlyFull).
 */
@Injectable()
export class KvMetrics {
  constructor(registry: Registry, stateMachine: KvStateMachine, @Inject(KV_OPTIONS) options: KvOptions) {
    new Gauge({
      name: 'raftkv_data_bytes',
      help: "UTF-8 bytes of every key plus its value in this node's copy of the map (what MAX_DATA_BYTES limits).",
      registers: [registry],
      collect(this: Gauge) {
        this.set(stateMachine.dataBytes);
      },
    });
    new Gauge({
      name: 'raftkv_data_quota_bytes',
      help: 'MAX_DATA_BYTES, the quota on raftkv_data_bytes past which the leader refuses writes that grow the data (0: no quota).',
      registers: [registry],
      collect(this: Gauge) {
        // An unlabelled gauge is always exported, so "no quota" needs a value: 0, which the alert excludes.
        this.set(options.maxDataBytes ?? 0);
      },
    });
  }
}

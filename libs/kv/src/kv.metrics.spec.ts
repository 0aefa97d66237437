import { EntryType } from '@app/consensus';
import { Registry } from 'prom-client';
import { encodeCommand } from './kv-command';
import { KvMetrics } from './kv.metrics';
import { KvStateMachine } from './kv-state-machine';

async function scrape(registry: Registry): Promise<Record<string, number>> {
  const values: Record<string, number> = {};
  for (const metric of await registry.getMetricsAsJSON()) values[metric.name] = metric.values[0]?.value;
  return values;
}

describe('KvMetrics', () => {
  it('exports dataBytes as it is at scrape time, and the quota', async () => {
    const registry = new Registry();
    const machine = new KvStateMachine();
    new KvMetrics(registry, machine, { maxKeyBytes: 16, maxValueBytes: 16, maxDataBytes: 4096 });
    expect(await scrape(registry)).toEqual({ raftkv_data_bytes: 0, raftkv_data_quota_bytes: 4096 });
    machine.apply({ term: 1, index: 1, type: EntryType.Normal, data: encodeCommand({ op: 'put', key: 'key', value: 'välue' }) });
    expect(await scrape(registry)).toEqual({ raftkv_data_bytes: 9, raftkv_data_quota_bytes: 4096 });
  });

  it('exports a quota of 0 when MAX_DATA_BYTES is unset', async () => {
    const registry = new Registry();
    new KvMetrics(registry, new KvStateMachine(), { maxKeyBytes: 16, maxValueBytes: 16 });
    expect((await scrape(registry)).raftkv_data_quota_bytes).toBe(0);
  });
});

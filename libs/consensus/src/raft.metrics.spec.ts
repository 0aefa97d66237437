/**
 * The full-disk metrics, read from the node at scrape time: the raftkv_storage_full gauge follows the
 * freeze, and the counters of refused writes and dropped messages add what the node counted since the
 * previous scrape (they exist at 0 before anything is counted, so that alerts and dashboards see 0).
 */
import { Registry } from 'prom-client';
import { StateType } from './core/types';
import { RaftMetrics, RaftMetricsSnapshot } from './raft.metrics';

const base: RaftMetricsSnapshot = { term: 2, state: StateType.Leader, commit: 9, applied: 9, lastIndex: 9, snapshotIndex: 0, firstIndex: 1 };

async function values(registry: Registry): Promise<Record<string, number | undefined>> {
  const read = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value;
  return {
    full: await read('raftkv_storage_full'),
    refused: await read('raftkv_storage_full_refused_writes_total'),
    dropped: await read('raftkv_storage_full_dropped_messages_total'),
  };
}

describe('RaftMetrics: full disk', () => {
  it('reports 0 before anything happened, then follows the node at each scrape', async () => {
    const registry = new Registry();
    const metrics = new RaftMetrics(registry);
    let snapshot: RaftMetricsSnapshot = { ...base, storageFull: false, storageRefusedWrites: 0, storageDroppedMessages: 0 };
    metrics.bind(() => snapshot);
    expect(await values(registry)).toEqual({ full: 0, refused: 0, dropped: 0 });

    snapshot = { ...base, storageFull: true, storageRefusedWrites: 3, storageDroppedMessages: 40 };
    expect(await values(registry)).toEqual({ full: 1, refused: 3, dropped: 40 });
    // A second scrape with nothing new counts nothing twice.
    expect(await values(registry)).toEqual({ full: 1, refused: 3, dropped: 40 });

    snapshot = { ...base, storageFull: false, storageRefusedWrites: 5, storageDroppedMessages: 40 };
    expect(await values(registry)).toEqual({ full: 0, refused: 5, dropped: 40 });
    expect(await registry.metrics()).toContain('# TYPE raftkv_storage_full_refused_writes_total counter');
  });
});

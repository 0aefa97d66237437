import { Counter, Histogram, Registry } from 'prom-client';

/** The WAL's onFsync hook, as Prometheus metrics: batch write+fsync latency and bytes written. */
export function walMetrics(registry: Registry): (seconds: number, bytes: number) => void {
  const fsync = new Histogram({
    name: 'raftkv_wal_fsync_duration_seconds',
    help: 'Time to write and fsync one WAL batch (group commit: one fsync per batch).',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const written = new Counter({
    name: 'raftkv_wal_bytes_written_total',
    help: 'Bytes appended to the write-ahead log.',
    registers: [registry],
  });
  written.inc(0);
  return (seconds, bytes) => {
    fsync.observe(seconds);
    written.inc(bytes);
  };
}

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, metricValue, parseScenarios, SampleSeries, walDirUsage } from './lifetime-lib';

describe('walDirUsage (what the disk scenario reports per node)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'lifetime-lib-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('counts segments and snapshot files apart, and everything in the total', () => {
    writeFileSync(join(dir, '0000000000000001-0000000000000001.wal'), Buffer.alloc(1000));
    writeFileSync(join(dir, '0000000000000002-00000000000003e8.wal'), Buffer.alloc(500));
    writeFileSync(join(dir, 'meta.json'), '{}');
    mkdirSync(join(dir, 'snap'));
    writeFileSync(join(dir, 'snap', '0000000000002710-0000000000000002.snap'), Buffer.alloc(300));
    writeFileSync(join(dir, 'snap', 'incoming.tmp'), Buffer.alloc(20));
    // Not a snapshot file, and a .wal name outside the top level is not a segment.
    writeFileSync(join(dir, 'snap', 'x.snap.damaged'), Buffer.alloc(7));
    writeFileSync(join(dir, 'snap', 'stray.wal'), Buffer.alloc(3));

    const usage = walDirUsage(dir);
    expect(usage.segments).toMatchObject({ count: 2, bytes: 1500 });
    expect(usage.snaps).toMatchObject({ count: 2, bytes: 320 });
    expect(usage.total).toMatchObject({ count: 7, bytes: 1500 + 2 + 320 + 7 + 3 });
    expect(usage.total.diskBytes).toBeGreaterThan(0);
  });

  it('reads a directory that does not exist (yet) as empty', () => {
    expect(walDirUsage(join(dir, 'missing')).total).toEqual({ count: 0, bytes: 0, diskBytes: 0 });
  });
});

describe('metricValue', () => {
  const text = [
    '# HELP raftkv_raft_snapshot_duration_seconds Snapshots of the state machine',
    '# TYPE raftkv_raft_snapshot_duration_seconds histogram',
    'raftkv_raft_snapshot_duration_seconds_bucket{le="0.01",kind="taken"} 2',
    'raftkv_raft_snapshot_duration_seconds_count{kind="taken"} 3',
    'raftkv_raft_snapshot_duration_seconds_count{kind="installed"} 1',
    'raftkv_peer_snapshots_sent_total{peer="node2",outcome="ok"} 2',
    'raftkv_peer_snapshots_sent_total{peer="node3",outcome="ok"} 1',
    'raftkv_peer_snapshots_sent_total{peer="node3",outcome="failed"} 4',
    'raftkv_raft_term 7',
  ].join('\n');

  it('picks the samples whose labels match, summing over the others', () => {
    expect(metricValue(text, 'raftkv_raft_snapshot_duration_seconds_count', { kind: 'taken' })).toBe(3);
    expect(metricValue(text, 'raftkv_raft_snapshot_duration_seconds_count', { kind: 'installed' })).toBe(1);
    expect(metricValue(text, 'raftkv_peer_snapshots_sent_total', { outcome: 'ok' })).toBe(3);
    expect(metricValue(text, 'raftkv_peer_snapshots_sent_total', { peer: 'node3' })).toBe(5);
    expect(metricValue(text, 'raftkv_raft_term')).toBe(7);
  });

  it('is 0 for a metric or label value that is not there, and never matches a name by prefix', () => {
    expect(metricValue(text, 'raftkv_raft_snapshot_duration_seconds_count', { kind: 'other' })).toBe(0);
    expect(metricValue(text, 'raftkv_raft_snapshot_duration_seconds')).toBe(0);
    expect(metricValue('', 'raftkv_raft_term')).toBe(0);
  });
});

describe('median', () => {
  it.each([
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
    [[5], 5],
  ])('of %j is %d', (values, expected) => expect(median(values)).toBe(expected));

  it('is NaN for no values', () => expect(median([])).toBeNaN());
});

describe('parseScenarios', () => {
  it('returns the scenarios in the benchmark order, whatever the order asked', () => {
    expect(parseScenarios('p99,disk')).toEqual(['disk', 'p99']);
    expect(parseScenarios('disk, restart,catchup,p99')).toEqual(['disk', 'restart', 'catchup', 'p99']);
  });

  it('refuses an unknown or empty list, naming the valid scenarios', () => {
    expect(() => parseScenarios('disk,size')).toThrow(/disk, restart, catchup, p99 \(got disk,size\)/);
    expect(() => parseScenarios(',')).toThrow(/--scenario/);
  });
});

describe('SampleSeries (the leader directory size every N writes)', () => {
  it('takes one sample per step reached, and one for several steps passed between two polls', () => {
    const series = new SampleSeries<string>(100);
    let taken = 0;
    const take = () => `s${++taken}`;
    series.record(50, take); // below the first step
    series.record(100, take);
    series.record(150, take); // same step again
    series.record(420, take); // passed 200, 300 and 400
    series.record(499, take);
    series.record(500, take);
    expect(series.points).toEqual([
      { at: 100, index: 100, value: 's1' },
      { at: 400, index: 420, value: 's2' },
      { at: 500, index: 500, value: 's3' },
    ]);
  });

  it('refuses a step that is not positive', () => {
    expect(() => new SampleSeries(0)).toThrow(/positive/);
  });
});

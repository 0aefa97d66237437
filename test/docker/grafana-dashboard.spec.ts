/**
 * The provisioned Grafana dashboard (docker/grafana/dashboards/raft-kv.json), by content: well formed,
 * every query on the provisioned data source, and the views the operations story needs. That every
 * metric it queries exists in a live node's /metrics, and that every query runs in a real Prometheus, is
 * shown by test/e2e/prometheus.e2e-spec.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { dashboardQueries, metricNames } from '../support/dashboard';

const dashboard = JSON.parse(readFileSync(resolve(__dirname, '../../docker/grafana/dashboards/raft-kv.json'), 'utf8'));

describe('Grafana dashboard raft-kv.json', () => {
  it('has a stable uid and title, and unique panel ids', () => {
    expect(dashboard.uid).toBe('raft-kv');
    expect(dashboard.title).toBe('Raft KV');
    const ids = dashboard.panels.map((p: any) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('lays its panels out on the 24-column grid without overlaps', () => {
    const cells = new Set<string>();
    for (const { gridPos: g, title } of dashboard.panels) {
      expect(g.x + g.w).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect({ title, cell: `${x},${y}`, free: !cells.has(`${x},${y}`) }).toMatchObject({ free: true });
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  it('queries the provisioned Prometheus data source in every target, with a legend', () => {
    for (const panel of dashboard.panels) {
      expect(panel.targets.length).toBeGreaterThan(0);
      for (const target of panel.targets) {
        expect(target.datasource).toEqual({ type: 'prometheus', uid: 'prometheus' });
        expect(target.expr).toMatch(/\S/);
        expect(target.legendFormat).toMatch(/\S/);
      }
    }
  });

  it('shows what the issue asks for: leader and term per node, commit and apply rate, proposal and fsync latency, HTTP rate and latency, leader changes', () => {
    const all = dashboardQueries(dashboard).map((q) => q.expr);
    const some = (pattern: RegExp) => all.some((e) => pattern.test(e));
    expect(some(/raftkv_raft_is_leader/)).toBe(true);
    expect(some(/^raftkv_raft_term\{/)).toBe(true);
    expect(some(/deriv\(raftkv_raft_commit_index/)).toBe(true);
    expect(some(/deriv\(raftkv_raft_applied_index/)).toBe(true);
    expect(some(/histogram_quantile\(.*raftkv_raft_proposal_duration_seconds_bucket/)).toBe(true);
    expect(some(/histogram_quantile\(.*raftkv_wal_fsync_duration_seconds_bucket/)).toBe(true);
    expect(some(/rate\(raftkv_http_request_duration_seconds_count/)).toBe(true);
    expect(some(/histogram_quantile\(.*raftkv_http_request_duration_seconds_bucket/)).toBe(true);
    expect(some(/raftkv_raft_leader_changes_total/)).toBe(true);
  });

  it('names only metrics that docs/operations.md documents', () => {
    const doc = readFileSync(resolve(__dirname, '../../docs/operations.md'), 'utf8');
    for (const name of metricNames(dashboardQueries(dashboard).map((q) => q.expr))) {
      if (name === 'up') continue; // Prometheus' own
      const base = name.replace(/_(bucket|sum|count)$/, '');
      expect({ name, documented: doc.includes(base) }).toEqual({ name, documented: true });
    }
  });
});

/**
 * The Prometheus configuration and alert rules under docker/prometheus, checked by Prometheus' own
 * `promtool` (Debian package prometheus). That a real Prometheus scrapes every node with it is shown by
 * test/e2e/prometheus.e2e-spec.ts.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { hasCommand } from '../support/has-command';
import { readYaml } from './yaml';

const DIR = resolve(__dirname, '../../docker/prometheus');
const available = hasCommand('promtool');
if (!available) console.warn('SKIPPED promtool checks: promtool is not installed (Debian package prometheus)');
const itIf = available ? it : it.skip;

describe('docker/prometheus', () => {
  itIf('prometheus.yml passes `promtool check config` (with its rule files)', () => {
    const result = spawnSync('promtool', ['check', 'config', join(DIR, 'prometheus.yml')], { encoding: 'utf8' });
    expect({ status: result.status, output: result.stdout + result.stderr }).toMatchObject({ status: 0 });
    expect(result.stdout + result.stderr).toMatch(/SUCCESS: \d+ rule files found/);
  });

  itIf('alerts.yml passes `promtool check rules`', () => {
    const result = spawnSync('promtool', ['check', 'rules', join(DIR, 'alerts.yml')], { encoding: 'utf8' });
    expect({ status: result.status, output: result.stdout + result.stderr }).toMatchObject({ status: 0 });
  });

  it('scrapes /metrics of the three nodes, labelling each with its node name', () => {
    const config = readYaml(join(DIR, 'prometheus.yml'));
    const job = config.scrape_configs.find((j: any) => j.job_name === 'raft-kv');
    expect(job.metrics_path ?? '/metrics').toBe('/metrics');
    const targets = job.static_configs.map((s: any) => ({ target: s.targets[0], node: s.labels.node }));
    expect(targets).toEqual([
      { target: 'node1:3001', node: 'node1' },
      { target: 'node2:3002', node: 'node2' },
      { target: 'node3:3003', node: 'node3' },
    ]);
  });
});

/**
 * A real Prometheus (Debian package prometheus) with the Compose cluster's configuration
 * (docker/prometheus/prometheus.yml and its alert rules), its targets pointed at a local 3-node cluster:
 * it scrapes every node, every metric the Grafana dashboard and the alerts name exists in a live node's
 * /metrics, and every dashboard query runs and returns series carrying the labels its legend shows.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseYaml } from '../docker/yaml';
import { hasCommand } from '../support/has-command';
import { dashboardQueries, legendLabels, metricNames } from '../support/dashboard';
import { ClusterNode, eventually, freePorts, http, LocalCluster } from '../support/local-cluster';

jest.setTimeout(120_000);

const ROOT = resolve(__dirname, '../..');
const available = hasCommand('prometheus');
if (!available) console.warn('SKIPPED real Prometheus scrape: prometheus is not installed (Debian package prometheus)');
const describeIf = available ? describe : describe.skip;

const dashboard = JSON.parse(readFileSync(join(ROOT, 'docker/grafana/dashboards/raft-kv.json'), 'utf8'));
const alerts = parseYaml(readFileSync(join(ROOT, 'docker/prometheus/alerts.yml'), 'utf8')) as {
  groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
};
const alertExprs = alerts.groups.flatMap((g) => g.rules.map((r) => r.expr));

describeIf('Prometheus with docker/prometheus against a local cluster', () => {
  let cluster: LocalCluster;
  let leader: ClusterNode;
  let dir: string;
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let api: string;

  async function query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const answer = await http('GET', `${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
    if (answer.status !== 200 || answer.body.status !== 'success') throw new Error(`query ${expr}: ${JSON.stringify(answer.body)}`);
    return answer.body.data.result;
  }

  async function traffic(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      expect((await http('PUT', `${leader.url}/kv/k${i}`, { value: `v${i}` })).status).toBe(200);
      expect((await http('GET', `${leader.url}/kv/k${i}`)).status).toBe(200);
    }
    expect((await http('DELETE', `${leader.url}/kv/k0`)).status).toBe(200);
  }

  beforeAll(async () => {
    cluster = await LocalCluster.start({ nodes: 3 });
    leader = await cluster.waitForLeader();
    await traffic();

    // The Compose configuration, with the nodes' service names replaced by this cluster's addresses and a
    // 1 s scrape interval so that rates have samples within seconds.
    dir = mkdtempSync(join(tmpdir(), 'raftkv-prometheus-'));
    let config = readFileSync(join(ROOT, 'docker/prometheus/prometheus.yml'), 'utf8');
    cluster.nodes.forEach((node, i) => {
      config = config.replace(`node${i + 1}:${3001 + i}`, `127.0.0.1:${node.port}`);
    });
    config = config.replace(/scrape_interval: \S+/, 'scrape_interval: 1s').replace(/scrape_timeout: \S+/, 'scrape_timeout: 900ms');
    config = config.replace(/evaluation_interval: \S+/, 'evaluation_interval: 1s');
    writeFileSync(join(dir, 'prometheus.yml'), config);
    copyFileSync(join(ROOT, 'docker/prometheus/alerts.yml'), join(dir, 'alerts.yml'));

    const [port] = await freePorts(1);
    api = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d: Buffer) => (prometheusLog += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (prometheusLog += d.toString()));
    process.on('exit', () => prometheus?.kill('SIGKILL'));
    await eventually('Prometheus to be ready', async () => {
      if (prometheus!.exitCode !== null) throw new Error(`prometheus exited: ${prometheusLog}`);
      return (await http('GET', `${api}/-/ready`, undefined, { timeoutMs: 1000 }).catch(() => undefined))?.status === 200 ? true : undefined;
    });
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((ok) => prometheus!.once('exit', ok));
      prometheus.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((ok) => (timer = setTimeout(ok, 10_000)))]);
      clearTimeout(timer);
      prometheus.kill('SIGKILL');
    }
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('scrapes every node, each labelled with its node name', async () => {
    const targets = await eventually(
      'every target up',
      async () => {
        const answer = await http('GET', `${api}/api/v1/targets`);
        const active = answer.body.data.activeTargets as Array<{ health: string; labels: Record<string, string>; scrapeUrl: string }>;
        return active.length === 3 && active.every((t) => t.health === 'up') ? active : undefined;
      },
      20_000,
    );
    const byNode = Object.fromEntries(targets.map((t) => [t.labels.node, t.scrapeUrl]));
    expect(byNode).toEqual(Object.fromEntries(cluster.nodes.map((n) => [n.name, `${n.url}/metrics`])));
    for (const t of targets) expect(t.labels.job).toBe('raft-kv');
    const terms = await eventually('raftkv_raft_term from every node', async () => {
      const result = await query('raftkv_raft_term{job="raft-kv"}');
      return result.length === 3 ? result : undefined;
    });
    expect(terms.map((r) => r.metric.node).sort()).toEqual(['node1', 'node2', 'node3']);
  });

  it('finds every metric the dashboard and the alert rules name in a live node\'s /metrics', async () => {
    const text = (await http('GET', `${leader.url}/metrics`)).body as string;
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    const names = metricNames([...dashboardQueries(dashboard).map((q) => q.expr), ...alertExprs]);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) {
      if (name === 'up') continue; // Prometheus' own, per target
      const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
      const found = types.has(name) || (histogram !== null && types.get(histogram[1]) === 'histogram');
      expect({ name, found }).toEqual({ name, found: true });
    }
  });

  it('runs every dashboard query, each returning series with the labels its legend shows', async () => {
    await traffic(); // fresh samples inside every rate window
    for (const { panel, expr, legendFormat } of dashboardQueries(dashboard)) {
      const result = await eventually(
        `"${panel}" to return series: ${expr}`,
        async () => {
          const series = await query(expr);
          return series.length > 0 ? series : undefined;
        },
        20_000,
        500,
      );
      for (const series of result) {
        for (const label of legendLabels(legendFormat)) {
          expect({ panel, label, present: label in series.metric }).toEqual({ panel, label, present: true });
        }
      }
    }
  });

  it('loads the alert rules, and a healthy cluster raises none of them', async () => {
    const rules = await eventually('the rules to be evaluated', async () => {
      const answer = await http('GET', `${api}/api/v1/rules`);
      const all = (answer.body.data.groups as Array<{ rules: Array<{ name: string; health: string; lastEvaluation: string }> }>).flatMap(
        (g) => g.rules,
      );
      return all.length > 0 && all.every((r) => r.health === 'ok' && !r.lastEvaluation.startsWith('0001')) ? all : undefined;
    });
    expect(rules.map((r) => r.name).sort()).toEqual(alerts.groups.flatMap((g) => g.rules.map((r) => r.alert)).sort());
    for (const expr of alertExprs) expect({ expr, result: await query(expr) }).toEqual({ expr, result: [] });
  });
});

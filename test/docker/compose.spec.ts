/**
 * docker-compose.yml, checked without a Docker engine: `docker-compose config` validates and normalizes it
 * (Debian package docker-compose), then the normalized file is checked against what the cluster needs:
 * every node derives the same member set through the node's own configuration loader, data on named
 * volumes, the seed's ports, Prometheus scraping every node, Grafana provisioned with both; and the two nodes
 * a user may add (node4, node5), which `up` leaves alone and which join the running cluster.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadNodeConfig } from '@app/config';
import { hasCommand } from '../support/has-command';
import { readmeSteps } from '../support/readme-steps';
import { parseYaml, readYaml } from './yaml';

const ROOT = resolve(__dirname, '../..');
const available = hasCommand('docker-compose');
if (!available) console.warn('SKIPPED docker-compose.yml checks: docker-compose is not installed (Debian package docker-compose)');
const describeIf = available ? describe : describe.skip;

function compose(args: string[], extraEnv: Record<string, string> = {}) {
  const env = { ...process.env };
  delete env.CLUSTER_TOKEN; // the file's own default, not this machine's
  delete env.LOG_LEVEL;
  return spawnSync('docker-compose', ['-f', 'docker-compose.yml', ...args], { cwd: ROOT, env: { ...env, ...extraEnv }, encoding: 'utf8' });
}

interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  environment?: Record<string, string>;
  ports?: Array<{ published: number | string; target: number }>;
  profiles?: string[];
  volumes?: Array<string | { type: string; source: string; target: string }>;
  command?: string[];
}

/** A service's mounts as {source, target}, whichever syntax the normalized file uses. */
function mounts(service: Service): Array<{ source: string; target: string }> {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target };
    const [source, target] = v.split(':');
    return { source, target };
  });
}

describeIf('docker-compose.yml', () => {
  let config: { services: Record<string, Service>; volumes: Record<string, unknown> };
  const nodeNames = ['node1', 'node2', 'node3'];

  beforeAll(() => {
    const result = compose(['config']);
    if (result.status !== 0) throw new Error(`docker-compose config failed:\n${result.stderr}`);
    config = parseYaml(result.stdout) as typeof config;
  });

  it('is valid for docker-compose (`docker-compose config -q`)', () => {
    const result = compose(['config', '-q']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('defines the seed cluster plus Prometheus and Grafana, and two more nodes that `up` does not start', () => {
    const always = Object.keys(config.services).filter((name) => !config.services[name].profiles);
    expect(always.sort()).toEqual(['grafana', 'node1', 'node2', 'node3', 'prometheus']);
    const optional = Object.keys(config.services).filter((name) => config.services[name].profiles);
    expect(optional.sort()).toEqual(['node4', 'node5']);
    for (const name of optional) expect(config.services[name].profiles).toEqual(['grow']);
  });

  it('joins node4 and node5 to the running cluster (JOIN, no PEER_URLS), each on its own port and volume', () => {
    const seedUrls = nodeNames.map((name) => `http://${name}:${config.services[name].environment!.HTTP_PORT}`);
    const seedToken = loadNodeConfig(config.services.node1.environment ?? {}).clusterToken;
    const volumes = new Set(nodeNames.map((name) => mounts(config.services[name]).find((m) => m.target === '/data')!.source));
    for (const [name, port] of [
      ['node4', 3004],
      ['node5', 3005],
    ] as const) {
      const service = config.services[name];
      const c = loadNodeConfig(service.environment ?? {});
      expect({ nodeId: c.nodeId, port: c.httpPort, advertise: c.advertiseUrl, peers: c.peerUrls, learner: c.joinAsLearner }).toEqual({
        nodeId: name,
        port,
        advertise: `http://${name}:${port}`,
        peers: [],
        learner: false,
      });
      expect(seedUrls).toContain(c.join);
      expect(c.clusterToken).toBe(seedToken);
      expect(c.bindHost).toBe('0.0.0.0');
      expect(resolve(service.build!.context)).toBe(ROOT);
      expect(service.ports).toEqual([expect.objectContaining({ target: port })]);
      expect(Number(service.ports![0].published)).toBe(port);
      const volume = mounts(service).find((m) => m.target === c.walDir)!;
      expect(Object.keys(config.volumes)).toContain(volume.source);
      expect(volumes.has(volume.source)).toBe(false);
      volumes.add(volume.source);
    }
    // The member to join through can be changed, for when node1 is the one that failed.
    const other = compose(['config'], { NODE4_JOIN: 'http://node2:3002' });
    expect(other.status).toBe(0);
    expect((parseYaml(other.stdout) as typeof config).services.node4.environment!.JOIN).toBe('http://node2:3002');
  });

  it("names, in the README's Docker Compose commands, only services, profiles and variables the file has", () => {
    const yaml = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
    const profiles = new Set(Object.values(config.services).flatMap((service) => service.profiles ?? []));
    const commands = readmeSteps(readFileSync(join(ROOT, 'README.md'), 'utf8'), ['Running with Docker Compose'])
      .flatMap((step) => step.commands)
      .filter((command) => command.includes('docker-compose '));
    expect(commands).toEqual(expect.arrayContaining([expect.stringContaining('--profile grow up -d node4')]));
    for (const command of commands) {
      const [, assignments, rest] = /^((?:\w+=\S+\s+)*)docker-compose\s+(.*)$/.exec(command) ?? [];
      expect({ command, parsed: rest !== undefined }).toEqual({ command, parsed: true });
      for (const name of assignments.trim().split(/\s+/).filter(Boolean).map((a) => a.split('=')[0])) {
        expect({ command, variable: name, inFile: yaml.includes(`\${${name}:-`) }).toMatchObject({ inFile: true });
      }
      const words = rest.split(/\s+/);
      for (let i = words.indexOf('--profile'); i !== -1; i = words.indexOf('--profile', i + 1)) expect(profiles).toContain(words[i + 1]);
      const [sub, ...args] = words.filter((w, i) => !w.startsWith('-') && words[i - 1] !== '--profile');
      // `exec` takes one service, then the command to run in it.
      const services = sub === 'exec' ? args.slice(0, 1) : args;
      for (const service of services) expect({ command, service, known: service in config.services }).toMatchObject({ known: true });
    }
  });

  it('builds every node from docker/Dockerfile with the repository as context', () => {
    for (const name of nodeNames) {
      const build = config.services[name].build!;
      expect(resolve(build.context)).toBe(ROOT);
      expect(existsSync(join(build.context, build.dockerfile))).toBe(true);
      expect(build.dockerfile).toBe('docker/Dockerfile');
    }
  });

  it('gives every node a valid configuration and the same member set, named by service', () => {
    const configs = nodeNames.map((name) => loadNodeConfig(config.services[name].environment ?? {}));
    const members = nodeNames.map((name) => `http://${name}:${config.services[name].environment!.HTTP_PORT}`).sort();
    configs.forEach((c, i) => {
      expect(c.nodeId).toBe(nodeNames[i]);
      expect(c.advertiseUrl).toBe(`http://${nodeNames[i]}:${c.httpPort}`);
      // Each node discovers the others (and recognises itself, if listed) through PEER_URLS.
      expect([...new Set([c.advertiseUrl, ...c.peerUrls])].sort()).toEqual(members);
      expect(c.bindHost).toBe('0.0.0.0');
    });
    expect(configs.map((c) => c.httpPort)).toEqual([3001, 3002, 3003]);
  });

  it('authenticates peer traffic by default: one placeholder CLUSTER_TOKEN on every node, which the environment replaces', () => {
    const tokens = nodeNames.map((name) => loadNodeConfig(config.services[name].environment ?? {}).clusterToken);
    expect(tokens[0]).toBe('change-me-raft-kv-compose-placeholder');
    expect(new Set(tokens).size).toBe(1);
    // The file tells users to change it, and the README says how.
    expect(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')).toMatch(/CHANGE IT/);
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('change-me-raft-kv-compose-placeholder');
    const own = compose(['config'], { CLUSTER_TOKEN: 'my-own-secret-of-24-chars' });
    expect(own.status).toBe(0);
    const services = (parseYaml(own.stdout) as typeof config).services;
    for (const name of nodeNames) expect(services[name].environment!.CLUSTER_TOKEN).toBe('my-own-secret-of-24-chars');
  });

  it("keeps the default address check: members named by service name (each resolves to its container's address), no PEER_ALLOW_ANY", () => {
    for (const name of nodeNames) {
      const c = loadNodeConfig(config.services[name].environment ?? {});
      expect(c.peerAllowAny).toBe(false);
      expect(c.peerAllowedAddresses).toEqual([]);
      for (const member of [c.advertiseUrl, ...c.peerUrls]) expect(nodeNames).toContain(new URL(member).hostname);
    }
  });

  it('publishes each node on its own port, 3001-3003, as the seed does', () => {
    nodeNames.forEach((name, i) => {
      const port = 3001 + i;
      expect(config.services[name].ports).toEqual([expect.objectContaining({ published: expect.anything(), target: port })]);
      expect(Number(config.services[name].ports![0].published)).toBe(port);
    });
  });

  it("keeps each node's WAL_DIR on its own named volume, so restarts keep the data", () => {
    const used = new Set<string>();
    for (const name of nodeNames) {
      const walDir = config.services[name].environment!.WAL_DIR;
      const mount = mounts(config.services[name]).find((m) => m.target === walDir);
      expect(mount).toBeDefined();
      expect(Object.keys(config.volumes)).toContain(mount!.source);
      expect(used.has(mount!.source)).toBe(false);
      used.add(mount!.source);
    }
  });

  it('mounts a Prometheus config that scrapes every node at its service name and port', () => {
    const prometheus = config.services.prometheus;
    const configFlag = prometheus.command!.find((c) => c.startsWith('--config.file='))!.split('=')[1];
    const mount = mounts(prometheus).find((m) => configFlag.startsWith(`${m.target}/`))!;
    const hostFile = join(mount.source, configFlag.slice(mount.target.length + 1));
    expect(hostFile).toBe(join(ROOT, 'docker/prometheus/prometheus.yml'));
    const scrape = readYaml(hostFile);
    const targets = scrape.scrape_configs.flatMap((job: any) => job.static_configs.flatMap((s: any) => s.targets));
    expect(targets.sort()).toEqual(nodeNames.map((n) => `${n}:${config.services[n].environment!.HTTP_PORT}`));
    for (const file of scrape.rule_files ?? []) expect(existsSync(join(mount.source, file))).toBe(true);
  });

  it('provisions Grafana with the Prometheus data source and the dashboard, by the paths it mounts', () => {
    const grafana = config.services.grafana;
    const provisioning = mounts(grafana).find((m) => m.target === '/etc/grafana/provisioning')!;
    expect(provisioning.source).toBe(join(ROOT, 'docker/grafana/provisioning'));

    const datasources = readYaml(join(provisioning.source, 'datasources/prometheus.yml')).datasources;
    expect(datasources).toHaveLength(1);
    const url = new URL(datasources[0].url);
    expect(Object.keys(config.services)).toContain(url.hostname);
    expect(url.port).toBe('9090'); // Prometheus' own port inside the network
    expect(config.services[url.hostname].image).toMatch(/^prom\/prometheus:v\d/);

    const provider = readYaml(join(provisioning.source, 'dashboards/raft-kv.yml')).providers[0];
    const dashboards = mounts(grafana).find((m) => m.target === provider.options.path)!;
    expect(dashboards.source).toBe(join(ROOT, 'docker/grafana/dashboards'));
    const dashboard = JSON.parse(readFileSync(join(dashboards.source, 'raft-kv.json'), 'utf8'));
    const uids = new Set(dashboard.panels.flatMap((p: any) => [p.datasource?.uid, ...p.targets.map((t: any) => t.datasource?.uid)]));
    expect([...uids]).toEqual([datasources[0].uid]);
    const home = grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    if (home) expect(home).toBe(`${provider.options.path}/raft-kv.json`);
  });

  it('pins the images it pulls', () => {
    for (const service of Object.values(config.services)) {
      if (service.build) continue;
      expect(service.image).toMatch(/:[^:]*\d[^:]*$/);
    }
  });
});

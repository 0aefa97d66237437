/**
 * `npm run cluster [-- --nodes 5] [--base-port 3001] [--data-dir ./data]`
 *
 * Starts a local cluster of kv-node processes (the production build; built first when missing or older than
 * the sources) in one terminal: ports 3001.., data in ./data/node1.., every output line prefixed and
 * coloured by node. Ctrl-C stops every node cleanly (SIGTERM, then exit); a second Ctrl-C kills them.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const ROOT = resolve(__dirname, '..');
const MAIN = join(ROOT, 'dist/apps/kv-node/apps/kv-node/src/main.js');
const COLOURS = [36, 33, 35, 32, 34, 91, 96, 93];

interface Options {
  nodes: number;
  basePort: number;
  dataDir: string;
  host: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', short: 'n', default: '3' },
      'base-port': { type: 'string', short: 'p', default: '3001' },
      'data-dir': { type: 'string', short: 'd', default: './data' },
      host: { type: 'string', default: 'localhost' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run cluster -- [--nodes 3|5] [--base-port 3001] [--data-dir ./data] [--host localhost]\n',
    );
    process.exit(0);
  }
  const nodes = Number(values.nodes);
  const basePort = Number(values['base-port']);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) fail(`--nodes must be an integer from 1 to 9 (got ${values.nodes})`);
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + nodes - 1 > 65535) fail(`--base-port is not a valid port (got ${values['base-port']})`);
  return { nodes, basePort, dataDir: resolve(values['data-dir']!), host: values.host! };
}

function fail(message: string): never {
  process.stderr.write(`cluster: ${message}\n`);
  process.exit(1);
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds the node unless dist is newer than every source file. */
function buildIfNeeded(): void {
  const sources = Math.max(...['apps', 'libs', 'config'].map((d) => newestSource(join(ROOT, d))));
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= sources) return;
  process.stdout.write('cluster: building the node (npm run build)...\n');
  const result = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) fail('the build failed');
}

function main(): void {
  const options = parseOptions(process.argv.slice(2));
  buildIfNeeded();
  const tty = Boolean(process.stdout.isTTY);
  const names = Array.from({ length: options.nodes }, (_, i) => `node${i + 1}`);
  const urls = names.map((_, i) => `http://${options.host}:${options.basePort + i}`);
  const width = Math.max(...names.map((n) => n.length));
  const children: ChildProcess[] = [];

  names.forEach((name, i) => {
    const port = options.basePort + i;
    const env = {
      ...process.env,
      NODE_ID: name,
      HTTP_PORT: String(port),
      ADVERTISE_URL: urls[i],
      PEER_URLS: urls.filter((_, j) => j !== i).join(','),
      WAL_DIR: join(options.dataDir, name),
    };
    const child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const prefix = tty ? `\x1b[${COLOURS[i % COLOURS.length]}m${name.padEnd(width)} |\x1b[0m ` : `${name.padEnd(width)} | `;
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix}${line}\n`));
    }
    child.on('exit', (code, signal) => {
      process.stdout.write(`${prefix}exited (${signal ?? `code ${code}`})\n`);
      if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) process.exit(stopping ? 0 : 1);
    });
    children.push(child);
  });

  const leader = urls[0];
  process.stdout.write(
    [
      '',
      `cluster: ${options.nodes} node${options.nodes > 1 ? 's' : ''}, data in ${options.dataDir}`,
      ...names.map((name, i) => `  ${name}: ${urls[i]}   Swagger UI ${urls[i]}/docs   metrics ${urls[i]}/metrics`),
      '',
      'Try (a follower redirects writes to the leader; -L follows):',
      `  curl -L -X PUT ${leader}/kv/username -H "Content-Type: application/json" -d '{"value":"alice"}'`,
      `  curl -L ${leader}/kv/username`,
      `  curl ${leader}/status`,
      '',
      'Ctrl-C stops every node.',
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = () => {
    if (stopping) {
      for (const c of children) c.kill('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    process.stdout.write('\ncluster: stopping (Ctrl-C again to kill)\n');
    for (const c of children) c.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main();

import { clusterEnvs, describeExit, formatLogLine, LineBuffer, Member, NODE_MAIN, nodeEnv, NodeProcess, prefixLines } from './node-process';

const members: Member[] = [1, 2, 3].map((i) => ({
  name: `node${i}`,
  port: 3000 + i,
  url: `http://localhost:${3000 + i}`,
  dir: `/data/node${i}`,
  bindHost: '127.0.0.1',
}));

describe('nodeEnv', () => {
  it('names the node, its port, URL and directory, and lists every other member as a peer', () => {
    expect(nodeEnv(members[1], members)).toEqual({
      NODE_ID: 'node2',
      HTTP_PORT: '3002',
      BIND_HOST: '127.0.0.1',
      ADVERTISE_URL: 'http://localhost:3002',
      PEER_URLS: 'http://localhost:3001,http://localhost:3003',
      WAL_DIR: '/data/node2',
    });
  });

  it('leaves BIND_HOST to the node when the member has none, and gives a single node no peers', () => {
    const alone: Member = { name: 'solo', port: 4000, url: 'http://localhost:4000', dir: '/d' };
    const env = nodeEnv(alone, [alone]);
    expect(env).not.toHaveProperty('BIND_HOST');
    expect(env.PEER_URLS).toBe('');
  });

  it('lets the extra variables override its own (two nodes with one NODE_ID, on purpose)', () => {
    expect(nodeEnv(members[0], members, { NODE_ID: 'twin', LOG_LEVEL: 'warn' })).toMatchObject({ NODE_ID: 'twin', LOG_LEVEL: 'warn', HTTP_PORT: '3001' });
  });
});

describe('clusterEnvs', () => {
  it('gives each member its own environment and its own extras', () => {
    const envs = clusterEnvs(members, (i) => ({ REQUEST_TIMEOUT_MS: String(1000 * (i + 1)) }));
    expect(envs.map((e) => e.NODE_ID)).toEqual(['node1', 'node2', 'node3']);
    expect(envs.map((e) => e.REQUEST_TIMEOUT_MS)).toEqual(['1000', '2000', '3000']);
    expect(envs[2].PEER_URLS).toBe('http://localhost:3001,http://localhost:3002');
  });
});

describe('formatLogLine', () => {
  const entry = (fields: object) => JSON.stringify({ timestamp: Date.UTC(2026, 0, 2, 3, 4, 5, 678), ...fields });

  it('shows a JSON log entry as time, level, context and message', () => {
    expect(formatLogLine(entry({ level: 'log', context: 'RaftNode', message: 'node1 term 2: leader is node1' }))).toEqual([
      '03:04:05.678 INFO  [RaftNode] node1 term 2: leader is node1',
    ]);
  });

  it('appends the stack, one line each, and colours errors and warnings when asked', () => {
    const paint = (code: number, text: string) => `<${code}>${text}</>`;
    expect(formatLogLine(entry({ level: 'error', message: 'boom', stack: ['Error: boom\n    at x', null] }), { paint })).toEqual([
      '03:04:05.678 <31>ERROR</> boom',
      'Error: boom',
      '    at x',
    ]);
    expect(formatLogLine(entry({ level: 'warn', message: { a: 1 } }), { paint })).toEqual(['03:04:05.678 <33>WARN </> {"a":1}']);
  });

  it("hides Nest's start-up chatter unless verbose", () => {
    const line = entry({ level: 'log', context: 'RoutesResolver', message: 'KvController {/kv}' });
    expect(formatLogLine(line)).toEqual([]);
    expect(formatLogLine(line, { verbose: true })).toEqual(['03:04:05.678 INFO  [RoutesResolver] KvController {/kv}']);
  });

  it('keeps anything else as it is', () => {
    expect(formatLogLine('plain text')).toEqual(['plain text']);
    expect(formatLogLine('{not json')).toEqual(['{not json']);
  });
});

describe('prefixLines', () => {
  it('prefixes every line, and prints nothing for no lines', () => {
    expect(prefixLines('node1 | ', ['a', 'b'])).toBe('node1 | a\nnode1 | b\n');
    expect(prefixLines('node1 | ', formatLogLine('{"level":"log","context":"InstanceLoader","message":"x"}'))).toBe('');
  });
});

describe('LineBuffer', () => {
  it('keeps the last lines up to its capacity', () => {
    const buffer = new LineBuffer(3);
    for (let i = 1; i <= 10; i++) buffer.push(`line ${i}`);
    expect(buffer.text()).toBe('line 8\nline 9\nline 10\n');
    expect(buffer.text(2)).toBe('line 9\nline 10\n');
    expect(new LineBuffer().text()).toBe('');
  });
});

describe('describeExit', () => {
  it('says how a node ended', () => {
    expect(describeExit({ code: 0, signal: null })).toBe('stopped');
    expect(describeExit({ code: 1, signal: null })).toBe('exited (code 1)');
    expect(describeExit({ code: null, signal: 'SIGKILL' })).toBe('killed (SIGKILL)');
    expect(describeExit({ code: null, signal: null, error: 'spawn ip ENOENT' })).toBe('cannot start: spawn ip ENOENT');
  });
});

describe('NodeProcess.command', () => {
  it('runs the build with node, its preloads first, through the wrapper when there is one', () => {
    const plain = new NodeProcess({ name: 'node1', env: {}, clientUrl: 'http://x', execArgv: ['-r', 'watchdog.js'] });
    expect(plain.command()).toEqual({ file: process.execPath, args: ['-r', 'watchdog.js', NODE_MAIN] });
    const wrapped = new NodeProcess({
      name: 'node1',
      env: {},
      clientUrl: 'http://x',
      main: '/run/build/main.js',
      wrap: (argv) => ({ file: 'ip', args: ['netns', 'exec', 'ns1', ...argv] }),
    });
    expect(wrapped.command()).toEqual({ file: 'ip', args: ['netns', 'exec', 'ns1', process.execPath, '/run/build/main.js'] });
  });

  it('reports a command that cannot be spawned as an unexpected end, not a running node', async () => {
    const exits: string[] = [];
    const node = new NodeProcess({
      name: 'node1',
      env: {},
      clientUrl: 'http://127.0.0.1:1',
      wrap: () => ({ file: '/nonexistent/raftkv-launcher-test', args: [] }),
      onExit: (exit) => exits.push(`${exit.expected} ${describeExit(exit)}`),
    });
    node.start();
    const exit = await node.waitForExit(5000);
    expect(exit.error).toMatch(/ENOENT/);
    expect(node.running).toBe(false);
    expect(exits).toEqual([expect.stringMatching(/^false cannot start: .*ENOENT/)]);
  });
});

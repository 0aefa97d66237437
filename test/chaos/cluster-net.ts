/**
 * The network a chaos cluster runs on, and the links the nemesis cuts.
 *
 * - NetnsNet (root, `ip` available): every node in its own network namespace, joined by a veth pair to a
 *   bridge in the root namespace that has an address of its own, so the harness reaches every node directly.
 *   A cut between two nodes is an iptables DROP of the other's address, in and out, inside each of the two
 *   namespaces (or, without iptables, a blackhole route). Packets vanish: the peers see silence and time
 *   out, as on a real network. Client traffic comes from the bridge's address and is never cut.
 * - ProxyNet (anywhere): every node listens on a loopback port and advertises a proxy port; every peer
 *   request goes through the receiver's proxy, which tells senders apart by the `x-raft-from` header of the
 *   connection's first request (the sender's NODE_ID, libs/cluster-rpc/src/peer-protocol.ts). A cut link's
 *   connections are held open but go silent (nothing forwarded, nothing answered). Clients talk to the
 *   nodes' own ports, never through a proxy. With TLS the proxies forward the encrypted bytes untouched and
 *   cannot read that header: they tell senders apart by the process that owns the connecting socket instead
 *   (/proc, given the nodes' pids through trackProcesses).
 *
 * Names carry the creating process's pid (`rkc-<pid36>-<run36>`), so that a later run can sweep what a
 * crashed run left behind (sweepStaleNetworks) without touching a live run's namespaces.
 */
import { createServer, connect, Server, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { freePorts } from '../support/local-cluster';
import { registerCleanup } from './cleanup';
import { available, processAlive, run, runSync } from './exec';

export interface NodeEndpoint {
  /** NODE_ID: what the node announces to its peers (`x-raft-from`). */
  name: string;
  /** BIND_HOST and HTTP_PORT of the node process. */
  bindHost: string;
  httpPort: number;
  /** The node's member identity (ADVERTISE_URL): what its peers and its redirects use. */
  url: string;
  /** Where the harness's clients send requests (the node itself, never a proxy). */
  clientUrl: string;
}

export type NetKind = 'netns' | 'proxy';

export interface ClusterNet {
  readonly kind: NetKind;
  readonly endpoints: readonly NodeEndpoint[];
  /** One line for the report: what was created. */
  describe(): string;
  /** The command that runs `argv` as node i (inside its namespace, or as is). */
  wrap(i: number, argv: readonly string[]): { file: string; args: string[] };
  /**
   * Makes exactly these unordered pairs of nodes unable to reach each other; every other link between nodes
   * works. `setCuts([])` heals everything.
   */
  setCuts(pairs: ReadonlyArray<readonly [number, number]>): Promise<void>;
  /**
   * What kept the network from cutting what it was asked to, so far: a run with any of these did not test
   * the partitions it claims (the proxies met peer connections from a sender they do not know).
   */
  problems(): string[];
  /**
   * The traffic the cuts stopped so far, for the report and as proof that partitions cut something:
   * connections silenced (proxies) or packets dropped (iptables); undefined where it cannot be counted
   * (blackhole routes).
   */
  cutTraffic(): { count: number; unit: string } | undefined;
  /** Removes everything this network created. Idempotent. Processes must have been stopped first. */
  close(): Promise<void>;
  /**
   * Node i's current process id (undefined while it does not run), for a network that tells senders apart
   * by process (the proxies under TLS). Others ignore it.
   */
  trackProcesses?(pids: () => ReadonlyArray<number | undefined>): void;
}

export interface NetOptions {
  /** The nodes serve HTTPS: their URLs are https:// (the certificates are the caller's, test/chaos/tls.ts). */
  tls?: boolean;
}

const PREFIX = 'rkc-';
const NAME_PATTERN = /^rkc-([0-9a-z]+)-([0-9a-z]+)(?:-n\d+|b|v\d+)$/;
let runCounter = 0;

function runTag(): string {
  return `${PREFIX}${process.pid.toString(36)}-${(runCounter++).toString(36)}`;
}

let support: { ok: boolean; why?: string } | undefined;

/**
 * Whether this process can build namespaces: root, with `ip`, and the kernel letting it (a container
 * without CAP_SYS_ADMIN does not: tried once with a namespace made and deleted at once).
 */
export function netnsSupported(): { ok: boolean; why?: string } {
  if (support) return support;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return (support = { ok: false, why: 'not running as root' });
  if (!available('ip', ['-V'])) return (support = { ok: false, why: '`ip` (iproute2) not found' });
  const probe = `${PREFIX}${process.pid.toString(36)}-probe-n0`;
  const made = runSync('ip', ['netns', 'add', probe]) !== undefined;
  runSync('ip', ['netns', 'del', probe]);
  return (support = made ? { ok: true } : { ok: false, why: '`ip netns add` is not permitted here' });
}

/** Opens the network: `auto` uses namespaces where supported, else proxies. */
export async function openNet(
  kind: NetKind | 'auto',
  nodes: number,
  log: (line: string) => void = () => undefined,
  options: NetOptions = {},
): Promise<ClusterNet> {
  if (kind === 'auto') {
    const support = netnsSupported();
    if (!support.ok) log(`network namespaces unavailable (${support.why}): using TCP proxies`);
    kind = support.ok ? 'netns' : 'proxy';
  }
  if (kind === 'netns') {
    sweepStaleNetworks(log);
    return NetnsNet.create(nodes, options.tls === true);
  }
  return ProxyNet.create(nodes, options.tls === true);
}

// ---------------------------------------------------------------------------------------------------------
// Network namespaces

const NODE_PORT = 7000;

class NetnsNet implements ClusterNet {
  readonly kind = 'netns';
  private cuts = new Set<string>();
  /** Packets the DROP rules of cuts already replaced had matched (iptables-restore resets the counters). */
  private dropped = 0;
  private closed = false;
  private readonly unregister: () => void;

  private constructor(
    private readonly tag: string,
    private readonly subnet: string,
    private readonly namespaces: string[],
    private readonly forwardRule: string[] | undefined,
    private readonly cutWith: 'iptables' | 'route',
    readonly endpoints: NodeEndpoint[],
  ) {
    this.unregister = registerCleanup(() => this.closeSync());
  }

  static async create(count: number, tls: boolean): Promise<NetnsNet> {
    const tag = runTag();
    const bridge = `${tag}b`;
    const subnet = pickSubnet();
    const namespaces = Array.from({ length: count }, (_, i) => `${tag}-n${i + 1}`);
    // Until the object exists, a failure undoes what was made so far (names are derived from the tag).
    const partial = registerCleanup(() => destroyTag(tag));
    try {
      await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
      await run('ip', ['addr', 'add', `${subnet}.254/24`, 'dev', bridge]);
      await run('ip', ['link', 'set', bridge, 'up']);
      const endpoints: NodeEndpoint[] = [];
      for (let i = 0; i < count; i++) {
        const ns = namespaces[i];
        const veth = `${tag}v${i + 1}`;
        const ip = `${subnet}.${i + 1}`;
        await run('ip', ['netns', 'add', ns]);
        await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
        await run('ip', ['link', 'set', veth, 'master', bridge, 'up']);
        await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        await run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
        await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
        const url = `${tls ? 'https' : 'http'}://${ip}:${NODE_PORT}`;
        endpoints.push({ name: `node${i + 1}`, bindHost: ip, httpPort: NODE_PORT, url, clientUrl: url });
      }
      const forwardRule = await allowBridgedTraffic(bridge, tag);
      const cutWith = available('iptables', ['-V']) ? 'iptables' : 'route';
      const net = new NetnsNet(tag, subnet, namespaces, forwardRule, cutWith, endpoints);
      partial();
      return net;
    } catch (error) {
      destroyTag(tag);
      partial();
      throw error;
    }
  }

  describe(): string {
    return (
      `network namespaces ${this.namespaces[0]}..${this.namespaces.length} on bridge ${this.tag}b ` +
      `(${this.subnet}.0/24, harness at ${this.subnet}.254), cuts by ${this.cutWith}`
    );
  }

  wrap(i: number, argv: readonly string[]): { file: string; args: string[] } {
    // `ip netns exec` execs the command: the child's pid is the node's, so signals reach it directly.
    return { file: 'ip', args: ['netns', 'exec', this.namespaces[i], ...argv] };
  }

  async setCuts(pairs: ReadonlyArray<readonly [number, number]>): Promise<void> {
    const wanted = new Set(pairs.map(([a, b]) => pairKey(a, b)));
    const peersOf = (i: number) =>
      [...wanted].map((k) => k.split('-').map(Number)).flatMap(([a, b]) => (a === i ? [b] : b === i ? [a] : []));
    if (this.cutWith === 'iptables') {
      if (this.cuts.size > 0) this.dropped += (await Promise.all(this.namespaces.map((ns) => droppedPackets(ns)))).reduce((a, b) => a + b, 0);
      // One atomic iptables-restore per namespace: the filter table holds exactly the wanted drops.
      await Promise.all(
        this.namespaces.map((ns, i) => {
          const rules = peersOf(i).flatMap((j) => {
            const ip = this.endpoints[j].bindHost;
            return [`-A INPUT -s ${ip}/32 -j DROP`, `-A OUTPUT -d ${ip}/32 -j DROP`];
          });
          const table = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...rules, 'COMMIT', ''];
          return run('ip', ['netns', 'exec', ns, 'iptables-restore'], table.join('\n'));
        }),
      );
    } else {
      const ops: Promise<string>[] = [];
      for (const key of new Set([...wanted, ...this.cuts])) {
        const [a, b] = key.split('-').map(Number);
        const verb = wanted.has(key) ? 'replace' : 'del';
        if (wanted.has(key) && this.cuts.has(key)) continue;
        for (const [x, y] of [[a, b], [b, a]]) {
          ops.push(run('ip', ['-n', this.namespaces[x], 'route', verb, 'blackhole', `${this.endpoints[y].bindHost}/32`]));
        }
      }
      await Promise.all(ops);
    }
    this.cuts = wanted;
  }

  problems(): string[] {
    // Cuts are by address: every packet from a node's namespace carries its address.
    return [];
  }

  cutTraffic(): { count: number; unit: string } | undefined {
    // Counted when cuts are replaced: the harness heals every cut before it reads this.
    return this.cutWith === 'iptables' ? { count: this.dropped, unit: 'packets dropped' } : undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closeSync();
  }

  private closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.forwardRule) runSync('iptables', ['-D', ...this.forwardRule]);
    destroyTag(this.tag);
    this.unregister();
  }
}

/** Packets matched by the DROP rules of the namespace's filter table (0 when it cannot be read). */
async function droppedPackets(ns: string): Promise<number> {
  const table = await run('ip', ['netns', 'exec', ns, 'iptables', '-n', '-v', '-x', '-L']).catch(() => '');
  let packets = 0;
  // Rule lines: pkts bytes target prot opt in out source destination
  for (const line of table.split('\n')) {
    const [pkts, , target] = line.trim().split(/\s+/);
    if (target === 'DROP' && /^\d+$/.test(pkts)) packets += Number(pkts);
  }
  return packets;
}

function pairKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/** A 10.x.y.0/24 that no interface here uses yet. */
function pickSubnet(): string {
  const used = runSync('ip', ['-4', '-o', 'addr', 'show']) ?? '';
  const routes = runSync('ip', ['-4', 'route', 'show', 'table', 'all']) ?? '';
  for (let attempt = 0; attempt < 200; attempt++) {
    const subnet = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`;
    if (!used.includes(` ${subnet}.`) && !routes.includes(`${subnet}.`)) return subnet;
  }
  throw new Error('no free 10.200-249.x.0/24 subnet for the chaos bridge');
}

/**
 * With br_netfilter loaded, bridged packets pass the root namespace's FORWARD chain. If that chain is not a
 * plain ACCEPT, let our bridge's traffic through with one rule (returned, to delete it at close).
 */
async function allowBridgedTraffic(bridge: string, tag: string): Promise<string[] | undefined> {
  let callsIptables = '0';
  try {
    callsIptables = readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim();
  } catch {
    return undefined;
  }
  if (callsIptables !== '1' || !available('iptables', ['-V'])) return undefined;
  const chain = (runSync('iptables', ['-S', 'FORWARD']) ?? '').trim();
  if (chain === '-P FORWARD ACCEPT') return undefined;
  const rule = ['FORWARD', '-i', bridge, '-o', bridge, '-m', 'comment', '--comment', tag, '-j', 'ACCEPT'];
  await run('iptables', ['-I', ...rule]);
  return rule;
}

/** Kills whatever still runs in the tag's namespaces, then deletes them, its links and its rules. */
function destroyTag(tag: string): void {
  const namespaces = (runSync('ip', ['netns', 'list']) ?? '')
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((ns) => ns.startsWith(`${tag}-n`));
  for (const ns of namespaces) {
    for (const pid of (runSync('ip', ['netns', 'pids', ns]) ?? '').split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    runSync('ip', ['netns', 'del', ns]);
  }
  // Deleting a namespace deletes the veth end inside it, and with it the host end; the bridge remains.
  for (const link of listLinks()) if (link === `${tag}b` || link.startsWith(`${tag}v`)) runSync('ip', ['link', 'del', link]);
  for (const rule of forwardRules()) if (rule.tag === tag) runSync('iptables', ['-D', ...rule.spec]);
}

function listLinks(): string[] {
  return (runSync('ip', ['-o', 'link', 'show']) ?? '')
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && name.startsWith(PREFIX));
}

function forwardRules(): { tag: string; spec: string[] }[] {
  if (!available('iptables', ['-V'])) return [];
  return (runSync('iptables', ['-S', 'FORWARD']) ?? '')
    .split('\n')
    .filter((line) => line.startsWith('-A FORWARD') && line.includes(`--comment ${PREFIX}`))
    .map((line) => {
      const spec = line.slice('-A '.length).split(' ');
      return { tag: spec[spec.indexOf('--comment') + 1], spec };
    });
}

/**
 * Removes namespaces, links and rules that runs of this harness left behind when their process died
 * (the pid in the name is gone). Live runs' resources are left alone. Returns what it removed.
 */
export function sweepStaleNetworks(log: (line: string) => void = () => undefined): string[] {
  if (!netnsSupported().ok) return [];
  const stale = new Set<string>();
  const consider = (name: string) => {
    const m = NAME_PATTERN.exec(name);
    if (m && !processAlive(parseInt(m[1], 36))) stale.add(`${PREFIX}${m[1]}-${m[2]}`);
  };
  for (const line of (runSync('ip', ['netns', 'list']) ?? '').split('\n')) consider(line.split(' ')[0]);
  for (const link of listLinks()) consider(link);
  for (const rule of forwardRules()) consider(`${rule.tag}b`);
  for (const tag of stale) {
    log(`removing ${tag}*, left behind by a chaos run that died`);
    destroyTag(tag);
  }
  return [...stale];
}

// ---------------------------------------------------------------------------------------------------------
// TCP proxies (no root needed)

interface ProxiedConnection {
  from?: number;
  to: number;
  client: Socket;
  upstream?: Socket;
  silent: boolean;
}

const SENDER_HEADER = /^x-raft-from:[ \t]*(\S+)[ \t]*$/im;
const MAX_HEAD = 64 * 1024;

class ProxyNet implements ClusterNet {
  readonly kind = 'proxy';
  private readonly connections = new Set<ProxiedConnection>();
  /** Senders (`x-raft-from` values) that matched no node's NODE_ID, and how many connections each opened. */
  private readonly unknownSenders = new Map<string, number>();
  /** TLS: connections still open whose socket no node's process (nor this one) owned, by sender port. */
  private readonly unownedConnections: number[] = [];
  private pids: () => ReadonlyArray<number | undefined> = () => [];
  /** Peer connections a cut silenced. */
  private silenced = 0;
  private cuts = new Set<string>();
  private closed = false;
  private readonly unregister: () => void;

  private constructor(
    readonly endpoints: NodeEndpoint[],
    private readonly servers: Server[],
    /** TLS: senders are told apart by the process owning the socket, not by a header the proxy cannot read. */
    private readonly byProcess: boolean,
  ) {
    this.unregister = registerCleanup(() => this.closeSync());
  }

  static async create(count: number, tls: boolean): Promise<ProxyNet> {
    const ports = await freePorts(2 * count);
    const scheme = tls ? 'https' : 'http';
    const endpoints = Array.from({ length: count }, (_, i) => ({
      name: `node${i + 1}`,
      bindHost: '127.0.0.1',
      httpPort: ports[i],
      url: `${scheme}://127.0.0.1:${ports[count + i]}`,
      clientUrl: `${scheme}://127.0.0.1:${ports[i]}`,
    }));
    const servers: Server[] = [];
    const net = new ProxyNet(endpoints, servers, tls);
    try {
      for (let i = 0; i < count; i++) {
        const server = createServer((socket) => net.accept(i, socket));
        servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(ports[count + i], '127.0.0.1', () => resolve());
        });
      }
    } catch (error) {
      net.closeSync();
      throw error;
    }
    return net;
  }

  describe(): string {
    return `TCP proxies on 127.0.0.1 (node ports ${this.endpoints.map((e) => e.httpPort).join(', ')}; ` +
      `advertised ${this.endpoints.map((e) => new URL(e.url).port).join(', ')}; ` +
      `senders told apart by ${this.byProcess ? 'the process owning the socket (TLS)' : 'x-raft-from'})`;
  }

  trackProcesses(pids: () => ReadonlyArray<number | undefined>): void {
    this.pids = pids;
  }

  wrap(_i: number, argv: readonly string[]): { file: string; args: string[] } {
    return { file: argv[0], args: argv.slice(1) };
  }

  async setCuts(pairs: ReadonlyArray<readonly [number, number]>): Promise<void> {
    const previous = this.cuts;
    this.cuts = new Set(pairs.map(([a, b]) => pairKey(a, b)));
    for (const c of this.connections) {
      if (c.from === undefined) continue;
      const key = pairKey(c.from, c.to);
      if (this.cuts.has(key)) this.silence(c);
      else if (previous.has(key) && c.silent) this.drop(c);
    }
  }

  problems(): string[] {
    const problems = [...this.unknownSenders].map(
      ([sender, n]) => `the proxies could not tell which node sent ${n} peer connection(s) (x-raft-from: ${sender}), so no cut applied to them`,
    );
    const unowned = this.unownedConnections;
    if (unowned.length > 0) {
      problems.push(
        `the proxies found no node process owning ${unowned.length} peer connection(s) (sender ports ${unowned.slice(0, 5).join(', ')}), so no cut applied to them`,
      );
    }
    return problems;
  }

  cutTraffic(): { count: number; unit: string } {
    return { count: this.silenced, unit: 'peer connections silenced' };
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  private closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.connections) this.drop(c);
    for (const s of this.servers) s.close();
    this.unregister();
  }

  private accept(to: number, client: Socket): void {
    const c: ProxiedConnection = { to, client, silent: false };
    this.connections.add(c);
    client.on('error', () => undefined);
    client.on('close', () => {
      c.upstream?.destroy();
      this.connections.delete(c);
    });
    if (this.byProcess) {
      this.acceptByProcess(c);
      return;
    }
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0 && head.length < MAX_HEAD) return;
      client.off('data', onHead);
      // Peer requests name their sender by NODE_ID; a request without the header (a client, an admin call
      // such as a joining node's) belongs to no link and is never cut.
      const sender = SENDER_HEADER.exec(head.subarray(0, end < 0 ? head.length : end).toString('latin1'))?.[1];
      const from = sender === undefined ? -1 : this.endpoints.findIndex((e) => e.name === sender);
      if (sender !== undefined && from < 0) this.unknownSenders.set(sender, (this.unknownSenders.get(sender) ?? 0) + 1);
      c.from = from >= 0 ? from : undefined;
      if (c.from !== undefined && this.cuts.has(pairKey(c.from, to))) {
        this.silence(c);
        return;
      }
      this.forward(c, head);
    };
    client.on('data', onHead);
  }

  /**
   * The sender of a TLS connection: the node whose process owns the other end of the socket. Its bytes (the
   * ClientHello) wait meanwhile. A connection nobody here owns (its sender was killed just after connecting,
   * before the lookup) is gone a moment later; one still open then is recorded (problems()).
   */
  private acceptByProcess(c: ProxiedConnection): void {
    const chunks: Buffer[] = [];
    const hold = (chunk: Buffer) => chunks.push(chunk);
    c.client.on('data', hold);
    const senderPort = c.client.remotePort;
    const proxyPort = c.client.localPort;
    // Node i's pid at index i, then this process's own.
    const candidates = () => [...this.endpoints.map((_, i) => this.pids()[i]), process.pid];
    void (async () => {
      let owner = await socketOwner(senderPort, proxyPort, candidates());
      if (owner === undefined && !c.client.destroyed) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        if (!c.client.destroyed && !c.client.readableEnded) owner = await socketOwner(senderPort, proxyPort, candidates());
        if (owner === undefined && !c.client.destroyed && !c.client.readableEnded && senderPort !== undefined) this.unownedConnections.push(senderPort);
      }
      c.client.off('data', hold);
      if (c.client.destroyed || this.closed) return;
      // The harness's own connections (the last candidate) belong to no link, like header-less requests.
      c.from = owner !== undefined && owner < this.endpoints.length ? owner : undefined;
      const head = Buffer.concat(chunks);
      if (c.from !== undefined && this.cuts.has(pairKey(c.from, c.to))) {
        this.silence(c);
        return;
      }
      this.forward(c, head);
    })();
  }

  private forward(c: ProxiedConnection, head: Buffer): void {
    const upstream = connect(this.endpoints[c.to].httpPort, this.endpoints[c.to].bindHost);
    c.upstream = upstream;
    upstream.on('error', () => c.client.destroy());
    upstream.on('close', () => {
      if (!c.silent) c.client.destroy();
    });
    upstream.write(head);
    c.client.pipe(upstream);
    upstream.pipe(c.client);
  }

  /** The link is cut: forward nothing either way, answer nothing, keep the connection open (silence). */
  private silence(c: ProxiedConnection): void {
    if (c.silent) return;
    c.silent = true;
    this.silenced++;
    if (c.upstream) {
      c.client.unpipe(c.upstream);
      c.upstream.unpipe(c.client);
      c.upstream.destroy();
      c.upstream = undefined;
    }
    c.client.removeAllListeners('data');
    c.client.on('data', () => undefined);
    c.client.resume();
  }

  /** A connection that was silenced during a cut ends when the cut heals (like a TCP connection that timed out). */
  private drop(c: ProxiedConnection): void {
    c.upstream?.destroy();
    c.client.destroy();
    this.connections.delete(c);
  }
}

/**
 * Which of `pids` owns the TCP socket from 127.0.0.1:`senderPort` to 127.0.0.1:`proxyPort` (its index), if any:
 * /proc/net/tcp gives the socket's inode, and the owner's /proc/<pid>/fd has a link to `socket:[inode]`.
 * Linux only; a process this one may not inspect owns nothing here.
 */
async function socketOwner(senderPort: number | undefined, proxyPort: number | undefined, pids: ReadonlyArray<number | undefined>): Promise<number | undefined> {
  if (senderPort === undefined || proxyPort === undefined) return undefined;
  const table = await readFile('/proc/net/tcp', 'latin1').catch(() => '');
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  const local = `0100007F:${hex(senderPort)}`;
  const remote = `0100007F:${hex(proxyPort)}`;
  let inode: string | undefined;
  // Lines: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[2] === remote && fields[9] !== '0') inode = fields[9];
  }
  if (inode === undefined) return undefined;
  const target = `socket:[${inode}]`;
  const owns = await Promise.all(
    pids.map(async (pid) => {
      if (pid === undefined) return false;
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
      return links.includes(target);
    }),
  );
  const owner = owns.indexOf(true);
  return owner >= 0 ? owner : undefined;
}

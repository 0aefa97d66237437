import { BlockList, isIP } from 'node:net';
import { promises as dns } from 'node:dns';
import { PeerRejection } from './peer-protocol';

/** Every address a host name resolves to (both families), as `dns.promises.lookup(host, { all: true })`. */
export type LookupAll = (host: string) => Promise<string[]>;

export const systemLookup: LookupAll = async (host) =>
  (await dns.lookup(host, { all: true, family: 0 })).map((a) => a.address);

/** Re-resolve the members' host names this often, so that a member whose address changes is admitted. */
export const REFRESH_EVERY_MS = 30_000;
/** A stream from an unknown address triggers a re-resolution at most this often. */
export const REFRESH_ON_REFUSAL_GAP_MS = 5_000;
/** A refused address is logged at most this often. */
export const REFUSAL_LOG_EVERY_MS = 60_000;
/** Beyond this many remembered refused addresses, the ones not logged within the last minute are forgotten. */
const MAX_REMEMBERED = 10_000;

export interface PeerAdmissionOptions {
  /** Every member's URL, this node's included, until setMembers() replaces them. */
  members: string[];
  /** Admit peer streams from any address (PEER_ALLOW_ANY=true): the check is off. */
  allowAny?: boolean;
  /** Addresses and CIDR ranges admitted besides the members' own (PEER_ALLOWED_ADDRESSES). */
  allowedAddresses?: string[];
  lookup?: LookupAll;
  now?: () => number;
  /** Where refusals and resolution failures are reported (a warning each). */
  warn?: (message: string) => void;
  refreshEveryMs?: number;
}

/** What a stream's opener says about itself: logged with a refusal, never trusted. */
export interface PeerClaim {
  /** The NODE_ID it announces (x-raft-from). */
  nodeId?: string;
}

/**
 * An IP address in the form members' addresses are kept in: lower case, and an IPv4-mapped IPv6 address
 * (`::ffff:10.0.0.1`, how a dual-stack socket reports an IPv4 peer) as the IPv4 address.
 */
export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  return mapped ? mapped[1] : a;
}

/**
 * Parses one PEER_ALLOWED_ADDRESSES entry: an IPv4 or IPv6 address, or a CIDR range. Returns undefined when
 * it is neither.
 */
export function parseAllowedEntry(entry: string): { address: string; prefix?: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [raw, prefixText, ...rest] = entry.trim().split('/');
  if (rest.length > 0) return undefined;
  const address = normalizeAddress(raw);
  const version = isIP(address);
  if (version === 0) return undefined;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  if (prefixText === undefined) return { address, family };
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (version === 4 ? 32 : 128)) return undefined;
  return { address, prefix, family };
}

/**
 * The addresses of a host that needs no resolver: an IP literal is its own; `localhost` is both loopbacks,
 * not left to the resolver, since a local member may connect from either whatever order (or subset)
 * /etc/hosts lists. Undefined for a name to resolve.
 */
function literalAddresses(host: string): string[] | undefined {
  if (isIP(host) !== 0) return [normalizeAddress(host)];
  if (host === 'localhost') return ['127.0.0.1', '::1'];
  return undefined;
}

/** The host of a member URL, without the brackets of an IPv6 literal. */
function hostOf(url: string): string {
  const host = new URL(url).hostname.toLowerCase();
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * Who may open a peer stream (docs/cluster-rpc.md, "Admission"): by default only the members' addresses.
 * Each member URL's host is resolved (an IP literal is its own address; `localhost` is 127.0.0.1 and ::1;
 * any other name through the system resolver, every address of both families) at start, every 30 s, and
 * when a stream arrives from an address not in the set (at most every 5 s), so that a member whose address
 * changed (a container restarted) is admitted again without a restart. A name that fails to resolve keeps
 * the addresses it last resolved to. PEER_ALLOWED_ADDRESSES adds addresses and ranges; PEER_ALLOW_ANY turns
 * the check off.
 *
 * The address is the TCP peer's: it cannot be forged without controlling routing, but every process on a
 * member's host shares it. CLUSTER_TOKEN is the secret on top.
 */
export class PeerAdmission {
  private hosts: string[];
  private readonly resolved = new Map<string, string[]>();
  private allowed = new Set<string>();
  private readonly extra = new BlockList();
  private readonly lookup: LookupAll;
  private readonly now: () => number;
  private readonly warn: (message: string) => void;
  private refreshing?: Promise<void>;
  /** setMembers() was called while a resolution was under way. */
  private hostsChanged = false;
  private lastRefresh = -Infinity;
  private timer?: NodeJS.Timeout;
  private readonly lastLogged = new Map<string, number>();
  private readonly failedHosts = new Map<string, number>();

  constructor(private readonly options: PeerAdmissionOptions) {
    this.hosts = [...new Set(options.members.map(hostOf))];
    this.lookup = options.lookup ?? systemLookup;
    this.now = options.now ?? Date.now;
    this.warn = options.warn ?? (() => undefined);
    for (const entry of options.allowedAddresses ?? []) {
      const parsed = parseAllowedEntry(entry);
      if (!parsed) throw new Error(`not an IP address or CIDR range: '${entry}'`);
      if (parsed.prefix === undefined) this.extra.addAddress(parsed.address, parsed.family);
      else this.extra.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
  }

  get allowAny(): boolean {
    return this.options.allowAny === true;
  }

  /** Resolves the members' addresses, then re-resolves them every 30 s until stop(). */
  async start(): Promise<void> {
    if (this.allowAny) return;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.refreshEveryMs ?? REFRESH_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Replaces the members (their URLs, this node's included) as the configuration changes: a new member's
   * host is resolved at once (an IP literal or localhost is admitted before this returns), a former member's
   * addresses are no longer admitted once it resolves. Resolves when the resolution is done.
   */
  setMembers(members: readonly string[]): Promise<void> {
    const hosts = [...new Set(members.map(hostOf))];
    if (hosts.length === this.hosts.length && hosts.every((h) => this.hosts.includes(h))) return Promise.resolve();
    this.hosts = hosts;
    for (const host of [...this.resolved.keys()]) if (!hosts.includes(host)) this.resolved.delete(host);
    for (const host of hosts) {
      const literal = literalAddresses(host);
      if (literal) this.resolved.set(host, literal);
    }
    this.allowed = new Set([...this.resolved.values()].flat());
    if (this.allowAny) return Promise.resolve();
    // A resolution in flight started from the former hosts: it goes round once more.
    this.hostsChanged = true;
    return this.refresh();
  }

  /** The members' addresses as last resolved, sorted. */
  addresses(): string[] {
    return [...this.allowed].sort();
  }

  /** Whether `address` is admitted by what is known now (no resolution). */
  isAllowed(address: string | undefined): boolean {
    if (this.allowAny) return true;
    if (!address) return false;
    const a = normalizeAddress(address);
    if (this.allowed.has(a)) return true;
    const version = isIP(a);
    return version !== 0 && this.extra.check(a, version === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * Decides on a stream opened from `address`: undefined to admit it, or a 403 to answer. An unknown address
   * first triggers a re-resolution (rate-limited), in case a member's address has just changed. A refusal
   * is logged once per address per minute, with what the sender claimed to be.
   */
  async check(address: string | undefined, claim: PeerClaim = {}): Promise<PeerRejection | undefined> {
    if (this.isAllowed(address)) return undefined;
    // A resolution under way (the members just changed) may admit it.
    if (this.refreshing) {
      await this.refreshing;
      if (this.isAllowed(address)) return undefined;
    }
    if (address && this.now() - this.lastRefresh >= REFRESH_ON_REFUSAL_GAP_MS) {
      await this.refresh();
      if (this.isAllowed(address)) return undefined;
    }
    const source = address ? normalizeAddress(address) : 'an unknown address';
    this.logRefusal(source, claim);
    return { status: 403, error: `peer streams are accepted only from the cluster members' addresses; ${source} is not one` };
  }

  /**
   * A 403 for a peer request refused for its TLS client certificate (mutual TLS: `reason`), logged like an
   * address refusal: once per address per minute, with what the sender claimed to be.
   */
  refuseCertificate(address: string | undefined, reason: string, claim: PeerClaim = {}): PeerRejection {
    const source = address ? normalizeAddress(address) : 'an unknown address';
    if (this.shouldLog(`tls ${source}`)) {
      const quote = (s: string | undefined) => (s ? JSON.stringify(s.slice(0, 100)) : 'none');
      this.warn(`refused a peer request from ${source} (claimed NODE_ID ${quote(claim.nodeId)}): ${reason} (logged once a minute per address)`);
    }
    return { status: 403, error: reason };
  }

  /** Resolves every member's host now (one resolution at a time; callers during one share it). */
  refresh(): Promise<void> {
    this.refreshing ??= this.resolveUntilSettled().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async resolveUntilSettled(): Promise<void> {
    do {
      this.hostsChanged = false;
      await this.resolveAll();
    } while (this.hostsChanged);
  }

  private async resolveAll(): Promise<void> {
    this.lastRefresh = this.now();
    const hosts = this.hosts;
    await Promise.all(
      hosts.map(async (host) => {
        try {
          const addresses = await this.resolveHost(host);
          if (addresses.length === 0) throw new Error('no address');
          this.resolved.set(host, addresses);
          this.failedHosts.delete(host);
        } catch (error) {
          // Keep what it last resolved to: a resolver hiccup must not lock a member out.
          const last = this.failedHosts.get(host);
          if (last === undefined || this.now() - last >= REFUSAL_LOG_EVERY_MS) {
            this.failedHosts.set(host, this.now());
            const kept = this.resolved.get(host);
            this.warn(
              `cannot resolve member host ${host} (${(error as Error).message}); ` +
                (kept ? `keeping its last addresses ${kept.join(', ')}` : 'peer streams from it are refused until it resolves'),
            );
          }
        }
      }),
    );
    // Members removed meanwhile (setMembers) are not admitted again by this late resolution.
    for (const host of [...this.resolved.keys()]) if (!this.hosts.includes(host)) this.resolved.delete(host);
    this.allowed = new Set([...this.resolved.values()].flat());
  }

  private async resolveHost(host: string): Promise<string[]> {
    return literalAddresses(host) ?? [...new Set((await this.lookup(host)).map(normalizeAddress))];
  }

  /** Whether a refusal under `key` is to be logged now (once per key per minute); records it if so. */
  private shouldLog(key: string): boolean {
    const now = this.now();
    const last = this.lastLogged.get(key);
    if (last !== undefined && now - last < REFUSAL_LOG_EVERY_MS) return false;
    if (this.lastLogged.size >= MAX_REMEMBERED) {
      for (const [k, at] of this.lastLogged) if (now - at >= REFUSAL_LOG_EVERY_MS) this.lastLogged.delete(k);
    }
    this.lastLogged.set(key, now);
    return true;
  }

  private logRefusal(source: string, claim: PeerClaim): void {
    if (!this.shouldLog(source)) return;
    // What the stranger sent is quoted (JSON) and cut short: it must not be able to forge log lines.
    const quote = (s: string | undefined) => (s ? JSON.stringify(s.slice(0, 100)) : 'none');
    this.warn(
      `refused a peer stream from ${source}: not a member's address (claimed NODE_ID ${quote(claim.nodeId)}); ` +
        `members' addresses: ${this.addresses().join(', ') || 'none resolved yet'}` +
        `${this.options.allowedAddresses?.length ? `, plus PEER_ALLOWED_ADDRESSES ${this.options.allowedAddresses.join(',')}` : ''}` +
        ' (logged once a minute per address)',
    );
  }
}

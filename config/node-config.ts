import { isIP } from 'node:net';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  validateSync,
  ValidationError,
} from 'class-validator';
import { ApiRole, loadApiTokens } from './api-tokens';
import { ConfigError } from './config-error';
import { loadTlsConfig, TlsConfig } from './tls-config';

export { ConfigError };

/** The validated configuration of one node. Built once at start by loadNodeConfig(). */
export interface NodeConfig {
  /** NODE_ID: this node's identity in the cluster (its Raft member id), reported as `leader` in the API. */
  nodeId: string;
  httpPort: number;
  bindHost: string;
  /**
   * This node's member URL: where the other members reach it, as it tells them. Without PEER_PORT, its one
   * URL: ADVERTISE_URL, or http://localhost:HTTP_PORT. With PEER_PORT, its peer URL: PEER_ADVERTISE_URL, or
   * that URL with its port replaced by PEER_PORT. Only an address: the node's identity is its NODE_ID.
   */
  advertiseUrl: string;
  /**
   * ADVERTISE_URL (or PEER_ADVERTISE_URL) was set: a joining node then announces advertiseUrl; otherwise the
   * member it asks records the address its request came from, with advertiseUrl's port.
   */
  advertiseUrlGiven: boolean;
  /** Where clients reach this node (ADVERTISE_URL, or http://localhost:HTTP_PORT): advertiseUrl without PEER_PORT. */
  clientUrl: string;
  /** PEER_PORT: a second listener serving only the peer routes (`/raft/*`), which HTTP_PORT then refuses. */
  peerPort?: number;
  /** PEER_BIND_HOST: the address the peer listener binds (default BIND_HOST). Set only with peerPort. */
  peerBindHost?: string;
  /**
   * PEER_URLS, normalized: the members to discover at first start (each is asked its NODE_ID). May include
   * this node under any spelling: discovery recognises and drops the entry that answers as this very process.
   */
  peerUrls: string[];
  /** JOIN: a member's base URL; at first start, this node asks that cluster to add it (instead of PEER_URLS). */
  join?: string;
  /** JOIN_AS_LEARNER: a joined node stays a learner instead of being promoted to voter once caught up. */
  joinAsLearner: boolean;
  walDir: string;
  heartbeatIntervalMs: number;
  /** Base election timeout; each election waits a random time in [base, 2 x base). */
  electionTimeoutMs: number;
  requestTimeoutMs: number;
  /** Writes, and linearizable reads, that may wait on the node at once; more are answered 503 at once. */
  maxPendingRequests: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  /**
   * MAX_DATA_BYTES: the quota on the map's logical size (UTF-8 bytes of every key and value); past it the
   * leader refuses writes that would grow it. Undefined: no quota.
   */
  maxDataBytes?: number;
  /**
   * IDEMPOTENCY_WINDOW_S (in ms): how long the replicated table remembers an Idempotency-Key, measured on the
   * entries' leader time. Must be the same on every member (the table is part of the replicated state).
   */
  idempotencyWindowMs: number;
  /** IDEMPOTENCY_MAX_KEYS: at most this many remembered keys, oldest forgotten first; the same on every member. */
  idempotencyMaxKeys: number;
  /** SNAPSHOT_ENTRIES: a snapshot of the map every this many applied entries (0: never). */
  snapshotEntries: number;
  /** SNAPSHOT_CATCHUP_ENTRIES: entries kept in the log behind the newest snapshot. */
  snapshotCatchUpEntries: number;
  /** WAL_SEGMENT_BYTES: a WAL segment file is closed and a new one started past this size. */
  walSegmentBytes: number;
  /** HEADERS_TIMEOUT_MS: a connection whose request headers are not complete by then is closed (peers too). */
  headersTimeoutMs: number;
  /** BODY_TIMEOUT_MS: a client request body not complete this long after its headers is answered 408 (not the peer stream). */
  bodyTimeoutMs: number;
  /** KEEP_ALIVE_TIMEOUT_MS: an idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** WATCH_HISTORY_ENTRIES: applied changes kept in memory for GET /watch?fromIndex (older: 410). */
  watchHistoryEntries: number;
  /** WATCH_HISTORY_BYTES: the same history bounded in bytes (the newest change is always kept). */
  watchHistoryBytes: number;
  /** WATCH_HEARTBEAT_MS: a `: ping` comment on idle watch streams this often. */
  watchHeartbeatMs: number;
  /** WATCH_BUFFER_BYTES: bytes a watch stream may have unsent before it waits (reading on from the history). */
  watchBufferBytes: number;
  /** MAX_CONNECTIONS: open connections the HTTP server accepts at once (clients and peers together). */
  maxConnections: number;
  clusterToken?: string;
  /** API_TOKENS_FILE, parsed: token key → role. Undefined: the client API is open. */
  apiTokens?: Map<string, ApiRole>;
  /** PEER_ALLOW_ANY: admit peer streams from any address (by default only from the members' addresses). */
  peerAllowAny: boolean;
  /** PEER_ALLOWED_ADDRESSES: addresses and CIDR ranges admitted besides the members' own. */
  peerAllowedAddresses: string[];
  /**
   * CORS_ORIGINS: browser origins (`scheme://host[:port]`) allowed to call the client API besides the members'
   * own (apps/kv-node/src/cors.ts). Empty: only pages served by a member (its Swagger UI).
   */
  corsOrigins: string[];
  /**
   * TLS_CERT_FILE / TLS_KEY_FILE / TLS_CA_FILE, read: HTTPS on HTTP_PORT, and with a CA, mutual TLS between
   * members. Undefined: plain HTTP. Every member URL (ADVERTISE_URL, PEER_URLS, JOIN) then has its scheme.
   */
  tls?: TlsConfig;
  logLevel: LogLevelName;
  logFormat: 'text' | 'json';
}

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;

/** The environment as the node reads it; defaults are the seed's where the seed has one. */
class EnvironmentVariables {
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, {
    message: 'NODE_ID must be 1-63 characters of letters, digits, ".", "_" or "-", starting with a letter or digit',
  })
  NODE_ID = 'node1';

  @Transform(toInt)
  @IsInt({ message: 'HTTP_PORT must be an integer between 1 and 65535' })
  @Min(1, { message: 'HTTP_PORT must be an integer between 1 and 65535' })
  @Max(65535, { message: 'HTTP_PORT must be an integer between 1 and 65535' })
  HTTP_PORT: number = 3001;

  @IsString()
  PEER_URLS = '';

  @IsString()
  @MinLength(1, { message: 'WAL_DIR must not be empty' })
  WAL_DIR = './data';

  @IsString()
  @MinLength(1, { message: 'BIND_HOST must not be empty' })
  BIND_HOST = '0.0.0.0';

  @IsOptional()
  @IsString()
  ADVERTISE_URL?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'PEER_PORT must be an integer between 1 and 65535' })
  @Min(1, { message: 'PEER_PORT must be an integer between 1 and 65535' })
  @Max(65535, { message: 'PEER_PORT must be an integer between 1 and 65535' })
  PEER_PORT?: number;

  @IsOptional()
  @IsString()
  PEER_BIND_HOST?: string;

  @IsOptional()
  @IsString()
  PEER_ADVERTISE_URL?: string;

  @IsOptional()
  @IsString()
  JOIN?: string;

  @IsIn(['true', 'false'], { message: 'JOIN_AS_LEARNER must be true or false' })
  JOIN_AS_LEARNER: 'true' | 'false' = 'false';

  @Transform(toInt)
  @IsInt({ message: 'HEARTBEAT_INTERVAL_MS must be an integer number of milliseconds (10-10000)' })
  @Min(10, { message: 'HEARTBEAT_INTERVAL_MS must be an integer number of milliseconds (10-10000)' })
  @Max(10000, { message: 'HEARTBEAT_INTERVAL_MS must be an integer number of milliseconds (10-10000)' })
  HEARTBEAT_INTERVAL_MS: number = 100;

  @Transform(toInt)
  @IsInt({ message: 'ELECTION_TIMEOUT_MS must be an integer number of milliseconds (50-60000)' })
  @Min(50, { message: 'ELECTION_TIMEOUT_MS must be an integer number of milliseconds (50-60000)' })
  @Max(60000, { message: 'ELECTION_TIMEOUT_MS must be an integer number of milliseconds (50-60000)' })
  ELECTION_TIMEOUT_MS: number = 1000;

  @Transform(toInt)
  @IsInt({ message: 'REQUEST_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  @Min(100, { message: 'REQUEST_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  @Max(600000, { message: 'REQUEST_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  REQUEST_TIMEOUT_MS: number = 5000;

  @Transform(toInt)
  @IsInt({ message: 'MAX_PENDING_REQUESTS must be an integer between 1 and 1000000' })
  @Min(1, { message: 'MAX_PENDING_REQUESTS must be an integer between 1 and 1000000' })
  @Max(1000000, { message: 'MAX_PENDING_REQUESTS must be an integer between 1 and 1000000' })
  MAX_PENDING_REQUESTS: number = 10000;

  @Transform(toInt)
  @IsInt({ message: 'SNAPSHOT_ENTRIES must be an integer between 0 (never) and 100000000' })
  @Min(0, { message: 'SNAPSHOT_ENTRIES must be an integer between 0 (never) and 100000000' })
  @Max(100_000_000, { message: 'SNAPSHOT_ENTRIES must be an integer between 0 (never) and 100000000' })
  SNAPSHOT_ENTRIES: number = 10_000;

  @Transform(toInt)
  @IsInt({ message: 'SNAPSHOT_CATCHUP_ENTRIES must be an integer between 0 and 100000000' })
  @Min(0, { message: 'SNAPSHOT_CATCHUP_ENTRIES must be an integer between 0 and 100000000' })
  @Max(100_000_000, { message: 'SNAPSHOT_CATCHUP_ENTRIES must be an integer between 0 and 100000000' })
  SNAPSHOT_CATCHUP_ENTRIES: number = 5_000;

  @Transform(toInt)
  @IsInt({ message: 'WAL_SEGMENT_BYTES must be an integer between 4096 and 1073741824 (1 GiB)' })
  @Min(4096, { message: 'WAL_SEGMENT_BYTES must be an integer between 4096 and 1073741824 (1 GiB)' })
  @Max(1024 * 1024 * 1024, { message: 'WAL_SEGMENT_BYTES must be an integer between 4096 and 1073741824 (1 GiB)' })
  WAL_SEGMENT_BYTES: number = 64 * 1024 * 1024;

  @Transform(toInt)
  @IsInt({ message: 'MAX_KEY_BYTES must be an integer between 1 and 65536' })
  @Min(1, { message: 'MAX_KEY_BYTES must be an integer between 1 and 65536' })
  @Max(65536, { message: 'MAX_KEY_BYTES must be an integer between 1 and 65536' })
  MAX_KEY_BYTES: number = 1024;

  @Transform(toInt)
  @IsInt({ message: 'MAX_VALUE_BYTES must be an integer between 1 and 16777216 (16 MiB)' })
  @Min(1, { message: 'MAX_VALUE_BYTES must be an integer between 1 and 16777216 (16 MiB)' })
  @Max(16 * 1024 * 1024, { message: 'MAX_VALUE_BYTES must be an integer between 1 and 16777216 (16 MiB)' })
  MAX_VALUE_BYTES: number = 1024 * 1024;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'MAX_DATA_BYTES must be a whole number of bytes between 1 and 9007199254740991 (unset: no quota)' })
  @Min(1, { message: 'MAX_DATA_BYTES must be a whole number of bytes between 1 and 9007199254740991 (unset: no quota)' })
  @Max(Number.MAX_SAFE_INTEGER, {
    message: 'MAX_DATA_BYTES must be a whole number of bytes between 1 and 9007199254740991 (unset: no quota)',
  })
  MAX_DATA_BYTES?: number = undefined;

  @Transform(toInt)
  @IsInt({ message: 'IDEMPOTENCY_WINDOW_S must be an integer number of seconds (1-604800, a week)' })
  @Min(1, { message: 'IDEMPOTENCY_WINDOW_S must be an integer number of seconds (1-604800, a week)' })
  @Max(604_800, { message: 'IDEMPOTENCY_WINDOW_S must be an integer number of seconds (1-604800, a week)' })
  IDEMPOTENCY_WINDOW_S: number = 600;

  @Transform(toInt)
  @IsInt({ message: 'IDEMPOTENCY_MAX_KEYS must be an integer between 1 and 10000000' })
  @Min(1, { message: 'IDEMPOTENCY_MAX_KEYS must be an integer between 1 and 10000000' })
  @Max(10_000_000, { message: 'IDEMPOTENCY_MAX_KEYS must be an integer between 1 and 10000000' })
  IDEMPOTENCY_MAX_KEYS: number = 100_000;

  @Transform(toInt)
  @IsInt({ message: 'HEADERS_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  @Min(100, { message: 'HEADERS_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  @Max(600000, { message: 'HEADERS_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  HEADERS_TIMEOUT_MS: number = 10000;

  @Transform(toInt)
  @IsInt({ message: 'BODY_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  @Min(100, { message: 'BODY_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  @Max(600000, { message: 'BODY_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  BODY_TIMEOUT_MS: number = 10000;

  @Transform(toInt)
  @IsInt({ message: 'KEEP_ALIVE_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  @Min(100, { message: 'KEEP_ALIVE_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  @Max(600000, { message: 'KEEP_ALIVE_TIMEOUT_MS must be an integer number of milliseconds (100-600000)' })
  KEEP_ALIVE_TIMEOUT_MS: number = 5000;

  @Transform(toInt)
  @IsInt({ message: 'WATCH_HISTORY_ENTRIES must be an integer (1-10000000)' })
  @Min(1, { message: 'WATCH_HISTORY_ENTRIES must be an integer (1-10000000)' })
  @Max(10000000, { message: 'WATCH_HISTORY_ENTRIES must be an integer (1-10000000)' })
  WATCH_HISTORY_ENTRIES: number = 10000;

  @Transform(toInt)
  @IsInt({ message: 'WATCH_HISTORY_BYTES must be a whole number of bytes (1024-17179869184)' })
  @Min(1024, { message: 'WATCH_HISTORY_BYTES must be a whole number of bytes (1024-17179869184)' })
  @Max(17179869184, { message: 'WATCH_HISTORY_BYTES must be a whole number of bytes (1024-17179869184)' })
  WATCH_HISTORY_BYTES: number = 64 * 1024 * 1024;

  @Transform(toInt)
  @IsInt({ message: 'WATCH_HEARTBEAT_MS must be an integer number of milliseconds (50-600000)' })
  @Min(50, { message: 'WATCH_HEARTBEAT_MS must be an integer number of milliseconds (50-600000)' })
  @Max(600000, { message: 'WATCH_HEARTBEAT_MS must be an integer number of milliseconds (50-600000)' })
  WATCH_HEARTBEAT_MS: number = 15000;

  @Transform(toInt)
  @IsInt({ message: 'WATCH_BUFFER_BYTES must be a whole number of bytes (1024-1073741824)' })
  @Min(1024, { message: 'WATCH_BUFFER_BYTES must be a whole number of bytes (1024-1073741824)' })
  @Max(1073741824, { message: 'WATCH_BUFFER_BYTES must be a whole number of bytes (1024-1073741824)' })
  WATCH_BUFFER_BYTES: number = 256 * 1024;

  @Transform(toInt)
  @IsInt({ message: 'MAX_CONNECTIONS must be an integer (64-1000000)' })
  @Min(64, { message: 'MAX_CONNECTIONS must be an integer (64-1000000)' })
  @Max(1000000, { message: 'MAX_CONNECTIONS must be an integer (64-1000000)' })
  MAX_CONNECTIONS: number = 10000;

  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'CLUSTER_TOKEN must be at least 16 characters when set' })
  @MaxLength(1024, { message: 'CLUSTER_TOKEN must be at most 1024 characters' })
  CLUSTER_TOKEN?: string;

  @IsOptional()
  @IsString()
  API_TOKENS_FILE?: string;

  @IsIn(['true', 'false'], { message: 'PEER_ALLOW_ANY must be true or false' })
  PEER_ALLOW_ANY: 'true' | 'false' = 'false';

  @IsString()
  PEER_ALLOWED_ADDRESSES = '';

  @IsString()
  CORS_ORIGINS = '';

  @IsOptional()
  @IsString()
  TLS_CERT_FILE?: string;

  @IsOptional()
  @IsString()
  TLS_KEY_FILE?: string;

  @IsOptional()
  @IsString()
  TLS_CA_FILE?: string;

  @IsIn(LOG_LEVELS as unknown as string[], { message: `LOG_LEVEL must be one of: ${LOG_LEVELS.join(', ')}` })
  LOG_LEVEL: LogLevelName = 'info';

  @IsIn(['text', 'json'], { message: 'LOG_FORMAT must be one of: text, json' })
  LOG_FORMAT: 'text' | 'json' = 'text';
}

/** A value as it is echoed in a ConfigError: control characters escaped, so that the message stays one line. */
function shown(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Normalizes a member URL: lower-case scheme and host, no trailing slash, so that two spellings of one
 * address compare equal. Paths, queries and credentials are refused: a member is reached at a base URL.
 */
export function normalizeMemberUrl(raw: string, variable: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError(`${variable} has an invalid URL '${shown(raw)}' (expected e.g. http://localhost:3002)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${variable} has '${shown(raw)}': only http:// and https:// URLs are supported`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
    throw new ConfigError(`${variable} has '${shown(raw)}': give a base URL (scheme, host, port) without path, query or credentials`);
  }
  return `${url.protocol}//${url.host}`;
}

/**
 * Checks one PEER_ALLOWED_ADDRESSES entry: an IPv4 or IPv6 address, or a CIDR range (`10.0.0.0/8`,
 * `fd00::/8`). Returns it trimmed and lower-cased; throws ConfigError otherwise.
 */
export function checkAllowedAddress(entry: string): string {
  const value = entry.trim().toLowerCase();
  const [address, prefix, ...rest] = value.split('/');
  const version = isIP(address);
  const max = version === 4 ? 32 : 128;
  const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= max);
  if (version === 0 || !prefixOk || rest.length > 0) {
    throw new ConfigError(
      `PEER_ALLOWED_ADDRESSES has '${entry.trim()}': give IP addresses or CIDR ranges, comma-separated (e.g. 10.0.0.5,10.1.0.0/16)`,
    );
  }
  return value;
}

/**
 * Checks one CORS_ORIGINS entry: a browser origin, `http(s)://host[:port]` without path, query or credentials.
 * Returns it as browsers send it in the Origin header (lower-case, default port dropped); throws ConfigError
 * otherwise. `*` is refused: any web page the user visits could then write to the store.
 */
export function checkCorsOrigin(entry: string): string {
  const value = entry.trim();
  const refuse = (why: string) =>
    new ConfigError(`CORS_ORIGINS has '${shown(value)}': ${why} (comma-separated origins, e.g. https://admin.example.com,http://localhost:8080)`);
  if (value === '*') throw refuse('a wildcard would let any web page the user visits call the API; list the origins');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse('not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse('only http:// and https:// origins');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
    throw refuse('an origin is scheme, host and port only, without path, query or credentials');
  }
  return url.origin;
}

function firstConstraint(error: ValidationError): string {
  if (error.constraints) {
    const [message] = Object.values(error.constraints);
    const got = error.value === undefined ? '' : ` (got '${shown(String(error.value))}')`;
    return `${message}${got}`;
  }
  const child = error.children?.[0];
  return child ? firstConstraint(child) : `${error.property} is invalid`;
}

/** The names of every variable the node reads (the README's configuration table lists each). */
export function configVariables(): string[] {
  return Object.keys(new EnvironmentVariables());
}

/**
 * Reads and validates the node's configuration from an environment. Unset or empty variables take their
 * defaults. Throws ConfigError with a one-line message naming the variable at the first problem.
 */
export function loadNodeConfig(env: NodeJS.ProcessEnv): NodeConfig {
  const raw: Record<string, string> = {};
  for (const key of configVariables()) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  // PEER_URLS may be set but empty (the seed's single node: `PEER_URLS= npm run dev`).
  const vars = plainToInstance(EnvironmentVariables, raw);
  const errors = validateSync(vars, { forbidUnknownValues: false });
  if (errors.length > 0) throw new ConfigError(firstConstraint(errors[0]));

  const tls = loadTlsConfig({ certFile: vars.TLS_CERT_FILE, keyFile: vars.TLS_KEY_FILE, caFile: vars.TLS_CA_FILE });
  // Members reach each other the way this node serves: a mixed cluster would fail every handshake, so
  // it is said at start instead.
  const memberUrl = (raw: string, variable: string) => checkScheme(normalizeMemberUrl(raw, variable), variable, tls !== undefined);
  const scheme = tls ? 'https' : 'http';
  const clientUrl = memberUrl(vars.ADVERTISE_URL ?? `${scheme}://localhost:${vars.HTTP_PORT}`, 'ADVERTISE_URL');
  const peer = peerListener(vars, clientUrl, memberUrl);
  const advertiseUrl = peer?.url ?? clientUrl;
  const peerUrls: string[] = [];
  for (const part of vars.PEER_URLS.split(',')) {
    if (part.trim() === '') continue;
    const url = memberUrl(part, 'PEER_URLS');
    // This node's own entry, if listed, is kept: only discovery can tell which entry is this process
    // (http://localhost:3001 and http://127.0.0.1:3001 may or may not be the same node).
    if (peerUrls.includes(url)) throw new ConfigError(`PEER_URLS lists ${url} twice`);
    peerUrls.push(url);
  }
  const join = vars.JOIN === undefined ? undefined : memberUrl(vars.JOIN, 'JOIN');
  if (join !== undefined && peerUrls.length > 0) {
    throw new ConfigError(
      'JOIN and PEER_URLS are both set: give PEER_URLS to form a new cluster, or JOIN (one member\'s URL) to join an existing one',
    );
  }
  return {
    nodeId: vars.NODE_ID,
    httpPort: vars.HTTP_PORT,
    bindHost: vars.BIND_HOST,
    advertiseUrl,
    advertiseUrlGiven: vars.ADVERTISE_URL !== undefined || vars.PEER_ADVERTISE_URL !== undefined,
    clientUrl,
    ...(peer ? { peerPort: peer.port, peerBindHost: peer.bindHost } : {}),
    peerUrls,
    join,
    joinAsLearner: vars.JOIN_AS_LEARNER === 'true',
    walDir: vars.WAL_DIR,
    heartbeatIntervalMs: vars.HEARTBEAT_INTERVAL_MS,
    electionTimeoutMs: checkElection(vars.ELECTION_TIMEOUT_MS, vars.HEARTBEAT_INTERVAL_MS),
    requestTimeoutMs: vars.REQUEST_TIMEOUT_MS,
    maxPendingRequests: vars.MAX_PENDING_REQUESTS,
    maxKeyBytes: vars.MAX_KEY_BYTES,
    maxValueBytes: vars.MAX_VALUE_BYTES,
    maxDataBytes: vars.MAX_DATA_BYTES,
    idempotencyWindowMs: vars.IDEMPOTENCY_WINDOW_S * 1000,
    idempotencyMaxKeys: vars.IDEMPOTENCY_MAX_KEYS,
    snapshotEntries: vars.SNAPSHOT_ENTRIES,
    snapshotCatchUpEntries: vars.SNAPSHOT_CATCHUP_ENTRIES,
    walSegmentBytes: vars.WAL_SEGMENT_BYTES,
    headersTimeoutMs: vars.HEADERS_TIMEOUT_MS,
    bodyTimeoutMs: vars.BODY_TIMEOUT_MS,
    keepAliveTimeoutMs: vars.KEEP_ALIVE_TIMEOUT_MS,
    watchHistoryEntries: vars.WATCH_HISTORY_ENTRIES,
    watchHistoryBytes: vars.WATCH_HISTORY_BYTES,
    watchHeartbeatMs: vars.WATCH_HEARTBEAT_MS,
    watchBufferBytes: vars.WATCH_BUFFER_BYTES,
    maxConnections: vars.MAX_CONNECTIONS,
    clusterToken: vars.CLUSTER_TOKEN,
    apiTokens: vars.API_TOKENS_FILE === undefined ? undefined : loadApiTokens(vars.API_TOKENS_FILE),
    peerAllowAny: vars.PEER_ALLOW_ANY === 'true',
    peerAllowedAddresses: vars.PEER_ALLOWED_ADDRESSES.split(',')
      .filter((part) => part.trim() !== '')
      .map(checkAllowedAddress),
    corsOrigins: [...new Set(vars.CORS_ORIGINS.split(',').filter((part) => part.trim() !== '').map(checkCorsOrigin))],
    tls,
    logLevel: vars.LOG_LEVEL,
    logFormat: vars.LOG_FORMAT,
  };
}

/**
 * PEER_PORT and its companions, checked: undefined without PEER_PORT (its companions are then refused, since
 * they would be ignored). The peer URL defaults to the client URL with its port replaced by PEER_PORT.
 */
function peerListener(
  vars: EnvironmentVariables,
  clientUrl: string,
  memberUrl: (raw: string, variable: string) => string,
): { port: number; bindHost: string; url: string } | undefined {
  if (vars.PEER_PORT === undefined) {
    for (const name of ['PEER_BIND_HOST', 'PEER_ADVERTISE_URL'] as const) {
      if (vars[name] !== undefined) throw new ConfigError(`${name} is set but PEER_PORT is not: set PEER_PORT to serve peers on a port of their own`);
    }
    return undefined;
  }
  if (vars.PEER_PORT === vars.HTTP_PORT) {
    throw new ConfigError(`PEER_PORT (${vars.PEER_PORT}) must differ from HTTP_PORT; leave PEER_PORT unset to serve peers on HTTP_PORT`);
  }
  if (vars.PEER_BIND_HOST !== undefined && vars.PEER_BIND_HOST.trim() === '') throw new ConfigError('PEER_BIND_HOST must not be empty');
  let url: string;
  if (vars.PEER_ADVERTISE_URL !== undefined) {
    url = memberUrl(vars.PEER_ADVERTISE_URL, 'PEER_ADVERTISE_URL');
  } else {
    const derived = new URL(clientUrl);
    derived.port = String(vars.PEER_PORT);
    url = memberUrl(derived.href, 'PEER_ADVERTISE_URL');
  }
  // One URL for two listeners would send clients to the peer port, or peers to the client port.
  if (url === clientUrl) throw new ConfigError(`PEER_ADVERTISE_URL (${url}) must differ from the client URL (ADVERTISE_URL)`);
  return { port: vars.PEER_PORT, bindHost: vars.PEER_BIND_HOST ?? vars.BIND_HOST, url };
}

function checkScheme(url: string, variable: string, tls: boolean): string {
  if (tls && url.startsWith('http:')) {
    throw new ConfigError(`${variable} has ${url}, but this node serves TLS (TLS_CERT_FILE is set): give https:// member URLs`);
  }
  if (!tls && url.startsWith('https:')) {
    throw new ConfigError(`${variable} has ${url}, but TLS_CERT_FILE and TLS_KEY_FILE are not set: give http:// member URLs, or set them`);
  }
  return url;
}

function checkElection(electionMs: number, heartbeatMs: number): number {
  // The core counts time in heartbeat ticks; fewer than 3 heartbeats per election timeout makes a healthy
  // leader look dead after a single delayed heartbeat.
  if (electionMs < 3 * heartbeatMs) {
    throw new ConfigError(
      `ELECTION_TIMEOUT_MS (${electionMs}) must be at least 3 x HEARTBEAT_INTERVAL_MS (${heartbeatMs})`,
    );
  }
  return electionMs;
}

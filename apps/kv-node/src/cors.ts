import fastifyCors, { FastifyCorsOptions } from '@fastify/cors';
import type { MembersView } from '@app/consensus';
import { SNAPSHOT_HEADERS } from '@app/kv';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isIPv4 } from 'node:net';

/** The methods the client API serves. */
export const CORS_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'];

/** The request headers the client API reads (besides the CORS-safelisted ones). */
export const CORS_REQUEST_HEADERS = ['content-type', 'if-match', 'if-none-match', 'idempotency-key', 'authorization', 'last-event-id'];

/** The response headers clients read: a browser hides any other from the page. */
export const CORS_EXPOSED_HEADERS = [
  'etag',
  'location',
  'retry-after',
  'idempotent-replayed', // REPLAYED_HEADER (libs/kv/src/kv-errors.filter.ts)
  'www-authenticate',
  'content-disposition',
  SNAPSHOT_HEADERS.index,
  SNAPSHOT_HEADERS.term,
  SNAPSHOT_HEADERS.keys,
];

/** How long a browser may cache a preflight's answer (seconds); each actual answer is still checked. */
export const CORS_MAX_AGE_S = 600;

/** `/raft` and everything under it: the peer routes, which browsers have no business calling. */
const PEER_NAMESPACE = /^\/raft(\/|$)/;

/**
 * Whether a browser page at `origin` (the Origin header, as sent) may call the client API: it is the origin
 * of one of `clientUrls` (where the members serve clients: their Swagger UI), or one of `extraOrigins`
 * (CORS_ORIGINS, as config/ normalized them), or a loopback origin with the scheme and port of a loopback
 * client URL (a page at http://127.0.0.1:3002 when the member is named http://localhost:3002: one server).
 *
 * Only an origin in its canonical form is allowed (as a browser sends it: lower-case, no default port, no
 * path), since @fastify/cors echoes the header back as Access-Control-Allow-Origin. `null` (a sandboxed page,
 * a file:// page) and anything else: false.
 */
export function corsOriginAllowed(origin: string | undefined, clientUrls: Iterable<string>, extraOrigins: readonly string[]): boolean {
  if (origin === undefined || origin === 'null') return false;
  const page = parseOrigin(origin);
  if (page === undefined || page.origin !== origin) return false;
  if (extraOrigins.includes(origin)) return true;
  const pageLoopback = loopbackKey(page);
  for (const raw of clientUrls) {
    const member = parseOrigin(raw);
    if (member === undefined) continue;
    if (member.origin === origin) return true;
    if (pageLoopback !== undefined && loopbackKey(member) === pageLoopback) return true;
  }
  return false;
}

/** Where the members serve clients, as this node knows them: its own client URL, and each member's. */
export function memberClientUrls(ownClientUrl: string, view: MembersView | undefined): string[] {
  const urls = [ownClientUrl];
  for (const member of view?.members ?? []) {
    // With PEER_PORT a member's url is its peer URL, which serves no page; clientUrl is where clients go.
    const url = member.peerUrl === undefined ? member.url : member.clientUrl;
    if (url !== undefined) urls.push(url);
  }
  return urls;
}

export interface CorsConfig {
  clientUrl: string;
  /** CORS_ORIGINS, normalized (config/). */
  corsOrigins: readonly string[];
  /** The members as this node knows them now (RaftNode.members()); read at each request from a browser. */
  members(): MembersView;
}

/**
 * CORS on the client API (docs/api.md, "Browsers and CORS"), with @fastify/cors: a page served by a member
 * (its Swagger UI) may call any member, which a follower's redirect to the leader needs (the leader is another
 * origin, a port apart). An allowed origin's preflight is answered here, before API tokens, body limits or
 * the removed-node answer look at it (a preflight carries no token); its actual requests get
 * Access-Control-Allow-Origin (their 401 and 307 included, so the page can read them). Any other origin gets
 * no CORS header, so the browser keeps the answer from the page; requests without an Origin (curl, kvctl,
 * peers) are served exactly as before. No credentials are allowed (the API's only credential is the bearer
 * token, a header the page sets), and `*` never: any page the user visits could otherwise write to a node
 * reachable from the browser.
 *
 * Call after installPeerPort (whose 404 on the wrong port comes first) and before every other hook: hooks run
 * in the order they were added, plugins included.
 */
export function installCors(fastify: FastifyInstance, config: CorsConfig): void {
  const clientUrls = () => {
    let view: MembersView | undefined;
    try {
      view = config.members();
    } catch {
      // Before the Raft node has started: only this node's own pages.
      view = undefined;
    }
    return memberClientUrls(config.clientUrl, view);
  };
  const delegator = (request: FastifyRequest, callback: (error: Error | null, options: FastifyCorsOptions) => void) => {
    const origin = request.headers.origin;
    const peerRoute = PEER_NAMESPACE.test(request.url.split('?')[0]);
    const allowed = !peerRoute && corsOriginAllowed(origin, clientUrls(), config.corsOrigins);
    callback(null, {
      origin: allowed,
      methods: CORS_METHODS,
      allowedHeaders: CORS_REQUEST_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      maxAge: CORS_MAX_AGE_S,
      credentials: false,
    });
  };
  void fastify.register(fastifyCors, { delegator });
  // CORS only hides answers: a page of any origin can still send a "simple" POST (a form, a bodiless fetch)
  // without asking first, e.g. POST /cluster/members/:id/promote. A browser names the page's origin on every
  // request that changes something, so such a request is taken only from the page's own origin (its Host),
  // the members' pages and CORS_ORIGINS. Clients that send no Origin (curl, kvctl, peers) are not concerned.
  fastify.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin;
    if (origin === undefined || READ_METHODS.has(request.method) || PEER_NAMESPACE.test(request.url.split('?')[0])) return done();
    if (sameOrigin(origin, request.headers.host) || corsOriginAllowed(origin, clientUrls(), config.corsOrigins)) return done();
    void reply.code(403).send({
      error: `A browser page of origin ${origin.slice(0, 200)} may not change this cluster: only the members' own pages and CORS_ORIGINS may`,
    });
  });
}

/** Methods that change nothing: any page may send them (CORS decides whether it reads the answer). */
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether `origin` is the request's own (the page was served by the host it now sends to). */
function sameOrigin(origin: string, host: string | undefined): boolean {
  const url = parseOrigin(origin);
  return url !== undefined && host !== undefined && url.host === host.toLowerCase();
}

function parseOrigin(raw: string): URL | undefined {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** `scheme:port` of a loopback URL (localhost, 127.0.0.0/8, [::1]); undefined for any other host. */
function loopbackKey(url: URL): string | undefined {
  const host = url.hostname;
  const loopback = host === 'localhost' || host === '[::1]' || (isIPv4(host) && host.startsWith('127.'));
  if (!loopback) return undefined;
  return `${url.protocol}${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

import { HttpService } from '@nestjs/axios';
import { Inject, Injectable, Logger, OnModuleDestroy, Optional } from '@nestjs/common';
import { NodeId } from '@app/consensus/core';
import { RAFT_STORAGE, RaftStorage } from '@app/consensus/ports';
import { randomBytes } from 'node:crypto';
import { firstValueFrom, timeout, TimeoutError } from 'rxjs';
// The membership vocabulary and the identity record (docs/cluster-rpc.md, "Identity").
import {
  AddMemberAnswer,
  AddMemberRequest,
  ClusterBootstrap,
  ClusterIdentity,
  clusterIdFor,
  readIdentity,
  recordIdentity,
} from '@app/consensus/identity';
import { ClientUrls } from './client-urls';
import { CLUSTER_RPC_OPTIONS, ClusterRpcOptions } from './cluster-rpc.options';
import { HelloAnswer, PEER_HEADERS, PEER_HELLO_PATH } from './peer-protocol';

export const JOIN_CLUSTER = Symbol('JOIN_CLUSTER');

/**
 * Asks the cluster of the member at `joinUrl` to add this node (`POST /cluster/members`) and resolves with
 * its answer once the change has committed; rejects when it cannot be done. Production binds joinCluster
 * (admin/join-client.ts).
 */
export type JoinCluster = (joinUrl: string, request: AddMemberRequest) => Promise<AddMemberAnswer>;

const DEFAULT_RETRY_MS = 500;
const DEFAULT_REQUEST_TIMEOUT_MS = 2000;
const DEFAULT_LOG_EVERY_MS = 5000;
/** A duplicate NODE_ID is logged at most this often on the side that is asked. */
const DUPLICATE_LOG_EVERY_MS = 30_000;

/**
 * This node cannot find its cluster: two nodes share a NODE_ID, its peers belong to a cluster it is not in, the
 * join was refused. The message is one line saying what to do (the node prints it and exits 1).
 */
export class ClusterBootstrapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterBootstrapError';
  }
}

/**
 * Finds this node's ClusterIdentity before the Raft node starts (docs/cluster-rpc.md, "Identity"), and
 * answers `GET /raft/hello` for the nodes that are finding theirs.
 *
 * - A data directory with an identity record: that identity (identity.ts checks it belongs to this node).
 * - Otherwise, with JOIN: the member at JOIN is asked to add this node as a learner; its answer is the identity.
 * - Otherwise, with PEER_URLS (discovery): every entry is asked `GET /raft/hello`, again every 500 ms until all
 *   have answered. An entry answering with this process's own `instance` is this node (dropped). The initial
 *   voters are this node and the peers' NODE_IDs, sorted, and the cluster id is clusterIdFor() of them; or,
 *   when a peer has bootstrapped already and lists this node among its initial voters (this node is a slower
 *   initial member), that cluster's.
 * - Otherwise: a single-node cluster of this node.
 * A new identity is recorded durably (RaftStorage.setMeta) before resolve() resolves.
 *
 * The requests go through @nestjs/axios's HttpService, as the design asks for per-request calls off the
 * replication path. The Raft node starts only once resolve() has resolved; meanwhile this node serves HTTP
 * (it must: its peers are asking it the same question).
 */
@Injectable()
export class ClusterBootstrapService implements ClusterBootstrap, OnModuleDestroy {
  /** Drawn once per process: a hello answered with it came back to this very process. */
  readonly instance = randomBytes(16).toString('hex');
  private readonly logger = new Logger('Cluster');
  private resolved?: ClusterIdentity;
  private resolving?: Promise<ClusterIdentity>;
  private stopped = false;
  private wake?: () => void;
  private duplicateLoggedAt = -Infinity;

  constructor(
    @Inject(CLUSTER_RPC_OPTIONS) private readonly options: ClusterRpcOptions,
    @Inject(RAFT_STORAGE) private readonly storage: Pick<RaftStorage, 'meta' | 'setMeta'>,
    @Inject(HttpService) private readonly http: Pick<HttpService, 'get'>,
    @Inject(JOIN_CLUSTER) private readonly join: JoinCluster,
    /** PEER_PORT: this node's client URL goes into its hello answer; the peers' are learned from theirs and the join answer. */
    @Optional() private readonly clientUrls?: ClientUrls,
  ) {}

  get identity(): ClusterIdentity | undefined {
    return this.resolved;
  }

  /**
   * The answer of `GET /raft/hello`. `asker` is what the request said of its sender (x-raft-from,
   * x-raft-instance) and its address: another process asking with this node's NODE_ID is logged as a
   * duplicate (it will refuse to start on this answer; this side says so too).
   */
  hello(asker: { nodeId?: string; instance?: string; address?: string } = {}): HelloAnswer {
    const { nodeId } = this.options;
    if (asker.nodeId === nodeId && asker.instance !== this.instance && Date.now() - this.duplicateLoggedAt >= DUPLICATE_LOG_EVERY_MS) {
      this.duplicateLoggedAt = Date.now();
      this.logger.error(
        `duplicate NODE_ID: a node${asker.address ? ` at ${asker.address}` : ''} also calls itself '${nodeId}', this node's NODE_ID; ` +
          'give every node its own NODE_ID',
      );
    }
    return {
      nodeId: this.options.nodeId,
      instance: this.instance,
      clusterId: this.resolved?.clusterId ?? null,
      initialVoters: this.resolved ? [...this.resolved.initialVoters] : null,
      ...(this.clientUrls?.own ? { clientUrl: this.clientUrls.own } : {}),
    };
  }

  /** See ClusterBootstrap.resolve(); called more than once, it answers the first call's outcome. */
  resolve(): Promise<ClusterIdentity> {
    this.resolving ??= this.find();
    return this.resolving;
  }

  /** Stops a discovery under way (its resolve() rejects). */
  onModuleDestroy(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async find(): Promise<ClusterIdentity> {
    const { nodeId, advertiseUrl } = this.options;
    const meta = this.storage.meta;
    if (meta) {
      this.resolved = readIdentity(meta, nodeId, advertiseUrl);
      this.logger.log(`${nodeId} belongs to cluster ${this.resolved.clusterId} (recorded in WAL_DIR)`);
      return this.resolved;
    }
    let identity: ClusterIdentity;
    if (this.options.join) identity = await this.joinVia(this.options.join);
    else if (this.options.peerUrls.length > 0) identity = await this.discover();
    else identity = this.formCluster([]);
    await recordIdentity(this.storage, identity);
    this.resolved = identity;
    this.logger.log(
      `${nodeId} recorded cluster ${identity.clusterId} in WAL_DIR: initial voters ${identity.initialVoters.join(', ')}; ` +
        `members reached at ${Object.entries(identity.addresses).map(([id, url]) => `${id}=${url}`).join(', ')}`,
    );
    return identity;
  }

  /** A new cluster of this node and `peers` (NODE_ID and the URL it answered at). */
  private formCluster(peers: Array<[NodeId, string]>): ClusterIdentity {
    const { nodeId, advertiseUrl, token } = this.options;
    const initialVoters = [nodeId, ...peers.map(([id]) => id)].sort();
    return { clusterId: clusterIdFor(initialVoters, token), nodeId, initialVoters, addresses: { [nodeId]: advertiseUrl, ...Object.fromEntries(peers) } };
  }

  private async joinVia(joinUrl: string): Promise<ClusterIdentity> {
    const { nodeId, advertiseUrl, advertiseUrlGiven, httpPort } = this.options;
    this.logger.log(`${nodeId} has no data: asking the cluster of ${joinUrl} to add it (JOIN)`);
    let answer: AddMemberAnswer;
    try {
      // Without a URL given, the member records the caller's address with this port: advertiseUrl's (the
      // default http://localhost:<port> names the one the members reach: PEER_PORT, or HTTP_PORT without it).
      const port = Number(new URL(advertiseUrl).port) || httpPort;
      answer = await this.join(joinUrl, { nodeId, url: advertiseUrlGiven ? advertiseUrl : undefined, port, learner: true });
    } catch (error) {
      throw new ClusterBootstrapError(`cannot join the cluster of ${joinUrl} (JOIN): ${(error as Error).message}`);
    }
    const valid =
      typeof answer?.clusterId === 'string' &&
      answer.clusterId !== '' &&
      Array.isArray(answer.initialVoters) &&
      answer.initialVoters.length > 0 &&
      Array.isArray(answer.members);
    if (!valid) {
      throw new ClusterBootstrapError(`cannot join the cluster of ${joinUrl} (JOIN): its answer is not an add-member answer: ${JSON.stringify(answer).slice(0, 200)}`);
    }
    const addresses: Record<NodeId, string> = {};
    // Member URLs (peerUrl; url from a version without it): where this node reaches them. Their client URLs
    // are only where clients are sent, learned for now (the peers' streams announce them again).
    for (const member of answer.members) {
      const url = member.peerUrl ?? member.url;
      if (url) addresses[member.nodeId] = url;
      if (member.clientUrl && member.nodeId !== nodeId) this.clientUrls?.learn(member.nodeId, member.clientUrl);
    }
    const self = answer.member?.nodeId === nodeId ? (answer.member.peerUrl ?? answer.member.url) : undefined;
    addresses[nodeId] = self ?? advertiseUrl;
    const joinedAt = Number.isSafeInteger(answer.index) && answer.index > 0 ? answer.index : undefined;
    return { clusterId: answer.clusterId, nodeId, initialVoters: [...answer.initialVoters], addresses, ...(joinedAt ? { joinedAt } : {}) };
  }

  private async discover(): Promise<ClusterIdentity> {
    const { nodeId, peerUrls } = this.options;
    const retryMs = this.options.discovery?.retryMs ?? DEFAULT_RETRY_MS;
    const logEveryMs = this.options.discovery?.logEveryMs ?? DEFAULT_LOG_EVERY_MS;
    this.logger.log(`${nodeId} has no data: asking ${peerUrls.join(', ')} for their NODE_ID (PEER_URLS)`);
    const pending = new Set(peerUrls);
    /** Each peer's first answer, by the URL it answered at (this node's own entry left out). */
    const answers = new Map<string, HelloAnswer>();
    const problems = new Map<string, string>();
    let lastLog = Date.now();
    while (pending.size > 0) {
      if (this.stopped) throw new Error('stopped while discovering the cluster');
      await Promise.all(
        [...pending].map(async (url) => {
          try {
            const answer = await this.askHello(url);
            pending.delete(url);
            if (answer.instance === this.instance) this.logger.log(`${url} is this node itself: not a peer`);
            else answers.set(url, answer);
            if (answer.instance !== this.instance && typeof answer.clientUrl === 'string') this.clientUrls?.learn(answer.nodeId, answer.clientUrl);
          } catch (error) {
            problems.set(url, (error as Error).message);
          }
        }),
      );
      await this.checkDuplicates(answers);
      if (pending.size === 0) break;
      if (Date.now() - lastLog >= logEveryMs) {
        lastLog = Date.now();
        this.logger.log(`still waiting for ${[...pending].map((url) => `${url} (${problems.get(url) ?? 'no answer yet'})`).join(', ')}`);
      }
      await this.sleep(retryMs);
    }
    return this.decide(answers);
  }

  /**
   * Fails when a peer answers with this node's NODE_ID, or two entries with one NODE_ID from two processes.
   * Two entries answering from one process (one node listed under two spellings) keep the first; so that a
   * peer restarted between the two answers is not taken for two nodes, both are asked again before failing.
   */
  private async checkDuplicates(answers: Map<string, HelloAnswer>): Promise<void> {
    const { nodeId, advertiseUrl } = this.options;
    const seen = new Map<NodeId, string>();
    for (const [url, answer] of [...answers]) {
      if (answer.nodeId === nodeId) {
        // The other node may not have asked this one yet: keep answering a while (it asks every retry
        // interval), so that it sees the duplicate too, rather than wait forever for a node that has gone.
        await this.sleep(this.lingerMs());
        throw new ClusterBootstrapError(
          `duplicate NODE_ID: ${url} answers as '${nodeId}', the NODE_ID of this node (${advertiseUrl}); give every node its own NODE_ID`,
        );
      }
      const first = seen.get(answer.nodeId);
      if (first === undefined) {
        seen.set(answer.nodeId, url);
        continue;
      }
      let same = answers.get(first)!.instance === answer.instance;
      if (!same) {
        const [a, b] = await Promise.all([this.askHello(first), this.askHello(url)].map((p) => p.catch(() => undefined)));
        same = a !== undefined && b !== undefined && a.instance === b.instance;
      }
      if (!same) {
        throw new ClusterBootstrapError(
          `duplicate NODE_ID: ${first} and ${url} both answer as '${answer.nodeId}' from two processes; give every node its own NODE_ID`,
        );
      }
      this.logger.log(`${url} and ${first} are the same node (${answer.nodeId}): using ${first}`);
      answers.delete(url);
    }
  }

  /** The identity once every entry has answered (see the class comment). */
  private decide(answers: Map<string, HelloAnswer>): ClusterIdentity {
    const { nodeId, advertiseUrl } = this.options;
    const peers: Array<[NodeId, string]> = [...answers].map(([url, answer]) => [answer.nodeId, url]);
    const formed = [...answers].filter(([, answer]) => answer.clusterId !== null);
    if (formed.length === 0) return this.formCluster(peers);
    const clusters = new Set(formed.map(([, answer]) => answer.clusterId));
    if (clusters.size > 1) {
      throw new ClusterBootstrapError(
        `PEER_URLS names members of different clusters: ${formed.map(([url, a]) => `${url} (${a.nodeId}, cluster ${a.clusterId})`).join(', ')}`,
      );
    }
    const [url, answer] = formed[0];
    const initialVoters = answer.initialVoters ?? [];
    if (!initialVoters.includes(nodeId)) {
      throw new ClusterBootstrapError(
        `this node has no data and ${url} (${answer.nodeId}) belongs to an existing cluster ${answer.clusterId} ` +
          `(initial voters ${initialVoters.join(', ')}); add it with JOIN=${url} and no PEER_URLS`,
      );
    }
    this.logger.log(`${url} (${answer.nodeId}) has formed cluster ${answer.clusterId} with this node among its initial voters: joining it`);
    return { clusterId: answer.clusterId!, nodeId, initialVoters: [...initialVoters], addresses: { [nodeId]: advertiseUrl, ...Object.fromEntries(peers) } };
  }

  private lingerMs(): number {
    const d = this.options.discovery;
    return 2 * (d?.retryMs ?? DEFAULT_RETRY_MS) + (d?.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  }

  /** `GET <url>/raft/hello`; rejects with a short reason (for the waiting log line) when there is no valid answer. */
  private async askHello(url: string): Promise<HelloAnswer> {
    const timeoutMs = this.options.discovery?.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const headers: Record<string, string> = { [PEER_HEADERS.from]: this.options.nodeId, [PEER_HEADERS.instance]: this.instance };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let answer;
    try {
      answer = await firstValueFrom(
        this.http
          .get<unknown>(`${url}${PEER_HELLO_PATH}`, { headers, timeout: timeoutMs, maxRedirects: 0, responseType: 'json', validateStatus: () => true })
          .pipe(timeout({ first: timeoutMs })),
      );
    } catch (error) {
      if (error instanceof TimeoutError) throw new Error(`no answer within ${timeoutMs} ms`);
      const e = error as { code?: string; message?: string };
      throw new Error(e.code ?? e.message ?? String(error));
    }
    if (answer.status === 401) throw new Error('it refused our CLUSTER_TOKEN (401): set the same CLUSTER_TOKEN on every node');
    if (answer.status !== 200) throw new Error(`it answered HTTP ${answer.status}`);
    const hello = answer.data as Partial<HelloAnswer> | null;
    const isId = (v: unknown) => typeof v === 'string' && v !== '';
    const valid =
      typeof hello === 'object' &&
      hello !== null &&
      isId(hello.nodeId) &&
      isId(hello.instance) &&
      (hello.clusterId === null || isId(hello.clusterId)) &&
      (hello.clusterId === null ? hello.initialVoters === null : Array.isArray(hello.initialVoters) && hello.initialVoters.every(isId));
    if (!valid) throw new Error('its answer is not a hello (is it a raft-kv node of this version?)');
    return hello as HelloAnswer;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { NodeId } from '@app/consensus/core';
import type { ClientUrlSource } from '@app/consensus/identity';
import { CLUSTER_RPC_OPTIONS, ClusterRpcOptions } from './cluster-rpc.options';

/**
 * Where clients reach each member, for a cluster whose members serve peers on a PEER_PORT (docs/cluster-rpc.md,
 * "Peer port"). A member's URL (its identity record, ConfChange context, the transport's target) is then its
 * peer URL; the client URL, which redirects need, travels with the peer traffic instead: every stream and
 * snapshot request carries the sender's in PEER_HEADERS.clientUrl, and `GET /raft/hello` answers with it.
 * Learned at run time, never persisted: nothing recorded changes format, and a member that moves its client
 * port announces the new one with its next stream.
 *
 * Without PEER_PORT nothing is announced (own stays undefined): a member's URL serves clients too.
 */
@Injectable()
export class ClientUrls implements ClientUrlSource {
  private ownUrl?: string;
  private readonly known = new Map<NodeId, string>();
  private readonly listeners: Array<(nodeId: NodeId, clientUrl: string) => void> = [];

  constructor(@Inject(CLUSTER_RPC_OPTIONS) private readonly options: Pick<ClusterRpcOptions, 'nodeId' | 'advertiseUrl' | 'clientUrl'>) {
    if (options.clientUrl !== undefined) this.setOwn(options.clientUrl);
  }

  /** This node's client URL, announced to its peers; undefined when it serves clients and peers on one port. */
  get own(): string | undefined {
    return this.ownUrl;
  }

  /**
   * Sets the client URL this node announces (before the Raft node starts: the streams' headers are built once).
   * A URL equal to the member URL is not announced (one port serves both). Throws on a URL that is not an
   * http(s) base URL.
   */
  setOwn(url: string): void {
    const normalized = clientBaseUrl(url);
    if (normalized === undefined) throw new Error(`not an http(s) base URL: ${url}`);
    if (normalized === this.options.advertiseUrl || normalized === this.ownUrl) return;
    this.ownUrl = normalized;
    this.learn(this.options.nodeId, normalized);
  }

  /**
   * Records what a peer announced (a header or a hello answer): ignored unless it is an http(s) base URL.
   * Listeners hear of every announcement, a repeated one included (a member removed and added back is
   * forgotten by the node's directory, and announces the same URL again when its streams reopen).
   */
  learn(nodeId: NodeId, raw: string | undefined): void {
    if (raw === undefined || nodeId === '') return;
    const url = clientBaseUrl(raw);
    if (url === undefined) return;
    this.known.set(nodeId, url);
    for (const listener of this.listeners) listener(nodeId, url);
  }

  get(nodeId: NodeId): string | undefined {
    return this.known.get(nodeId);
  }

  /** ClientUrlSource: the callback hears every URL known so far, then each announcement. */
  onClientUrl(callback: (nodeId: NodeId, clientUrl: string) => void): void {
    this.listeners.push(callback);
    for (const [id, url] of this.known) callback(id, url);
  }
}

/** `scheme://host[:port]` of an http(s) URL without path, query or credentials; undefined otherwise. */
export function clientBaseUrl(raw: string): string | undefined {
  if (raw.length > 2048) return undefined;
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) return undefined;
  return `${url.protocol}//${url.host}`;
}

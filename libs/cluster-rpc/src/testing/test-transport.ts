import { NodeId } from '@app/consensus/core';
import { SnapshotFiles } from '@app/consensus/ports';
import { Registry } from 'prom-client';
import { ClientUrls } from '../client-urls';
import { ClusterRpcMetrics } from '../cluster-rpc.metrics';
import { ClusterRpcOptions } from '../cluster-rpc.options';
import { ClusterIdentitySource, HttpPeerTransport } from '../http-peer-transport';
import { PeerAdmission } from '../peer-admission';

/** A cluster identity already resolved, as the transport reads it (tests only). */
export function resolvedIdentity(nodeId: NodeId, clusterId = 'c1'): ClusterIdentitySource & { identity: NonNullable<ClusterIdentitySource['identity']> } {
  return { identity: { clusterId, nodeId, initialVoters: [nodeId], addresses: {} } };
}

export interface TestTransportOptions extends Omit<Partial<ClusterRpcOptions>, 'admission'> {
  nodeId: NodeId;
  /** The peers set at once (NODE_ID → URL). */
  peers?: Record<NodeId, string>;
  /** The cluster id the transport belongs to (default `c1`); null: not resolved yet. */
  clusterId?: string | null;
  metrics?: ClusterRpcMetrics;
  files?: SnapshotFiles;
  /** The address check the transport keeps up to date (setPeers). */
  peerAdmission?: PeerAdmission;
  /** The members' client URLs (PEER_PORT). */
  clientUrls?: ClientUrls;
}

/**
 * An HttpPeerTransport for the transport's tests: its cluster identity resolved (cluster `c1` unless told),
 * its peers set (setPeers) to `peers`. Not exported by the library.
 */
export function testTransport(o: TestTransportOptions): HttpPeerTransport {
  const { peers, clusterId, metrics, files, peerAdmission, clientUrls, ...options } = o;
  const identity = clusterId === null ? { identity: undefined } : resolvedIdentity(o.nodeId, clusterId);
  const transport = new HttpPeerTransport(
    { advertiseUrl: 'http://self.invalid', httpPort: 0, peerUrls: [], stallTimeoutMs: 1000, ...options },
    metrics ?? new ClusterRpcMetrics(new Registry()),
    identity,
    files,
    peerAdmission,
    clientUrls,
  );
  if (peers) transport.setPeers(new Map(Object.entries(peers)));
  return transport;
}

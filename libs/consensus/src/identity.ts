import { createHash } from 'node:crypto';
import { NodeId } from './core/types';
import { IdentityMismatchError } from './errors';
import { ClusterIdentity } from './membership';
import { RaftStorage } from './ports';

/**
 * The identity record of a data directory (RaftStorage.meta): which node and which cluster the directory
 * belongs to, written once when the node first joins or forms its cluster and checked at every start.
 *
 * This file is also the entry through which the transport library (libs/cluster-rpc, which finds the
 * identity at first start) reaches the membership vocabulary: it re-exports what an adapter needs.
 */
export { IdentityMismatchError } from './errors';
export { CLUSTER_BOOTSTRAP } from './membership';
export type { AddMemberAnswer, AddMemberRequest, ClientUrlSource, ClusterBootstrap, ClusterIdentity, MemberInfo } from './membership';

/** The format of the record written since members are known by NODE_ID (format 1 had no `format` field). */
export const IDENTITY_META_FORMAT = 2;

/** The record, as written (one JSON object in the data directory's meta file). */
export type IdentityMeta = {
  format: typeof IDENTITY_META_FORMAT;
  /** NODE_ID of the node the directory belongs to. */
  nodeId: NodeId;
  clusterId: string;
  /** The voters the cluster bootstrapped with (ClusterIdentity.initialVoters). */
  initialVoters: NodeId[];
  /** Where each member was reached when the record was written (this node's own URL included). */
  addresses: Record<NodeId, string>;
  /** Set when this node was removed from the cluster: the directory must not be started again. */
  removed?: true;
  /** ClusterIdentity.joinedAt: the index of the entry that added a node that joined. */
  joinedAt?: number;
};

type MetaStore = Pick<RaftStorage, 'meta' | 'setMeta'>;

/**
 * The id of a cluster formed by discovery: the first 16 hex digits of a SHA-256 over the sorted NODE_IDs of
 * its initial voters (one per line), followed, when CLUSTER_TOKEN is set, by a NUL separator and the token.
 * Every node of a new cluster computes it alone and gets the same value; clusters with other members or
 * another token get another one. (Two clusters of the same NODE_IDs without a token share it: they are still
 * kept apart by the members' addresses and the peer address check.)
 */
export function clusterIdFor(initialVoters: readonly NodeId[], token?: string): string {
  const hash = createHash('sha256').update([...initialVoters].sort().join('\n'));
  if (token) hash.update('\u0000').update(token);
  return hash.digest('hex').slice(0, 16);
}

/** The record of an identity, ready for setMeta(). */
export function identityMeta(identity: ClusterIdentity): IdentityMeta {
  return {
    format: IDENTITY_META_FORMAT,
    nodeId: identity.nodeId,
    clusterId: identity.clusterId,
    initialVoters: [...identity.initialVoters],
    addresses: { ...identity.addresses },
    ...(identity.joinedAt !== undefined ? { joinedAt: identity.joinedAt } : {}),
  };
}

/** Writes the identity durably (first start only: a recorded identity is never replaced by another). */
export async function recordIdentity(storage: MetaStore, identity: ClusterIdentity): Promise<void> {
  await storage.setMeta(identityMeta(identity));
}

/**
 * Marks the directory's node as removed from its cluster, so that a later start with this directory refuses
 * (readIdentity). For the node layer, when it applies its own removal.
 */
export async function recordRemoved(storage: MetaStore): Promise<void> {
  const meta = storage.meta;
  if (!meta) throw new Error('cannot mark a data directory removed: it has no identity record');
  await storage.setMeta({ ...meta, removed: true });
}

/**
 * The identity recorded in a data directory, for the node `nodeId` reached at `advertiseUrl`. Its addresses
 * are the recorded ones, this node's own entry replaced by `advertiseUrl` (it may have moved).
 *
 * Throws IdentityMismatchError, with one line saying what to do, when the directory cannot be used by this
 * node: written by the URL-identity version (format 1), by an unknown format, damaged, belonging to another
 * node, or of a node removed from its cluster.
 */
export function readIdentity(meta: Record<string, unknown>, nodeId: NodeId, advertiseUrl: string): ClusterIdentity {
  if (meta.format === undefined) {
    throw new IdentityMismatchError(
      'the data directory (WAL_DIR) was written by an earlier version that identified members by their URL; this ' +
        'version identifies them by NODE_ID and cannot start on it. To upgrade: take a backup from the running old ' +
        'cluster with `kvctl snapshot save FILE`, then `kvctl snapshot restore FILE --wal-dir NEW_DIR --node-id ID` ' +
        'into a new directory for each node, and start this version on the new directories',
    );
  }
  if (meta.format !== IDENTITY_META_FORMAT) {
    throw new IdentityMismatchError(
      `the data directory (WAL_DIR) has an identity record of format ${JSON.stringify(meta.format)}, which this version ` +
        `does not know (it writes format ${IDENTITY_META_FORMAT}); start the version that wrote it`,
    );
  }
  const damaged = recordProblem(meta);
  if (damaged) {
    throw new IdentityMismatchError(
      `the identity record of the data directory (WAL_DIR) is damaged (${damaged}); ` +
        "restore the node's directory from a backup, or replace the member (start it with an empty WAL_DIR and JOIN)",
    );
  }
  const record = meta as unknown as IdentityMeta;
  if (record.nodeId !== nodeId) {
    throw new IdentityMismatchError(
      `the data directory belongs to node '${record.nodeId}' (cluster ${record.clusterId}), this process is '${nodeId}'; ` +
        "point WAL_DIR at this node's own directory, or fix NODE_ID",
    );
  }
  if (record.removed === true) {
    throw new IdentityMismatchError(
      `this node was removed from the cluster; start it with an empty WAL_DIR and JOIN to add it back (node '${nodeId}', cluster ${record.clusterId})`,
    );
  }
  return {
    clusterId: record.clusterId,
    nodeId,
    initialVoters: [...record.initialVoters],
    addresses: { ...record.addresses, [nodeId]: advertiseUrl },
    ...(record.joinedAt !== undefined ? { joinedAt: record.joinedAt } : {}),
  };
}

/** What is wrong with a format-2 record's fields, or undefined when they are well-formed. */
function recordProblem(meta: Record<string, unknown>): string | undefined {
  const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
  if (!isId(meta.nodeId)) return 'no nodeId';
  if (!isId(meta.clusterId)) return 'no clusterId';
  if (!Array.isArray(meta.initialVoters) || meta.initialVoters.length === 0 || !meta.initialVoters.every(isId)) {
    return 'initialVoters is not a list of NODE_IDs';
  }
  const addresses = meta.addresses;
  if (typeof addresses !== 'object' || addresses === null || Array.isArray(addresses)) return 'no addresses';
  if (!Object.values(addresses).every(isId)) return 'an address is not a URL';
  if (meta.removed !== undefined && meta.removed !== true) return 'removed is not true';
  if (meta.joinedAt !== undefined && !(Number.isSafeInteger(meta.joinedAt) && (meta.joinedAt as number) > 0)) return 'joinedAt is not an index';
  return undefined;
}

import { NodeId } from './core/types';
import { IdentityMismatchError } from './errors';
import { RaftStorage } from './ports';

/** Who this node is, as recorded in its data directory at first start. */
export interface NodeIdentity {
  /** The member's identity in the Raft group: its advertised URL. */
  id: NodeId;
  /** NODE_ID. */
  name: string;
  /** Every voter's identity, this node's included. */
  members: NodeId[];
  /** Fingerprint of the member set. */
  clusterId: string;
}

/**
 * Records the identity in a fresh data directory, or checks it against the one recorded. Rejects with
 * IdentityMismatchError, naming every difference and what to fix, when the directory belongs to another
 * node or another cluster: starting anyway could make this node vote or acknowledge with a log that is not
 * its own.
 */
export async function checkIdentity(storage: Pick<RaftStorage, 'meta' | 'setMeta'>, identity: NodeIdentity): Promise<void> {
  const { id, name, clusterId, members } = identity;
  const meta = storage.meta;
  if (!meta) {
    await storage.setMeta({ nodeId: name, url: id, clusterId, members });
    return;
  }
  const problems: string[] = [];
  if (meta.nodeId !== name) problems.push(`it belongs to node '${String(meta.nodeId)}', this process is '${name}'`);
  if (meta.url !== id) problems.push(`it was created for URL ${String(meta.url)}, this node advertises ${id}`);
  if (meta.clusterId !== clusterId) {
    const recorded = Array.isArray(meta.members) ? meta.members.join(', ') : String(meta.members);
    problems.push(`it belongs to a cluster of [${recorded}], this node is configured for [${members.join(', ')}]`);
  }
  if (problems.length > 0) {
    throw new IdentityMismatchError(
      `the data directory does not match this node's configuration: ${problems.join('; ')}. ` +
        `Fix NODE_ID / ADVERTISE_URL / PEER_URLS, or point WAL_DIR at this node's own directory`,
    );
  }
}

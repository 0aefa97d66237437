import { Status } from './core/raw-node';
import { Storage } from './core/storage';
import { NodeId, None, StateType } from './core/types';
import { StorageFullStatus } from './storage-freeze';

/** What GET /status reports about one peer (leader only). */
export interface PeerStatus {
  id: NodeId;
  /** The same as id (a member is its NODE_ID); kept for the API's compatibility. */
  name?: string;
  match: number;
  next: number;
  state: string;
  /** Milliseconds since this node last received a message from the peer (undefined: never). */
  lastContactMs?: number;
}

export interface NodeStatus {
  id: NodeId;
  name: string;
  state: StateType;
  term: number;
  lead: NodeId;
  leaderName?: string;
  commit: number;
  applied: number;
  lastIndex: number;
  /** Index of the last entry covered by the newest snapshot (0: none yet). */
  snapshotIndex: number;
  /** Index of the first entry still in the log (entries before it were compacted into snapshots). */
  firstLogIndex: number;
  peers: PeerStatus[];
  /** Set while the disk refuses writes: the node is frozen (writes refused, stale reads served). */
  storageFull?: StorageFullStatus;
}

/** What the status view needs besides the core's Status. */
export interface StatusSources {
  name: string;
  applied: number;
  /** The durable log, for its first index and newest snapshot. */
  storage: Pick<Storage, 'firstIndex' | 'snapshot'>;
  leaderName?: string;
  now: number;
  /** When each peer was last heard from (clock milliseconds). */
  lastContact: ReadonlyMap<NodeId, number>;
  /** The freeze for a full disk, if any. */
  storageFull?: StorageFullStatus;
}

/** The node's status as GET /status shows it: the core's view, named, with per-peer contact ages. */
export function describeStatus(s: Status, src: StatusSources): NodeStatus {
  const peers: PeerStatus[] = [];
  for (const [id, p] of Object.entries(s.progress)) {
    if (id === s.id) continue;
    const contact = src.lastContact.get(id);
    peers.push({
      id,
      name: id,
      match: p.match,
      next: p.next,
      state: p.state,
      lastContactMs: contact === undefined ? undefined : src.now - contact,
    });
  }
  return {
    id: s.id,
    name: src.name,
    state: s.raftState,
    term: s.term,
    lead: s.lead,
    leaderName: src.leaderName,
    commit: s.commit,
    applied: src.applied,
    lastIndex: s.lastIndex,
    snapshotIndex: src.storage.snapshot().metadata.index,
    firstLogIndex: src.storage.firstIndex(),
    peers,
    ...(src.storageFull ? { storageFull: src.storageFull } : {}),
  };
}

/** The core's status of a node not started yet (production finds its cluster first): only the durable log is known. */
export function notStartedStatus(id: NodeId, log: Pick<Storage, 'initialState' | 'lastIndex'>): Status {
  const { hardState } = log.initialState();
  return { id, ...hardState, lead: None, raftState: StateType.Follower, applied: 0, lastIndex: log.lastIndex(), leadTransferee: None, progress: {} };
}

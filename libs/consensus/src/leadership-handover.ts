import { Status } from './core/raw-node';
import { NodeId } from './core/types';

/**
 * The peer a stopping leader hands leadership to: the most caught-up follower (highest match) among those
 * heard from within the last election timeout. Undefined when none qualifies: a peer that has not answered
 * for that long cannot take over (every peer gone, as when the whole cluster stops), and waiting for a
 * transfer that cannot happen only delays the shutdown.
 */
export function pickTransferee(
  status: Status,
  lastContact: ReadonlyMap<NodeId, number>,
  now: number,
  electionTimeoutMs: number,
): NodeId | undefined {
  let best: NodeId | undefined;
  let bestMatch = -1;
  for (const [peer, p] of Object.entries(status.progress)) {
    if (peer === status.id) continue;
    if (now - (lastContact.get(peer) ?? -Infinity) >= electionTimeoutMs) continue;
    if (p.match > bestMatch) {
      best = peer;
      bestMatch = p.match;
    }
  }
  return best;
}

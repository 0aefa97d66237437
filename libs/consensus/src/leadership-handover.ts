import { Status } from './core/raw-node';
import { NodeId } from './core/types';
import { Clock, NodeLogger } from './ports';

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
    if (peer === status.id || p.isLearner) continue;
    if (now - (lastContact.get(peer) ?? -Infinity) >= electionTimeoutMs) continue;
    if (p.match > bestMatch) {
      best = peer;
      bestMatch = p.match;
    }
  }
  return best;
}

/** What handOver() needs from the stopping node. */
export interface HandOverContext {
  name: string;
  status(): Status;
  lastContact: ReadonlyMap<NodeId, number>;
  clock: Clock;
  electionTimeoutMs: number;
  logger: NodeLogger;
  /** Asks the core to transfer leadership to `to`, and runs the loop. */
  transfer(to: NodeId): void;
  /** Whether the node still leads (and runs). */
  leading(): boolean;
}

/**
 * A stopping leader hands leadership to the best transferee (pickTransferee), waiting at most two election
 * timeouts for it to take over. Resolves at once when no peer qualifies.
 */
export async function handOver(ctx: HandOverContext): Promise<void> {
  const { clock, electionTimeoutMs } = ctx;
  const target = pickTransferee(ctx.status(), ctx.lastContact, clock.now(), electionTimeoutMs);
  if (!target) {
    ctx.logger.log(`${ctx.name} stopping as leader: no peer is reachable to take over`);
    return;
  }
  ctx.logger.log(`${ctx.name} transferring leadership to ${target}`);
  ctx.transfer(target);
  const deadline = clock.now() + 2 * electionTimeoutMs;
  while (ctx.leading() && clock.now() < deadline) {
    await new Promise<void>((resolve) => clock.after(20, resolve));
  }
}

import { NodeId, None, SoftState, StateType } from './core/types';
import { NoLeaderError, NotLeaderError } from './errors';
import { Clock, NodeLogger, NodeMetrics } from './ports';

/** What the LeaderWatch works with. */
export interface LeaderWatchDeps {
  /** This node's identity, and its name (for log lines, and as the leader's name when it leads). */
  id: NodeId;
  name: string;
  /** Where a member is reached (undefined when not known). */
  url(id: NodeId): string | undefined;
  clock: Clock;
  logger: NodeLogger;
  metrics: NodeMetrics;
}

/**
 * The node's view of leadership (the core's soft state): who leads and where it is reached, in which role
 * this node is, the log lines and metrics of each change, the callers waiting for a leader to be known, and
 * the errors that send a client to the leader.
 */
export class LeaderWatch {
  soft: SoftState = { lead: None, raftState: StateType.Follower };
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly deps: LeaderWatchDeps) {}

  /** Takes the core's new soft state (in `term`); returns the previous one. */
  update(soft: SoftState, term: number): SoftState {
    const { name, logger, metrics } = this.deps;
    const previous = this.soft;
    this.soft = soft;
    if (soft.lead !== previous.lead) {
      metrics.leaderChanged();
      logger.log(`${name} term ${term}: leader is ${soft.lead === None ? 'none' : soft.lead}`);
      if (soft.lead !== None) for (const wake of this.waiters.splice(0)) wake();
    }
    if (soft.raftState !== previous.raftState) {
      if (soft.raftState === StateType.Candidate) metrics.electionStarted();
      logger.log(`${name} term ${term}: ${previous.raftState} -> ${soft.raftState}`);
    }
    return previous;
  }

  get lead(): NodeId {
    return this.soft.lead;
  }

  get isLeader(): boolean {
    return this.soft.raftState === StateType.Leader;
  }

  /** The known leader's identity (None when unknown), name and URL. */
  leader(): { lead: NodeId; name?: string; url?: string } {
    const { lead } = this.soft;
    if (lead === None) return { lead };
    return { lead, name: lead === this.deps.id ? this.deps.name : lead, url: this.deps.url(lead) };
  }

  /** Throws NotLeaderError (where the leader is) or NoLeaderError unless this node leads. */
  assertLeader(): void {
    if (!this.isLeader) throw this.leaderErrorOr(new NoLeaderError());
  }

  /** `fallback` on the leader; elsewhere the error that says where the leader is (or that none is known). */
  leaderErrorOr(fallback: Error): Error {
    const { lead, name, url } = this.leader();
    if (this.isLeader) return fallback;
    // A leader with no known address (one just removed, still named until the next election) is no redirect.
    return lead === None || !url ? new NoLeaderError() : new NotLeaderError(name ?? lead, url);
  }

  /** Resolves when a leader is known (true) or after timeoutMs (whether one is known then). */
  waitForLeader(timeoutMs: number): Promise<boolean> {
    if (this.soft.lead !== None) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = this.deps.clock.after(timeoutMs, () => resolve(this.soft.lead !== None));
      this.waiters.push(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }
}

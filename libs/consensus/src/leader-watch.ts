import { NodeId, None, SoftState, StateType } from './core/types';
import { Clock, NodeLogger, NodeMetrics } from './ports';

/** What the LeaderWatch works with. */
export interface LeaderWatchDeps {
  /** This node's name, for log lines. */
  name: string;
  clock: Clock;
  logger: NodeLogger;
  metrics: NodeMetrics;
}

/**
 * The node's view of leadership (the core's soft state): who leads, in which role this node is, the log
 * lines and metrics of each change, and the callers waiting for a leader to be known.
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

import { Progress } from './progress';
import { MajorityConfig, QuorumConfig, VoteResult } from './quorum';
import { NodeId } from './types';

/**
 * The configuration plus the leader's Progress for every member and the votes of the current election.
 * Membership changes (later work) replace `config` (e.g. by a joint configuration) and add learners.
 */
export class ProgressTracker {
  config: QuorumConfig;
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  constructor(voters: readonly NodeId[], private readonly maxInflight: number) {
    this.config = new MajorityConfig(voters);
  }

  get voters(): readonly NodeId[] {
    return this.config.voters;
  }

  isVoter(id: NodeId): boolean {
    return this.progress.has(id);
  }

  /**
   * Takes the configuration of a snapshot (InstallSnapshot on a follower): the voters are replaced, every
   * Progress is re-created at `next` and the votes are dropped.
   */
  restore(voters: readonly NodeId[], next: number): void {
    this.config = new MajorityConfig(voters);
    this.resetVotes();
    this.resetProgress(next);
  }

  /** Re-creates every Progress (on a term change): followers start in Probe at `next`. */
  resetProgress(next: number): void {
    this.progress.clear();
    for (const id of this.config.voters) this.progress.set(id, new Progress(0, next, this.maxInflight));
  }

  /** The largest index replicated (durably) on a quorum of voters. */
  committed(): number {
    return this.config.committedIndex((id) => this.progress.get(id)?.match ?? 0);
  }

  /** Whether a quorum of voters (this node counts as active) was heard from since the last check. */
  quorumActive(self: NodeId): boolean {
    const active = new Set<NodeId>();
    for (const [id, pr] of this.progress) if (id === self || pr.recentActive) active.add(id);
    return this.config.voteResult(active) === VoteResult.VoteWon;
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a vote; only the first one from each node counts. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** The outcome of the election so far. */
  voteResult(): VoteResult {
    return this.config.voteResult(this.votes);
  }
}

import { Membership } from './confchange';
import { Progress } from './progress';
import { MajorityConfig, QuorumConfig, VoteResult } from './quorum';
import { ConfState, NodeId } from './types';

/**
 * The configuration plus a Progress for every member and the votes of the current election.
 *
 * `config` is the quorum arithmetic over the voters. Learners (etcd's non-voting members) have a Progress
 * like voters (the leader replicates to them through probe, replicate and snapshot) but appear nowhere in
 * `config`: they never count toward a commit, an election, a ReadIndex round or check-quorum.
 */
export class ProgressTracker {
  config: QuorumConfig;
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  private learnerIds: NodeId[];

  constructor(voters: readonly NodeId[], learners: readonly NodeId[], private readonly maxInflight: number) {
    this.config = new MajorityConfig(voters);
    this.learnerIds = [...new Set(learners)];
  }

  get voters(): readonly NodeId[] {
    return this.config.voters;
  }

  get learners(): readonly NodeId[] {
    return this.learnerIds;
  }

  isVoter(id: NodeId): boolean {
    return this.config.voters.includes(id);
  }

  isLearner(id: NodeId): boolean {
    return this.learnerIds.includes(id);
  }

  /** A voter or a learner. */
  isMember(id: NodeId): boolean {
    return this.isVoter(id) || this.isLearner(id);
  }

  /** No voters and no learners: a node that has yet to learn its cluster's configuration. */
  isEmpty(): boolean {
    return this.config.voters.length === 0 && this.learnerIds.length === 0;
  }

  /**
   * Takes the configuration of a snapshot (InstallSnapshot on a follower): the members are replaced, every
   * Progress is re-created at `next` and the votes are dropped.
   */
  restore(cs: ConfState, next: number): void {
    this.config = new MajorityConfig(cs.voters);
    this.learnerIds = [...new Set(cs.learners ?? [])].filter((id) => !this.config.voters.includes(id));
    this.resetVotes();
    this.resetProgress(next);
  }

  /**
   * Switches to the configuration `m` (a ConfChange was applied). Members that stay keep their Progress;
   * new members get one in Probe at `next`, marked recently active so that check-quorum does not count
   * them as silent before they had a chance to answer; removed members lose theirs. Returns the new ones.
   */
  switchTo(m: Membership, next: number): NodeId[] {
    this.config = new MajorityConfig(m.voters);
    this.learnerIds = [...m.learners];
    const added: NodeId[] = [];
    for (const id of this.progress.keys()) if (!this.isMember(id)) this.progress.delete(id);
    for (const id of [...m.voters, ...m.learners]) {
      if (this.progress.has(id)) continue;
      const pr = new Progress(0, next, this.maxInflight);
      pr.recentActive = true;
      this.progress.set(id, pr);
      added.push(id);
    }
    return added;
  }

  /** Re-creates every Progress (on a term change): followers start in Probe at `next`. */
  resetProgress(next: number): void {
    this.progress.clear();
    for (const id of [...this.config.voters, ...this.learnerIds]) this.progress.set(id, new Progress(0, next, this.maxInflight));
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

  /** The outcome of the election so far; votes of learners and of non-members are recorded but never count. */
  voteResult(): VoteResult {
    return this.config.voteResult(this.votes);
  }
}

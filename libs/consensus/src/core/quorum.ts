import { NodeId } from './types';

export enum VoteResult {
  /** Neither a quorum of yes nor enough no votes to rule it out: wait for more votes. */
  VotePending = 'VotePending',
  VoteLost = 'VoteLost',
  VoteWon = 'VoteWon',
}

/**
 * Quorum arithmetic over one configuration. Today a simple majority of the voters; a joint configuration
 * (joint consensus, later work) implements the same interface over two majorities.
 */
export interface QuorumConfig {
  readonly voters: readonly NodeId[];
  /** The largest index acknowledged by a quorum, given each voter's acknowledged index (0 if unknown). */
  committedIndex(acked: (id: NodeId) => number): number;
  /** Outcome of an election (or of a ReadIndex heartbeat round) from the votes received so far. */
  voteResult(votes: ReadonlyMap<NodeId, boolean> | ReadonlySet<NodeId>): VoteResult;
}

export class MajorityConfig implements QuorumConfig {
  readonly voters: readonly NodeId[];
  private readonly scratch: number[];

  constructor(voters: readonly NodeId[]) {
    this.voters = [...new Set(voters)];
    this.scratch = new Array<number>(this.voters.length).fill(0);
  }

  quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  committedIndex(acked: (id: NodeId) => number): number {
    const n = this.voters.length;
    if (n === 0) return Infinity; // the empty configuration commits everything (a joint config's unused half)
    const s = this.scratch;
    for (let i = 0; i < n; i++) s[i] = acked(this.voters[i]);
    // Insertion sort, descending: n is the number of voters (3, 5, 7), allocation-free on the hot path.
    for (let i = 1; i < n; i++) {
      const v = s[i];
      let j = i - 1;
      while (j >= 0 && s[j] < v) {
        s[j + 1] = s[j];
        j--;
      }
      s[j + 1] = v;
    }
    return s[this.quorum() - 1];
  }

  voteResult(votes: ReadonlyMap<NodeId, boolean> | ReadonlySet<NodeId>): VoteResult {
    const n = this.voters.length;
    if (n === 0) return VoteResult.VoteWon;
    let yes = 0;
    let missing = 0;
    for (const id of this.voters) {
      let v: boolean | undefined;
      if (votes instanceof Map) v = votes.get(id);
      else v = (votes as ReadonlySet<NodeId>).has(id) ? true : undefined;
      if (v === undefined) missing++;
      else if (v) yes++;
    }
    const q = this.quorum();
    if (yes >= q) return VoteResult.VoteWon;
    if (yes + missing >= q) return VoteResult.VotePending;
    return VoteResult.VoteLost;
  }
}

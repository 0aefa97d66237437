import { Inflights } from './inflights';

/**
 * How the leader replicates to one follower:
 * - Probe: the follower's log position is unknown; send at most one MsgApp per heartbeat interval and
 *   wait for the answer (after election, after a rejection, when the follower is unreachable).
 * - Replicate: the follower is known to match; stream MsgApps optimistically, up to the inflight window.
 * - Snapshot: the follower's next entry was compacted and a snapshot (MsgSnap) is on its way; nothing else
 *   is sent meanwhile. Left for Probe when the transport reports the outcome (RawNode.reportSnapshot) or
 *   when the follower's MsgAppResp shows it can again be caught up from the log.
 */
export type ProgressState = 'Probe' | 'Replicate' | 'Snapshot';

/** The leader's view of one follower (Raft paper: matchIndex and nextIndex, plus flow control). */
export class Progress {
  /** Highest index known to be replicated (and durable) on the follower. */
  match: number;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = 'Probe';
  /**
   * Index of the snapshot in flight, in Snapshot state. 0 after a failed transfer: the next probe then
   * starts from match + 1 rather than from a snapshot the follower never got.
   */
  pendingSnapshot = 0;
  /** The follower answered since the last check-quorum round. */
  recentActive = false;
  /** In Probe state: a MsgApp was sent and is not answered yet. */
  msgAppFlowPaused = false;
  /** Highest commit index sent to the follower (MsgApp or heartbeat); avoids redundant commit-only MsgApps. */
  sentCommit = 0;
  /**
   * Heartbeat responses received, in Replicate state with MsgApps in flight, since the last MsgAppResp.
   * The follower is alive but our MsgApps get no answer: they were probably lost.
   */
  stalledHeartbeats = 0;
  /**
   * The follower refused entries from index 1 on because it has no configuration (a node joining with empty
   * peers): the bootstrap configuration is not in the log, so only a snapshot can bring it in. The leader
   * sends snapshots, never entries, until it has sent one.
   */
  needsSnapshot = false;
  readonly inflights: Inflights;

  constructor(match: number, next: number, maxInflight: number) {
    this.match = match;
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.stalledHeartbeats = 0;
    this.pendingSnapshot = 0;
    this.needsSnapshot = false;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'Snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('Probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('Probe');
      this.next = this.match + 1;
    }
    if (this.sentCommit > this.next - 1) this.sentCommit = this.next - 1;
  }

  becomeReplicate(): void {
    this.resetState('Replicate');
    this.next = this.match + 1;
  }

  /** A snapshot at `snapshotIndex` was sent: once installed, the follower needs the entries after it. */
  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('Snapshot');
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /** Flow-control bookkeeping after a MsgApp carrying `count` entries ending at `lastIndex` was sent. */
  sentEntries(count: number, lastIndex: number): void {
    if (this.state === 'Replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'Probe') {
      this.msgAppFlowPaused = true;
    } else {
      throw new Error(`sending append in unhandled state ${this.state}`);
    }
  }

  recordSentCommit(commit: number): void {
    if (commit > this.sentCommit) this.sentCommit = commit;
  }

  /**
   * Whether a commit-only MsgApp could advance the follower's commit: we have a newer commit index than
   * we sent, and the follower may hold entries above what we sent.
   */
  canBumpCommit(commit: number): boolean {
    return commit > this.sentCommit && this.sentCommit < this.next - 1;
  }

  /** The follower acknowledged entries up to n. Returns false if that is old news. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    if (this.next < n + 1) this.next = n + 1;
    return updated;
  }

  /**
   * The follower rejected the MsgApp whose previous entry was `rejected`; `matchHint` is the highest
   * index it might match (from the fast-backtracking hint). Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'Replicate') {
      // A rejection at or below match is stale: match is known to be correct.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      if (this.sentCommit > this.next - 1) this.sentCommit = this.next - 1;
      return true;
    }
    // In Probe state only the rejection of the probe in flight (at next - 1) is meaningful.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    if (this.sentCommit > this.next - 1) this.sentCommit = this.next - 1;
    return true;
  }

  /** No MsgApp may be sent now (a probe is unanswered, the window is full, or a snapshot is in flight). */
  isPaused(): boolean {
    switch (this.state) {
      case 'Probe':
        return this.msgAppFlowPaused;
      case 'Replicate':
        return this.inflights.full();
      default:
        return true;
    }
  }
}

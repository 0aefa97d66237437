import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { MessageType, StateType } from './core/types';
import { NodeMetrics, ProposalOutcome } from './ports';

/** What the metrics read from the node at scrape time (nothing is computed on the hot path). */
export interface RaftMetricsSnapshot {
  term: number;
  state: StateType;
  commit: number;
  applied: number;
  lastIndex: number;
  snapshotIndex: number;
  firstIndex: number;
  /** Size of the newest snapshot file (undefined: none, or not known). */
  snapshotBytes?: number;
  /** Whether the disk refuses writes (the node is frozen until the held save goes through). */
  storageFull?: boolean;
  /** Since start: writes refused for a full disk, and peer messages dropped while frozen (they only grow). */
  storageRefusedWrites?: number;
  storageDroppedMessages?: number;
}

const MESSAGE_TYPES = Object.keys(MessageType).filter((k) => Number.isNaN(Number(k)));

/**
 * Prometheus metrics of the Raft node. Label children are bound once, so counting a message or a proposal
 * costs one increment.
 */
@Injectable()
export class RaftMetrics implements NodeMetrics {
  private snapshot: () => RaftMetricsSnapshot | undefined = () => undefined;
  private readonly leaderChanges: Counter;
  private readonly elections: Counter;
  private readonly proposalDuration: Histogram;
  private readonly readIndexDuration: Histogram;
  private readonly snapshotDuration: Histogram<'kind'>;
  private readonly proposals: Counter<'outcome'>;
  private readonly outcomes = new Map<ProposalOutcome, Counter.Internal>();
  private readonly sent: Counter.Internal[] = [];
  private readonly received: Counter.Internal[] = [];

  constructor(registry: Registry) {
    const read = <K extends keyof RaftMetricsSnapshot>(key: K) => () => this.snapshot()?.[key];
    const gauge = (name: string, help: string, value: () => unknown) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect(this: Gauge) {
          const v = value();
          if (typeof v === 'number') this.set(v);
        },
      });
    gauge('raftkv_raft_term', 'Current Raft term of this node.', read('term'));
    gauge('raftkv_raft_commit_index', 'Highest log index known to be committed.', read('commit'));
    gauge('raftkv_raft_applied_index', 'Highest log index applied to the state machine.', read('applied'));
    gauge('raftkv_raft_last_log_index', 'Index of the last entry in the log.', read('lastIndex'));
    gauge('raftkv_raft_snapshot_index', 'Index of the last entry covered by the newest snapshot.', read('snapshotIndex'));
    gauge('raftkv_raft_first_log_index', 'Index of the first entry still in the log (older ones are compacted).', read('firstIndex'));
    gauge('raftkv_raft_snapshot_size_bytes', 'Size of the newest snapshot file.', read('snapshotBytes'));
    gauge('raftkv_raft_is_leader', '1 if this node is the leader, else 0.', () => {
      const s = this.snapshot();
      return s ? Number(s.state === StateType.Leader) : undefined;
    });
    gauge('raftkv_storage_full', '1 while the disk refuses writes (ENOSPC, EDQUOT): the node is frozen, writes are refused with 507.', () => {
      const full = this.snapshot()?.storageFull;
      return full === undefined ? undefined : Number(full);
    });
    // Counted by the node itself, read at scrape time: each scrape adds what was counted since the last.
    const total = (name: string, help: string, value: () => number | undefined) => {
      let seen = 0;
      new Counter({
        name,
        help,
        registers: [registry],
        collect(this: Counter) {
          const v = value();
          if (v === undefined || v <= seen) return;
          this.inc(v - seen);
          seen = v;
        },
      }).inc(0);
    };
    total(
      'raftkv_storage_full_refused_writes_total',
      'Writes (and membership changes) refused at once with 507 because the disk was full.',
      read('storageRefusedWrites'),
    );
    total(
      'raftkv_storage_full_dropped_messages_total',
      'Peer messages dropped while the disk was full (the node was frozen).',
      read('storageDroppedMessages'),
    );
    const snapshotState = () => this.snapshot()?.state;
    new Gauge({
      name: 'raftkv_raft_state',
      help: 'Raft role of this node: 1 for the current state, 0 for the others.',
      labelNames: ['state'],
      registers: [registry],
      collect(this: Gauge<'state'>) {
        const current = snapshotState();
        if (current === undefined) return;
        for (const state of Object.values(StateType)) this.set({ state }, Number(state === current));
      },
    });
    this.leaderChanges = new Counter({
      name: 'raftkv_raft_leader_changes_total',
      help: 'Times this node saw the leader change (including to no leader).',
      registers: [registry],
    });
    this.elections = new Counter({
      name: 'raftkv_raft_elections_total',
      help: 'Elections this node started (transitions to candidate).',
      registers: [registry],
    });
    this.proposals = new Counter({
      name: 'raftkv_raft_proposals_total',
      help: 'Client proposals by outcome: committed, lost (overwritten), timeout (outcome unknown), rejected.',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.proposalDuration = new Histogram({
      name: 'raftkv_raft_proposal_duration_seconds',
      help: 'Time from proposal to apply on the leader.',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.readIndexDuration = new Histogram({
      name: 'raftkv_raft_read_index_duration_seconds',
      help: 'Time for a linearizable read to confirm leadership and catch up the state machine.',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.snapshotDuration = new Histogram({
      name: 'raftkv_raft_snapshot_duration_seconds',
      help: 'Snapshots of the state machine: taken here (view to durable file) or installed from the leader (restore).',
      labelNames: ['kind'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    // Both series exist from the start (at zero), so that dashboards and alerts see 0, not nothing.
    for (const kind of ['taken', 'installed']) this.snapshotDuration.zero({ kind });
    const sent = new Counter({
      name: 'raftkv_raft_messages_sent_total',
      help: 'Raft messages handed to the transport, by type.',
      labelNames: ['type'],
      registers: [registry],
    });
    const received = new Counter({
      name: 'raftkv_raft_messages_received_total',
      help: 'Raft messages received from peers, by type.',
      labelNames: ['type'],
      registers: [registry],
    });
    for (const name of MESSAGE_TYPES) {
      const type = MessageType[name as keyof typeof MessageType];
      this.sent[type] = sent.labels(name);
      this.received[type] = received.labels(name);
    }
  }

  /** Connects the scrape-time gauges to the node. */
  bind(snapshot: () => RaftMetricsSnapshot): void {
    this.snapshot = snapshot;
  }

  messageSent(type: MessageType): void {
    this.sent[type]?.inc();
  }

  messageReceived(type: MessageType): void {
    this.received[type]?.inc();
  }

  /** Counts a proposal's outcome; `seconds` (committed ones) is the time from proposal to apply. */
  proposal(outcome: ProposalOutcome, seconds?: number): void {
    let child = this.outcomes.get(outcome);
    if (!child) this.outcomes.set(outcome, (child = this.proposals.labels(outcome)));
    child.inc();
    if (seconds !== undefined) this.proposalDuration.observe(seconds);
  }

  readServed(seconds: number): void {
    this.readIndexDuration.observe(seconds);
  }

  leaderChanged(): void {
    this.leaderChanges.inc();
  }

  electionStarted(): void {
    this.elections.inc();
  }

  snapshotTaken(seconds: number): void {
    this.snapshotDuration.observe({ kind: 'taken' }, seconds);
  }

  snapshotInstalled(seconds: number): void {
    this.snapshotDuration.observe({ kind: 'installed' }, seconds);
  }
}

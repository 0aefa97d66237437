import { Injectable } from '@nestjs/common';
import { NodeId } from '@app/consensus/core';
import { Counter, Histogram, Registry } from 'prom-client';

/**
 * How an outgoing snapshot transfer ended: `ok` (the peer verified and accepted it), `failed` (an error, a
 * refusal, a cut or stalled connection), `aborted` (a newer transfer to the peer replaced it, or the node
 * stopped), `unavailable` (the snapshot file no longer exists, no snapshot storage is bound, the recipient
 * is not a member, or the node has stopped).
 */
export type SnapshotSentOutcome = 'ok' | 'failed' | 'aborted' | 'unavailable';
/**
 * How an incoming snapshot transfer ended: `ok` (verified and handed to the node), `invalid` (answered 400: bad
 * frame, mismatch, corrupt file), `failed` (answered 503: storage error, cut, replaced, no snapshot storage).
 */
export type SnapshotReceivedOutcome = 'ok' | 'invalid' | 'failed';

/** Prometheus metrics of the peer transport, labelled by peer URL. */
@Injectable()
export class ClusterRpcMetrics {
  private readonly framesSent: Counter<'peer'>;
  private readonly bytesSent: Counter<'peer'>;
  private readonly bytesReceived: Counter<'peer'>;
  private readonly failures: Counter<'peer'>;
  private readonly drops: Counter<'peer'>;
  private readonly snapshotsSent: Counter<'peer' | 'outcome'>;
  private readonly snapshotsReceived: Counter<'peer' | 'outcome'>;
  private readonly snapshotBytesSent: Counter<'peer'>;
  private readonly snapshotBytesReceived: Counter<'peer'>;
  private readonly snapshotDuration: Histogram<'direction'>;

  constructor(registry: Registry) {
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ['peer'], registers: [registry] });
    const byOutcome = (name: string, help: string) =>
      new Counter({ name, help, labelNames: ['peer', 'outcome'], registers: [registry] });
    this.framesSent = counter('raftkv_peer_frames_sent_total', 'Frames (message batches) written to the stream to each peer.');
    this.bytesSent = counter('raftkv_peer_sent_bytes_total', 'Bytes of frames written to the stream to each peer.');
    this.bytesReceived = counter('raftkv_peer_received_bytes_total', 'Bytes of frames received from each peer.');
    this.failures = counter('raftkv_peer_stream_failures_total', 'Streams to each peer that failed or were lost (peer down, cut off, paused or refusing).');
    this.drops = counter('raftkv_peer_dropped_messages_total', 'Messages dropped because a queue or socket buffer to the peer was full.');
    this.snapshotsSent = byOutcome(
      'raftkv_peer_snapshots_sent_total',
      'Snapshot transfers to each peer, by outcome (ok, failed, aborted, unavailable).',
    );
    this.snapshotsReceived = byOutcome(
      'raftkv_peer_snapshots_received_total',
      'Snapshot transfers from each peer, by outcome (ok, invalid, failed).',
    );
    this.snapshotBytesSent = counter('raftkv_peer_snapshot_sent_bytes_total', 'Bytes of snapshot files sent to each peer (as they go).');
    this.snapshotBytesReceived = counter(
      'raftkv_peer_snapshot_received_bytes_total',
      'Bytes of snapshot files received from each peer and written to storage (as they come).',
    );
    this.snapshotDuration = new Histogram({
      name: 'raftkv_peer_snapshot_transfer_duration_seconds',
      help: 'Duration of successful snapshot transfers, from the first byte to the verified file (direction: sent, received).',
      labelNames: ['direction'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    });
  }

  /**
   * Creates each peer's snapshot-transfer series at zero, so that they exist (and dashboards and alerts see
   * 0, not nothing) before the first transfer.
   */
  knowPeers(peers: readonly NodeId[]): void {
    for (const peer of peers) {
      for (const outcome of ['ok', 'failed'] as const) this.snapshotsSent.inc({ peer, outcome }, 0);
      this.snapshotsReceived.inc({ peer, outcome: 'ok' }, 0);
    }
  }

  sent(peer: NodeId, _messages: number, bytes: number): void {
    this.framesSent.inc({ peer });
    this.bytesSent.inc({ peer }, bytes);
  }

  received(peer: NodeId, _messages: number, bytes: number): void {
    this.bytesReceived.inc({ peer }, bytes);
  }

  failed(peer: NodeId): void {
    this.failures.inc({ peer });
  }

  dropped(peer: NodeId, count: number): void {
    this.drops.inc({ peer }, count);
  }

  /** A snapshot transfer to `peer` ended; `seconds` is observed for successful ones. */
  snapshotSent(peer: NodeId, outcome: SnapshotSentOutcome, seconds?: number): void {
    this.snapshotsSent.inc({ peer, outcome });
    if (outcome === 'ok' && seconds !== undefined) this.snapshotDuration.observe({ direction: 'sent' }, seconds);
  }

  snapshotReceived(peer: NodeId, outcome: SnapshotReceivedOutcome, seconds?: number): void {
    this.snapshotsReceived.inc({ peer, outcome });
    if (outcome === 'ok' && seconds !== undefined) this.snapshotDuration.observe({ direction: 'received' }, seconds);
  }

  snapshotBytesOut(peer: NodeId, bytes: number): void {
    this.snapshotBytesSent.inc({ peer }, bytes);
  }

  snapshotBytesIn(peer: NodeId, bytes: number): void {
    this.snapshotBytesReceived.inc({ peer }, bytes);
  }
}

import { Injectable } from '@nestjs/common';
import { NodeId } from '@app/consensus/core';
import { Counter, Registry } from 'prom-client';

/** Prometheus metrics of the peer transport, labelled by peer URL. */
@Injectable()
export class ClusterRpcMetrics {
  private readonly framesSent: Counter<'peer'>;
  private readonly bytesSent: Counter<'peer'>;
  private readonly bytesReceived: Counter<'peer'>;
  private readonly failures: Counter<'peer'>;
  private readonly drops: Counter<'peer'>;

  constructor(registry: Registry) {
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ['peer'], registers: [registry] });
    this.framesSent = counter('raftkv_peer_frames_sent_total', 'Frames (message batches) written to the stream to each peer.');
    this.bytesSent = counter('raftkv_peer_sent_bytes_total', 'Bytes of frames written to the stream to each peer.');
    this.bytesReceived = counter('raftkv_peer_received_bytes_total', 'Bytes of frames received from each peer.');
    this.failures = counter('raftkv_peer_stream_failures_total', 'Streams to each peer that failed or were lost (peer down, cut off, paused or refusing).');
    this.drops = counter('raftkv_peer_dropped_messages_total', 'Messages dropped because a queue or socket buffer to the peer was full.');
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
}

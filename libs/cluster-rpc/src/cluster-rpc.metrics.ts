import { Injectable } from '@nestjs/common';
import { NodeId } from '@app/consensus';
import { Counter, Registry } from 'prom-client';

/** Prometheus metrics of the peer transport, labelled by peer URL. */
@Injectable()
export class ClusterRpcMetrics {
  private readonly batchesSent: Counter<'peer'>;
  private readonly bytesSent: Counter<'peer'>;
  private readonly bytesReceived: Counter<'peer'>;
  private readonly failures: Counter<'peer'>;
  private readonly drops: Counter<'peer'>;

  constructor(registry: Registry) {
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ['peer'], registers: [registry] });
    this.batchesSent = counter('raftkv_peer_batches_sent_total', 'Peer requests (message batches) delivered, by peer.');
    this.bytesSent = counter('raftkv_peer_sent_bytes_total', 'Bytes of message batches delivered, by peer.');
    this.bytesReceived = counter('raftkv_peer_received_bytes_total', 'Bytes of message batches received, by peer.');
    this.failures = counter('raftkv_peer_send_failures_total', 'Peer requests that failed (peer down, slow or refusing), by peer.');
    this.drops = counter('raftkv_peer_dropped_messages_total', 'Messages dropped because the peer queue was full, by peer.');
  }

  delivered(peer: NodeId, _messages: number, bytes: number): void {
    this.batchesSent.inc({ peer });
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

import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('raft-kv')
    .setDescription(
      'A distributed key-value store on Raft. Writes go to the leader (followers answer 307 with a Location header); ' +
        'reads, linearizable (the default) or stale, are served by any node. Every acknowledged write is committed on a ' +
        'quorum and fsynced.',
    )
    .setVersion('0.1.0')
    .addTag('kv', 'The replicated map')
    .addTag('status', "This node's view of the cluster")
    .addTag('cluster', "Admin: every member's status, gathered by the node asked; backups")
    .addTag('cluster membership', 'Admin: list, add, promote and remove members (changes go to the leader, like writes)')
    .addTag('operations', 'Health checks and Prometheus metrics')
    .addTag('raft (peer)', 'Cluster-internal: Raft messages between members (not for clients)')
    .addSecurity('cluster-token', { type: 'http', scheme: 'bearer', description: 'CLUSTER_TOKEN, peers only' })
    // The scheme the membership routes name (MEMBERSHIP_SECURITY in libs/cluster-rpc/src/admin/members.controller.ts).
    .addSecurity('cluster-admin', {
      type: 'http',
      scheme: 'bearer',
      description: 'With CLUSTER_TOKEN or API_TOKENS_FILE set: CLUSTER_TOKEN (what a joining node sends) or an admin API token',
    })
    .build();
  return SwaggerModule.createDocument(app, config);
}

/**
 * Swagger UI at /docs and the OpenAPI JSON at /docs-json. The document is built on the first request for it
 * (then kept): scanning every controller takes about 80 ms of a node's start, which a node nobody browses
 * never needs.
 */
export function setupSwagger(app: INestApplication, options: { ui: boolean } = { ui: true }): void {
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), { jsonDocumentUrl: 'docs-json', swaggerUiEnabled: options.ui });
}

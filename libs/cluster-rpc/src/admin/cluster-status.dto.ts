import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** One member in the cluster-wide status view. */
export class MemberStatusDto {
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      "The member's NODE_ID: from its answer; for a member that does not answer, the one it reported when it last " +
      'answered this node, or announced on its peer stream; null if this node never heard from it.',
    example: 'node2',
  })
  nodeId: string | null;

  @ApiProperty({ description: "The member's URL, as configured (ADVERTISE_URL / PEER_URLS).", example: 'http://localhost:3002' })
  url: string;

  @ApiProperty({ description: 'Whether the member answered over HTTP within the timeout.', example: true })
  reachable: boolean;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: "The member's own `GET /status` answer, as it sent it (schema StatusDto). Absent when it did not answer 200.",
  })
  status?: Record<string, unknown>;

  @ApiPropertyOptional({
    description: 'Why there is no status: the connection error, the timeout, or the HTTP status it answered with.',
    example: 'connect ECONNREFUSED 127.0.0.1:3002',
  })
  error?: string;
}

/** `GET /cluster/status`: every member's own status, gathered in parallel by the node asked. */
export class ClusterStatusDto {
  @ApiProperty({ type: [MemberStatusDto], description: 'One entry per member, in the order of their URLs.' })
  nodes: MemberStatusDto[];
}

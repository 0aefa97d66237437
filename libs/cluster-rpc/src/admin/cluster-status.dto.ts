import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** One member in the cluster-wide status view. */
export class MemberStatusDto {
  @ApiProperty({ description: "The member's NODE_ID.", example: 'node2' })
  nodeId: string;

  @ApiPropertyOptional({
    description: "The member's URL, as the node asked knows it; absent when it has no address for it.",
    example: 'http://localhost:3002',
  })
  url?: string;

  @ApiProperty({ enum: ['voter', 'learner'], description: "The member's role in the configuration." })
  role: 'voter' | 'learner';

  @ApiProperty({ description: 'Whether the member answered over HTTP within the timeout.', example: true })
  reachable: boolean;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: "The member's own `GET /status` answer, as it sent it (schema StatusDto). Absent when it did not answer 200.",
  })
  status?: Record<string, unknown>;

  @ApiPropertyOptional({
    description: 'Why there is no status: the connection error, the timeout, the HTTP status it answered with, or no address known.',
    example: 'connect ECONNREFUSED 127.0.0.1:3002',
  })
  error?: string;
}

/** `GET /cluster/status`: every member's own status, gathered in parallel by the node asked. */
export class ClusterStatusDto {
  @ApiProperty({ type: [MemberStatusDto], description: 'One entry per member, in the order of the configuration the node asked has applied.' })
  nodes: MemberStatusDto[];
}

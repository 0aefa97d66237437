import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsDefined, IsInt, IsOptional, IsString, Matches, Max, Min, ValidateBy, ValidateIf, ValidationOptions } from 'class-validator';
import type { AddMemberAnswer, AddMemberRequest, MemberInfo, MemberRole } from './membership-node';

/** NODE_ID's rule (config/node-config.ts): what a member id may be. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * `raw` as a member URL: an http(s) base URL (scheme, host, optional port; no path, query, fragment or
 * credentials), normalized to `scheme://host[:port]` (a trailing `/` dropped, the host lower-cased).
 * Undefined when it is not one.
 */
export function baseUrl(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return undefined;
  if (raw.includes('?') || raw.includes('#')) return undefined; // `http://h/?` parses with an empty search
  return `${url.protocol}//${url.host}`;
}

function IsBaseUrl(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isBaseUrl',
      validator: {
        validate: (value: unknown) => typeof value === 'string' && baseUrl(value) !== undefined,
        defaultMessage: () => 'url must be an http(s) base URL without a path, such as http://10.0.0.4:3001',
      },
    },
    options,
  );
}

/** Body of `POST /cluster/members`. */
export class AddMemberDto implements AddMemberRequest {
  @ApiProperty({ description: "The new member's NODE_ID.", example: 'node4', pattern: NODE_ID_PATTERN.source })
  @IsDefined({ message: 'nodeId is required' })
  @IsString({ message: 'nodeId must be a string' })
  @Matches(NODE_ID_PATTERN, { message: 'nodeId must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit' })
  nodeId: string;

  @ApiPropertyOptional({
    description: 'Where the members reach it: an http(s) base URL without a path. Absent: `http://<the caller\'s address>:<port>`.',
    example: 'http://10.0.0.4:3001',
  })
  // Validated when present, and when `port` is absent too (then it is the missing field).
  @ValidateIf((o: AddMemberDto) => o.url !== undefined || o.port === undefined)
  @IsDefined({ message: 'url or port is required' })
  @IsBaseUrl()
  url?: string;

  @ApiPropertyOptional({ description: 'With `url` absent: the port the new member listens on, at the address the request came from.', example: 3004 })
  @IsOptional()
  @IsInt({ message: 'port must be an integer' })
  @Min(1, { message: 'port must be from 1 to 65535' })
  @Max(65535, { message: 'port must be from 1 to 65535' })
  port?: number;

  @ApiPropertyOptional({ description: 'Add it as a learner (default), to be promoted once caught up; false: as a voter at once.', default: true })
  @IsOptional()
  @IsBoolean({ message: 'learner must be a boolean' })
  learner?: boolean;
}

export class MemberInfoDto implements MemberInfo {
  @ApiProperty({ description: 'NODE_ID.', example: 'node2' })
  nodeId: string;

  @ApiPropertyOptional({ description: 'Where the members reach it (as the node asked knows it); absent when it has no address for it.', example: 'http://localhost:3002' })
  url?: string;

  @ApiPropertyOptional({
    description: 'The same as url: its member URL, which is its peer URL when it serves peers on a PEER_PORT.',
    example: 'http://localhost:3002',
  })
  peerUrl?: string;

  @ApiPropertyOptional({
    description:
      'Where clients reach it (its HTTP_PORT): the client URL it announces to its peers when it serves them on a PEER_PORT; otherwise its url.',
    example: 'http://localhost:3002',
  })
  clientUrl?: string;

  @ApiProperty({ enum: ['voter', 'learner'], description: 'Voters vote and count in quorums; learners only receive the log.' })
  role: MemberRole;

  @ApiProperty({ description: 'Whether this entry is the node that answered.', example: false })
  self: boolean;

  @ApiPropertyOptional({ description: 'On the leader only: the last log index known replicated on it.', example: 42 })
  match?: number;

  @ApiPropertyOptional({ description: 'On the leader only: milliseconds since it last heard from it (absent: never).', example: 12 })
  lastContactMs?: number;
}

/** `GET /cluster/members`. */
export class MembersDto {
  @ApiProperty({ description: 'The cluster id, created when the cluster bootstrapped.', example: '7f3c9a0e5b1d4f26' })
  clusterId: string;

  @ApiProperty({ type: String, nullable: true, description: "The leader's NODE_ID, as the node asked knows it; null when none is known.", example: 'node1' })
  leader: string | null;

  @ApiProperty({ type: [MemberInfoDto] })
  members: MemberInfoDto[];
}

/** `POST /cluster/members`: what a joining node needs to start. */
export class AddMemberAnswerDto implements AddMemberAnswer {
  @ApiProperty({ example: '7f3c9a0e5b1d4f26' })
  clusterId: string;

  @ApiProperty({
    description: 'Index of the committed ConfChange entry that added it (on a repeated request: an index applied after it).',
    example: 57,
  })
  index: number;

  @ApiProperty({ type: [String], description: 'The voters the cluster bootstrapped with (a new node replays the log from them).', example: ['node1', 'node2', 'node3'] })
  initialVoters: string[];

  @ApiProperty({ type: MemberInfoDto, description: 'The new member.' })
  member: MemberInfoDto;

  @ApiProperty({ type: [MemberInfoDto], description: 'Every member after the change.' })
  members: MemberInfoDto[];
}

/** `POST /cluster/members/:nodeId/promote`. */
export class PromoteAnswerDto {
  @ApiProperty({ description: 'Index of the committed ConfChange entry (already a voter: an index applied after it).', example: 60 })
  index: number;

  @ApiProperty({ type: MemberInfoDto })
  member: MemberInfoDto;

  @ApiProperty({ type: [MemberInfoDto] })
  members: MemberInfoDto[];
}

/** `DELETE /cluster/members/:nodeId`. */
export class RemoveAnswerDto {
  @ApiProperty({ description: 'Index of the committed ConfChange entry.', example: 61 })
  index: number;

  @ApiProperty({ type: [MemberInfoDto], description: 'Every member after the change.' })
  members: MemberInfoDto[];
}

/** Every error answer of the membership routes. */
export class MembershipErrorDto {
  @ApiProperty({ example: 'another membership change is pending' })
  error: string;

  @ApiPropertyOptional({ description: '307: the NODE_ID of the leader.', example: 'node1' })
  leader?: string;

  @ApiPropertyOptional({ description: '307: the base URL of the leader.', example: 'http://localhost:3001' })
  leaderUrl?: string;

  @ApiPropertyOptional({ enum: ['unknown', 'failed'], description: '503: whether the change may still take effect.' })
  outcome?: 'unknown' | 'failed';
}

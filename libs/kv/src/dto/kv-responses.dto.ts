import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class WriteResultDto {
  @ApiProperty({ example: true })
  success: true;

  @ApiProperty({ description: 'Log index at which the write was committed.', example: 42 })
  index: number;
}

export class PutResultDto extends WriteResultDto {
  @ApiProperty({ description: 'The entry that created the key (since it last did not exist).', example: 40 })
  createIndex: number;

  @ApiProperty({ description: 'The key\'s new modIndex: the index of this write (also the ETag header, quoted).', example: 42 })
  modIndex: number;
}

export class DeleteResultDto extends WriteResultDto {
  @ApiProperty({ description: 'Whether the key existed before the delete (deleting a missing key succeeds).', example: true })
  existed: boolean;
}

export class KeyValueDto {
  @ApiProperty({ example: 'username' })
  key: string;

  @ApiProperty({ example: 'alice' })
  value: string;

  @ApiProperty({ description: 'Log index of the entry that created the key (since it last did not exist).', example: 40 })
  createIndex: number;

  @ApiProperty({ description: 'Log index of the entry that last changed it; the ETag header is this, quoted.', example: 42 })
  modIndex: number;

  @ApiPropertyOptional({
    description:
      "Only for a key written with ?ttl: whole seconds until it expires, on the serving node's clock (rounded up; 0 once " +
      'due: the leader deletes it within about a heartbeat).',
    example: 27,
  })
  ttl?: number;

  @ApiPropertyOptional({ description: 'Only for a key written with ?ttl: when it expires (ISO 8601, UTC).', example: '2026-12-02T06:30:00.000Z' })
  expiresAt?: string;
}

export class PreconditionFailedDto {
  @ApiProperty({ example: 'Precondition failed: If-Match: "40", but the key was last changed at index 42' })
  error: string;

  @ApiProperty({ example: 'username' })
  key: string;

  @ApiProperty({ description: "The key's current modIndex; null when it does not exist.", example: 42, nullable: true, type: Number })
  modIndex: number | null;

  @ApiProperty({ enum: ['failed'], description: 'Nothing was written (the entry took a log index but changed nothing).' })
  outcome: 'failed';
}

export class ErrorDto {
  @ApiProperty({ example: 'Key not found' })
  error: string;

  @ApiPropertyOptional({ example: 'username' })
  key?: string;
}

export class NotLeaderDto {
  @ApiProperty({ example: 'Not leader' })
  error: string;

  @ApiProperty({ description: 'NODE_ID of the leader.', example: 'node1' })
  leader: string;

  @ApiProperty({ description: 'Base URL of the leader; the Location header points at the same path there.', example: 'http://localhost:3001' })
  leaderUrl: string;
}

export class UnavailableDto {
  @ApiProperty({ example: 'No leader' })
  error: string;

  @ApiPropertyOptional({
    enum: ['unknown', 'failed'],
    description:
      '`unknown`: the write was proposed but not seen committed in time; it may still commit later. ' +
      '`failed`: it definitely did not take effect; safe to retry.',
  })
  outcome?: 'unknown' | 'failed';
}

export class DataQuotaExceededDto {
  @ApiProperty({
    example: 'Data quota exceeded: the store holds 1048500 of MAX_DATA_BYTES 1048576 bytes; delete keys to make room',
  })
  error: string;

  @ApiProperty({ enum: ['failed'], description: 'Nothing was written; retrying helps only once keys are deleted or shortened.' })
  outcome: 'failed';

  @ApiProperty({ description: 'UTF-8 bytes of every key plus its value on the leader when it refused the write.', example: 1048500 })
  dataBytes: number;

  @ApiProperty({ description: 'MAX_DATA_BYTES.', example: 1048576 })
  quotaBytes: number;
}

export class PeerStatusDto {
  @ApiPropertyOptional({ example: 'node2' })
  nodeId?: string;

  @ApiProperty({ description: 'Where this node reaches the peer (null when it knows no address).', example: 'http://localhost:3002', nullable: true, type: String })
  url: string | null;

  @ApiProperty({ description: 'Highest log index known to be replicated on the peer.', example: 42 })
  matchIndex: number;

  @ApiProperty({ example: 43 })
  nextIndex: number;

  @ApiProperty({ enum: ['Probe', 'Replicate', 'Snapshot'], example: 'Replicate' })
  replication: string;

  @ApiPropertyOptional({ description: 'Milliseconds since the leader last heard from the peer.', example: 12 })
  lastContactMs?: number;

  @ApiPropertyOptional({ description: 'With PEER_PORT only: where clients reach the peer (null: not known yet).', nullable: true, type: String })
  clientUrl?: string | null;

  @ApiPropertyOptional({ description: 'With PEER_PORT only: where peers reach it.', nullable: true, type: String })
  peerUrl?: string | null;
}

export class StatusDto {
  @ApiProperty({ enum: ['LEADER', 'FOLLOWER', 'CANDIDATE', 'PRE_CANDIDATE'], example: 'LEADER' })
  state: string;

  @ApiProperty({ example: 5 })
  term: number;

  @ApiProperty({ description: 'NODE_ID of the known leader, or null.', example: 'node1', nullable: true, type: String })
  leader: string | null;

  @ApiProperty({ example: true })
  isLeader: boolean;

  @ApiProperty({ example: 'node1' })
  nodeId: string;

  @ApiProperty({ description: 'This node\'s advertised URL (null while it is still finding its cluster).', example: 'http://localhost:3001', nullable: true, type: String })
  url: string | null;

  @ApiPropertyOptional({ description: 'With PEER_PORT only: where clients reach this node (`url` is then where peers do).', example: 'http://localhost:3001', nullable: true, type: String })
  clientUrl?: string | null;

  @ApiPropertyOptional({ description: 'With PEER_PORT only: where peers reach this node (its PEER_PORT).', example: 'http://localhost:4001', nullable: true, type: String })
  peerUrl?: string | null;

  @ApiProperty({ description: 'Base URL of the known leader, or null.', example: 'http://localhost:3001', nullable: true, type: String })
  leaderUrl: string | null;

  @ApiProperty({ example: 42 })
  commitIndex: number;

  @ApiProperty({ example: 42 })
  appliedIndex: number;

  @ApiProperty({ example: 42 })
  lastLogIndex: number;

  @ApiProperty({
    example: 30000,
    description: 'Index of the last entry covered by the newest snapshot of the map (0: none taken or installed yet).',
  })
  snapshotIndex: number;

  @ApiProperty({
    example: 20001,
    description: 'Index of the first entry still in the log; the entries before it were compacted into snapshots.',
  })
  firstLogIndex: number;

  @ApiProperty({
    description: "UTF-8 bytes of every key plus its value in this node's copy of the map, as of appliedIndex.",
    example: 52340,
  })
  dataBytes: number;

  @ApiPropertyOptional({ description: 'MAX_DATA_BYTES, the quota on dataBytes (absent: no quota).', example: 1073741824 })
  quotaBytes?: number;

  @ApiPropertyOptional({ type: [PeerStatusDto], description: 'Replication state of each peer (leader only).' })
  peers?: PeerStatusDto[];

  @ApiPropertyOptional({
    enum: ['full'],
    description:
      'Present only while the disk refuses writes (ENOSPC, EDQUOT): the node is frozen (writes refused with 507, no ' +
      'linearizable reads served here, no part in elections) and retries until space returns.',
  })
  storage?: 'full';

  @ApiPropertyOptional({ description: "With `storage`: the disk's error.", example: "ENOSPC: no space left on device, write '/data/wal/00000001.wal'" })
  storageError?: string;

  @ApiPropertyOptional({ description: 'With `storage`: milliseconds since the disk first refused the write held now.', example: 5300 })
  storageFullForMs?: number;
}

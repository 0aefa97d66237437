import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches } from 'class-validator';

/** The query of GET /watch (strings as they come: fromIndex is checked, then parsed by the controller). */
export class WatchQueryDto {
  @ApiPropertyOptional({ description: 'Watch this one key (give key or prefix, not both).', example: 'config/db' })
  @IsOptional()
  @IsString({ message: 'key must be a string' })
  key?: string;

  @ApiPropertyOptional({
    description: 'Watch every key that starts with this prefix (byte-wise; empty: every key).',
    example: 'config/',
  })
  @IsOptional()
  @IsString({ message: 'prefix must be a string' })
  prefix?: string;

  @ApiPropertyOptional({
    description:
      'Replay the changes from this log index on (kept in the watch history), then follow live. Without it: from ' +
      'the next index applied. A Last-Event-ID header (a reconnecting client) overrides it with that id + 1.',
    example: '42',
  })
  @IsOptional()
  @Matches(/^\d{1,15}$/, { message: 'fromIndex must be a log index (a whole number)' })
  fromIndex?: string;
}

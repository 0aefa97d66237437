import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';

export const CONSISTENCY_LEVELS = ['linearizable', 'stale'] as const;
export type Consistency = (typeof CONSISTENCY_LEVELS)[number];

export class ReadQueryDto {
  @ApiPropertyOptional({
    enum: CONSISTENCY_LEVELS,
    default: 'linearizable',
    description:
      '`linearizable` (default): served by any node once it has applied the read index the leader confirmed with a ' +
      'quorum (ReadIndex). `stale`: served at once from this node\'s local copy, which may lag behind.',
  })
  @IsOptional()
  @IsIn(CONSISTENCY_LEVELS as unknown as string[], { message: 'consistency must be one of: linearizable, stale' })
  consistency?: Consistency;
}

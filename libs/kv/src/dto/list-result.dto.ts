import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ListItemDto {
  @ApiProperty({ example: 'user/1' })
  key: string;

  @ApiPropertyOptional({ description: 'Absent with `keysOnly=true`.', example: 'alice' })
  value?: string;

  @ApiPropertyOptional({ description: 'The index of the write that created the key (absent with `keysOnly=true`).', example: 7 })
  createIndex?: number;

  @ApiPropertyOptional({ description: 'The index of the write that last changed it (absent with `keysOnly=true`).', example: 9 })
  modIndex?: number;
}

export class ListResultDto {
  @ApiProperty({ type: [ListItemDto], description: 'The keys of this page, in UTF-8 byte order, with their values.' })
  items: ListItemDto[];

  @ApiProperty({
    description:
      'Whether more keys of the prefix follow: ask again with `after` set to `next`. A page may hold fewer than ' +
      '`limit` items and still have more (its values reached about 4 MiB).',
    example: true,
  })
  more: boolean;

  @ApiProperty({
    description: 'The cursor for the next page (the last key of this one) when `more` is true, else null.',
    example: 'user/2',
    nullable: true,
    type: String,
  })
  next: string | null;
}

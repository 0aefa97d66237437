import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, ValidateBy } from 'class-validator';
import { ReadQueryDto } from './read-query.dto';

/** A page's size when `limit` is not given. */
export const LIST_DEFAULT_LIMIT = 100;
/** The largest `limit` accepted (a bigger one answers 400). */
export const LIST_MAX_LIMIT = 1000;

/** `GET /kv`: the query of a listing. Query values arrive as strings; the controller converts them. */
export class ListQueryDto extends ReadQueryDto {
  @ApiPropertyOptional({
    description: 'List the keys that start with this string (compared as UTF-8 bytes). Empty or absent: every key.',
    example: 'user/',
  })
  @IsOptional()
  @IsString({ message: 'prefix must be a string (give it once)' })
  prefix?: string;

  @ApiPropertyOptional({
    description:
      'The cursor: start after this key (excluded). Pass the `next` of the previous page to get the one that follows it.',
    example: 'user/17',
  })
  @IsOptional()
  @IsString({ message: 'after must be a string (give it once)' })
  after?: string;

  @ApiPropertyOptional({
    description: `The most items in one page: 1 to ${LIST_MAX_LIMIT}.`,
    default: LIST_DEFAULT_LIMIT,
    example: 100,
    type: 'integer',
  })
  @IsOptional()
  @ValidateBy({
    name: 'pageLimit',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && /^\d{1,9}$/.test(value) && Number(value) >= 1 && Number(value) <= LIST_MAX_LIMIT,
      defaultMessage: () => `limit must be an integer from 1 to ${LIST_MAX_LIMIT} (the largest page)`,
    },
  })
  limit?: string;

  @ApiPropertyOptional({ enum: ['true', 'false'], default: 'false', description: '`true`: the keys only, without their values.' })
  @IsOptional()
  @IsIn(['true', 'false'], { message: 'keysOnly must be true or false' })
  keysOnly?: 'true' | 'false';
}


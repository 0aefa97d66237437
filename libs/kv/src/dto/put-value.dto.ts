import { ApiProperty } from '@nestjs/swagger';
import { IsDefined, IsString } from 'class-validator';

export class PutValueDto {
  @ApiProperty({ description: 'The value to store (any string, up to MAX_VALUE_BYTES bytes of UTF-8).', example: 'alice' })
  @IsDefined({ message: 'value is required' })
  @IsString({ message: 'value must be a string' })
  value: string;
}

import { BadRequestException, ValidationError, ValidationPipe } from '@nestjs/common';

function messages(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((e) => [
    ...Object.values(e.constraints ?? {}).map((m) => (prefix ? `${prefix}.${m}` : m)),
    ...messages(e.children ?? [], prefix ? `${prefix}.${e.property}` : e.property),
  ]);
}

/** Validates DTOs; unknown fields are refused; the answer names every problem in one `error` line. */
export function kvValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => {
      const list = messages(errors).map((m) => m.replace(/^property (\S+) should not exist$/, 'unknown field "$1"'));
      return new BadRequestException({ error: list.join('; '), details: list });
    },
  });
}

import { BadRequestException } from '@nestjs/common';
import { PutValueDto } from './dto/put-value.dto';
import { ReadQueryDto } from './dto/read-query.dto';
import { DtoValidationPipe } from './validation';

const pipe = new DtoValidationPipe();
const query = (value: unknown) => pipe.transform(value, { type: 'query', metatype: ReadQueryDto });
const body = (value: unknown) => pipe.transform(value, { type: 'body', metatype: PutValueDto });

/** What Fastify's query parser makes of `raw`: an object without a prototype, holding every key as its own. */
function parsedQuery(raw: Record<string, unknown>): Record<string, unknown> {
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(raw)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true });
  return out;
}

describe('DtoValidationPipe', () => {
  it.each([
    ['a body with a constructor key', { constructor: null, value: '' }, /unknown field "constructor"/],
    ['a body with a constructor object', JSON.parse('{"value":"x","constructor":{"name":"PutValueDto"}}'), /unknown field "constructor"/],
    ['a body with a __proto__ key', JSON.parse('{"value":"x","__proto__":{"value":1}}'), /unknown field "__proto__"/],
  ])('refuses %s with 400 (found by fuzzing: it answered 500)', (_name, raw, message) => {
    let refusal: unknown;
    try {
      body(raw);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(BadRequestException);
    expect((refusal as BadRequestException).getResponse()).toMatchObject({ error: expect.stringMatching(message) });
  });

  it('accepts a valid query and body', () => {
    expect(query(parsedQuery({ consistency: 'stale' }))).toMatchObject({ consistency: 'stale' });
    expect(body({ value: 'alice' })).toMatchObject({ value: 'alice' });
  });

  it.each([
    ['an unknown consistency', { consistency: 'bogus' }, /consistency must be one of/],
    ['an unknown field', { x: '1' }, /unknown field "x"/],
    // `?__proto__=a&__proto__=b`: an own __proto__ key must not become the DTO's prototype and skip its rules.
    ['a __proto__ key hiding a bad consistency', { consistency: 'bogus', ['__proto__']: ['a', 'b'] }, /unknown field "__proto__"/],
    ['a lone __proto__ key', { ['__proto__']: 'a' }, /unknown field "__proto__"/],
  ])('refuses %s with 400', (_name, raw, message) => {
    let refusal: unknown;
    try {
      query(parsedQuery(raw));
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(BadRequestException);
    expect((refusal as BadRequestException).getResponse()).toMatchObject({ error: expect.stringMatching(message) });
  });
});

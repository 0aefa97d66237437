/**
 * The OpenAPI description of the KV routes' answers for a full disk: writes document 507 (the disk filter's
 * answer, mapKvError), reads do not (a read on a full node answers 503, or is served with ?consistency=stale).
 */
import { KvController } from './kv.controller';

/** Where @nestjs/swagger keeps a route's @ApiResponse decorators (its DECORATORS.API_RESPONSE, not exported). */
const API_RESPONSE = 'swagger/apiResponse';
const responses = (method: keyof KvController) => Reflect.getMetadata(API_RESPONSE, KvController.prototype[method]) as Record<string, { description: string }>;

describe('KvController OpenAPI: a full disk', () => {
  it.each(['put', 'delete'] as const)('%s documents 507 Insufficient Storage, nothing written', (method) => {
    expect(responses(method)['507'].description).toMatch(/disk is full.*nothing was written/);
  });

  it('get does not (a full node refuses linearizable reads with 503, documented there)', () => {
    expect(responses('get')['507']).toBeUndefined();
    expect(responses('get')['503'].description).toContain('consistency=stale');
  });
});

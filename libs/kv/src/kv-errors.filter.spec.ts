import { OverloadedError, RemovedFromClusterError } from '@app/consensus';
import { mapKvError } from './kv-errors.filter';
import { InvalidConditionError, PreconditionFailedError } from './kv.errors';

describe('mapKvError', () => {
  it.each([
    ['write', 'nothing was written'],
    ['read', 'nothing was read'],
  ] as const)('answers an overloaded %s 503 with Retry-After, outcome failed', (kind, says) => {
    const mapped = mapKvError(new OverloadedError(kind, 10000), { url: '/kv/k' });
    expect(mapped).toEqual({
      status: 503,
      body: { error: expect.stringContaining(says), outcome: 'failed' },
      headers: { 'retry-after': '1' },
    });
    expect(mapped!.body.error).toContain('MAX_PENDING_REQUESTS');
  });

  it('answers a node removed from the cluster 410, as the issue words it', () => {
    expect(mapKvError(new RemovedFromClusterError(), { url: '/kv/k' })).toEqual({
      status: 410,
      body: { error: 'Removed from the cluster', outcome: 'failed' },
    });
  });
});

describe('mapKvError: conditional writes', () => {
  it('answers a failed condition 412 with the key, its current modIndex (and as ETag), outcome failed', () => {
    expect(mapKvError(new PreconditionFailedError('k', 42, 'Precondition failed: If-Match: "40", but ...'), { url: '/kv/k' })).toEqual({
      status: 412,
      body: { error: 'Precondition failed: If-Match: "40", but ...', key: 'k', modIndex: 42, outcome: 'failed' },
      headers: { etag: '"42"' },
    });
  });

  it('answers a failed condition on a missing key with modIndex null and no ETag', () => {
    expect(mapKvError(new PreconditionFailedError('k', null, 'Precondition failed: x'), { url: '/kv/k' })).toEqual({
      status: 412,
      body: { error: 'Precondition failed: x', key: 'k', modIndex: null, outcome: 'failed' },
    });
  });

  it('answers a malformed condition header 400', () => {
    expect(mapKvError(new InvalidConditionError('If-Match must be ...'), { url: '/kv/k' })).toEqual({
      status: 400,
      body: { error: 'If-Match must be ...' },
    });
  });
});

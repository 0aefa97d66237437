import { OverloadedError, RemovedFromClusterError, StorageFullError } from '@app/consensus';
import { mapKvError } from './kv-errors.filter';
import { DataQuotaExceededError, InvalidConditionError, PreconditionFailedError } from './kv.errors';

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

  it('answers a write over MAX_DATA_BYTES 507 with the sizes, outcome failed, and no Retry-After (retrying alone does not help)', () => {
    expect(mapKvError(new DataQuotaExceededError(1000, 1024), { url: '/kv/k' })).toEqual({
      status: 507,
      body: {
        error: 'Data quota exceeded: the store holds 1000 of MAX_DATA_BYTES 1024 bytes; delete keys to make room',
        outcome: 'failed',
        dataBytes: 1000,
        quotaBytes: 1024,
      },
    });
  });

  describe('a node whose disk is full (StorageFullError)', () => {
    const full = new StorageFullError("ENOSPC: no space left on device, write '/data/wal/0001.wal'", 'ENOSPC');

    it.each(['PUT', 'DELETE', 'POST'])('answers a %s 507, outcome failed, naming the disk and saying reads are served', (method) => {
      expect(mapKvError(full, { url: '/kv/k', method })).toEqual({
        status: 507,
        body: {
          error:
            "This node's disk is full: ENOSPC: no space left on device, write '/data/wal/0001.wal'; " +
            'writes are refused until space returns (reads are served)',
          outcome: 'failed',
        },
      });
    });

    it('answers a linearizable GET 503 with Retry-After, naming the disk and suggesting ?consistency=stale', () => {
      const mapped = mapKvError(full, { url: '/kv/k', method: 'GET' });
      expect(mapped).toEqual({ status: 503, body: { error: expect.stringContaining("this node's disk is full (ENOSPC") }, headers: { 'retry-after': '1' } });
      expect(mapped!.body.error).toContain('?consistency=stale');
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

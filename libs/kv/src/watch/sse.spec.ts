import { formatChange, formatCompacted, formatStart, fromLastEventId, HEARTBEAT } from './sse';

describe('SSE frames', () => {
  it('formats a put with its index as id and the value as one line of JSON', () => {
    expect(formatChange({ type: 'put', key: 'a', value: 'line1\nline2\r', index: 7 })).toBe(
      'id: 7\nevent: put\ndata: {"key":"a","value":"line1\\nline2\\r","index":7}\n\n',
    );
  });

  it('formats a delete without a value', () => {
    expect(formatChange({ type: 'delete', key: 'a', index: 8 })).toBe('id: 8\nevent: delete\ndata: {"key":"a","index":8}\n\n');
  });

  it('starts with an id one below the first index, so that a resume before any event starts there again', () => {
    const start = formatStart(42, 1000);
    expect(start).toContain('\nid: 41\n');
    expect(start).toContain('retry: 1000\n');
    expect(start.endsWith('\n\n')).toBe(true);
    // No data field: a browser does not dispatch it as an event.
    expect(start).not.toContain('data:');
  });

  it('tells a compacted watcher where the history starts', () => {
    expect(formatCompacted(120, 'behind')).toBe('event: compacted\ndata: {"error":"behind","oldestIndex":120}\n\n');
    expect(HEARTBEAT).toBe(': ping\n\n');
  });

  it('reads Last-Event-ID as the index after it', () => {
    expect(fromLastEventId(undefined)).toBeUndefined();
    expect(fromLastEventId('41')).toBe(42);
    expect(fromLastEventId(' 0 ')).toBe(1);
    expect(fromLastEventId(['9', '3'])).toBe(10);
    expect(() => fromLastEventId('abc')).toThrow(RangeError);
    expect(() => fromLastEventId('-1')).toThrow(RangeError);
  });
});

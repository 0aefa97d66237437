import { SseEvent, SseParser } from './sse-parser';

describe('SseParser', () => {
  it('dispatches events split across chunks, with their id and type, and counts comments', () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    parser.push(': watching\nretry: 1000\nid: 4\n\nid: 5\nevent: pu');
    parser.push('t\ndata: {"key":"a"}\n\n: ping\n\nid: 6\r\nevent: delete\r\ndata: x\r');
    expect(events).toHaveLength(1);
    parser.push('\n\r\n');
    expect(events).toEqual([
      { event: 'put', data: '{"key":"a"}', id: '5' },
      { event: 'delete', data: 'x', id: '6' },
    ]);
    expect(parser.comments).toBe(2);
  });

  it('takes the id of a frame without data as the last event id, without dispatching it', () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    parser.push('id: 41\n\n');
    expect(events).toEqual([]);
    expect(parser.lastEventId).toBe('41');
  });

  it('joins several data lines and defaults the type to message', () => {
    const events: SseEvent[] = [];
    new SseParser((e) => events.push(e)).push('data: a\ndata: b\n\n');
    expect(events).toEqual([{ event: 'message', data: 'a\nb', id: '' }]);
  });
});

import { RaftNode } from '@app/consensus';
import { InvalidKeyError } from '../kv.errors';
import { WatchHub, WatchSink } from './watch-hub';
import { WatchService } from './watch.service';

function setup() {
  const raft = { applied: 7, isRemoved: false };
  const hub = new WatchHub();
  const service = new WatchService(hub, raft as unknown as RaftNode, {
    maxKeyBytes: 8,
    maxValueBytes: 100,
    watch: { heartbeatMs: 1000, maxEntries: 5 },
  });
  const frames: string[] = [];
  let ended = false;
  const sink: WatchSink = { write: (chunk) => (frames.push(chunk.toString()), true), end: () => (ended = true) };
  return { raft, hub, service, frames, sink, ended: () => ended };
}

describe('WatchService', () => {
  afterEach(() => jest.useRealTimers());

  it('accepts exactly one of key and prefix, within MAX_KEY_BYTES', () => {
    const { service } = setup();
    expect(service.filterOf('a', undefined)).toEqual({ key: 'a' });
    expect(service.filterOf(undefined, '')).toEqual({ prefix: '' });
    expect(() => service.filterOf(undefined, undefined)).toThrow(InvalidKeyError);
    expect(() => service.filterOf('a', 'b')).toThrow(InvalidKeyError);
    expect(() => service.filterOf('', undefined)).toThrow(InvalidKeyError);
    expect(() => service.filterOf(undefined, 'ééééé')).toThrow(/10 bytes; the limit is 8/);
  });

  it('starts watches at the node applied index, sends heartbeats, and configures the history', () => {
    jest.useFakeTimers();
    const { service, hub, frames, sink } = setup();
    service.onModuleInit();
    hub.subscribe({ key: 'a' }, hub.startIndex(undefined), sink);
    expect(frames[0]).toContain('id: 7\n');
    jest.advanceTimersByTime(2000);
    expect(frames.filter((f) => f === ': ping\n\n')).toHaveLength(2);
    for (let index = 8; index <= 20; index++) hub.changed({ type: 'put', key: 'b', value: 'v', index });
    expect(hub.historySize.entries).toBe(5);
    service.onModuleDestroy();
  });

  it('ends every stream once the node is removed, and on shutdown', () => {
    jest.useFakeTimers();
    const { service, hub, raft, frames, sink, ended } = setup();
    service.onModuleInit();
    hub.subscribe({ key: 'a' }, hub.startIndex(undefined), sink);
    raft.isRemoved = true;
    jest.advanceTimersByTime(600);
    expect(frames.at(-1)).toContain('event: closed');
    expect(ended()).toBe(true);
    const second = setup();
    second.service.onModuleInit();
    second.hub.subscribe({ prefix: '' }, second.hub.startIndex(undefined), second.sink);
    second.service.onModuleDestroy();
    expect(second.frames.at(-1)).toContain('shutting down');
    service.onModuleDestroy();
  });
});

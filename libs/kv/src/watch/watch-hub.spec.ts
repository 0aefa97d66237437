import { EntryType } from '@app/consensus';
import { encodeCommand, KvCommand } from '../kv-command';
import { KvStateMachine } from '../kv-state-machine';
import { KvChange } from './kv-change';
import { WatchFilter, WatchHub, WatchIndexCompactedError, WatchSink } from './watch-hub';

/** A sink that records frames and refuses more once `capacity` frames are unread. */
class FakeSink implements WatchSink {
  frames: string[] = [];
  ended = false;
  unread = 0;
  constructor(private capacity = Infinity) {}
  write(chunk: Buffer | string): boolean {
    this.frames.push(chunk.toString());
    this.unread++;
    return this.unread < this.capacity;
  }
  end(): void {
    this.ended = true;
  }
  /** The client read everything. */
  drain(): void {
    this.unread = 0;
  }
  /** The indexes of the change events received, in order. */
  get ids(): number[] {
    return this.frames.filter((f) => /^id: \d+\nevent: /.test(f)).map((f) => Number(/^id: (\d+)/.exec(f)![1]));
  }
  get events(): string[] {
    return this.frames.map((f) => /event: (\w+)/.exec(f)?.[1]).filter((e): e is string => e !== undefined);
  }
}

const put = (index: number, key: string, value = `v${index}`): KvChange => ({ type: 'put', key, value, index });
const del = (index: number, key: string): KvChange => ({ type: 'delete', key, index });

function watch(hub: WatchHub, filter: WatchFilter, fromIndex?: number, sink = new FakeSink()) {
  const watcher = hub.subscribe(filter, hub.startIndex(fromIndex), sink);
  return { watcher, sink };
}

describe('WatchHub dispatch', () => {
  it('hands each change to the watchers of its key and of every prefix of it, and to no one else', () => {
    const hub = new WatchHub();
    const a = watch(hub, { key: 'app/a' });
    const b = watch(hub, { key: 'app/b' });
    const app = watch(hub, { prefix: 'app/' });
    const ap = watch(hub, { prefix: 'ap' });
    const all = watch(hub, { prefix: '' });
    const other = watch(hub, { prefix: 'other/' });
    const longer = watch(hub, { prefix: 'app/a/long' });
    hub.changed(put(1, 'app/a'));
    hub.changed(put(2, 'app/b'));
    hub.changed(del(3, 'app/a'));
    hub.changed(put(4, 'zzz'));
    expect(a.sink.ids).toEqual([1, 3]);
    expect(b.sink.ids).toEqual([2]);
    expect(app.sink.ids).toEqual([1, 2, 3]);
    expect(ap.sink.ids).toEqual([1, 2, 3]);
    expect(all.sink.ids).toEqual([1, 2, 3, 4]);
    expect(other.sink.ids).toEqual([]);
    expect(longer.sink.ids).toEqual([]);
    expect(a.sink.events).toEqual(['put', 'delete']);
  });

  it('stops handing changes to a closed watcher, and forgets its prefix', () => {
    const hub = new WatchHub();
    const w = watch(hub, { prefix: 'p' });
    hub.changed(put(1, 'p1'));
    w.watcher.close();
    hub.changed(put(2, 'p2'));
    expect(w.sink.ids).toEqual([1]);
    expect(hub.watcherCount).toBe(0);
  });

  it('without fromIndex starts at the next applied index, and says so in its first frame', () => {
    const hub = new WatchHub();
    hub.bind(() => 10);
    const w = watch(hub, { key: 'k' });
    expect(w.sink.frames[0]).toContain('id: 10\n');
    hub.changed(put(11, 'k'));
    expect(w.sink.ids).toEqual([11]);
  });
});

describe('WatchHub history (fromIndex, Last-Event-ID, 410)', () => {
  it('replays the kept changes from fromIndex on, then follows live, without gap or duplicate', () => {
    const hub = new WatchHub();
    for (let index = 1; index <= 6; index++) hub.changed(put(index, index % 2 ? 'odd' : 'even'));
    const w = watch(hub, { key: 'odd' }, 3);
    expect(w.sink.ids).toEqual([3, 5]);
    hub.changed(put(7, 'odd'));
    expect(w.sink.ids).toEqual([3, 5, 7]);
  });

  it('a fromIndex ahead of the applied index skips the changes before it', () => {
    const hub = new WatchHub();
    hub.bind(() => 2);
    const w = watch(hub, { key: 'k' }, 5);
    for (let index = 3; index <= 6; index++) hub.changed(put(index, 'k'));
    expect(w.sink.ids).toEqual([5, 6]);
  });

  it('answers 410 with the oldest index for a fromIndex older than the history', () => {
    const hub = new WatchHub({ maxEntries: 2 });
    for (let index = 1; index <= 5; index++) hub.changed(put(index, 'k'));
    expect(() => hub.startIndex(3)).toThrow(WatchIndexCompactedError);
    try {
      hub.startIndex(3);
    } catch (error) {
      expect((error as WatchIndexCompactedError).oldestIndex).toBe(4);
    }
    expect(hub.startIndex(4)).toBe(4);
  });

  it('after a restore, serves only what follows the restore point, and ends open streams with event: compacted', async () => {
    const hub = new WatchHub();
    let applied = 3;
    hub.bind(() => applied);
    for (let index = 1; index <= 3; index++) hub.changed(put(index, 'k'));
    const w = watch(hub, { key: 'k' }, 1);
    hub.restored();
    applied = 100; // RaftNode sets its applied index right after the restore
    hub.changed(put(101, 'k')); // applied right after, in the same turn: not for the old watcher
    await Promise.resolve();
    expect(w.sink.ids).toEqual([1, 2, 3]);
    expect(w.sink.events.at(-1)).toBe('compacted');
    expect(w.sink.frames.at(-1)).toContain('"oldestIndex":101');
    expect(w.sink.ended).toBe(true);
    expect(() => hub.startIndex(100)).toThrow(WatchIndexCompactedError);
    expect(watch(hub, { key: 'k' }, 101).sink.ids).toEqual([101]);
  });
});

describe('WatchHub slow watchers (backpressure)', () => {
  it('a full sink makes the watcher read on from the history once drained, nothing lost or repeated', () => {
    const hub = new WatchHub();
    const sink = new FakeSink(3); // the start frame and two changes
    const w = watch(hub, { prefix: '' }, undefined, sink);
    for (let index = 1; index <= 6; index++) hub.changed(put(index, `k${index}`));
    expect(sink.ids).toEqual([1, 2]);
    sink.drain();
    w.watcher.resume();
    expect(sink.ids).toEqual([1, 2, 3, 4, 5]);
    sink.drain();
    w.watcher.resume();
    hub.changed(put(7, 'k7'));
    expect(sink.ids).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('a watcher whose next change is trimmed gets event: compacted and is closed: never a silent gap', () => {
    const hub = new WatchHub({ maxEntries: 3 });
    const sink = new FakeSink(2);
    watch(hub, { key: 'k' }, undefined, sink);
    hub.changed(put(1, 'k')); // written; the sink is now full
    hub.changed(put(2, 'k'));
    hub.changed(put(3, 'k'));
    hub.changed(put(4, 'k'));
    expect(sink.ended).toBe(false);
    hub.changed(put(5, 'k')); // trims 2, which it has not seen
    expect(sink.ids).toEqual([1]);
    expect(sink.events.at(-1)).toBe('compacted');
    expect(sink.frames.at(-1)).toContain('"oldestIndex":3');
    expect(sink.ended).toBe(true);
    expect(hub.watcherCount).toBe(0);
  });

  it('trimming changes a lagging watcher does not follow does not end it', () => {
    const hub = new WatchHub({ maxEntries: 2 });
    const sink = new FakeSink(2);
    const w = watch(hub, { key: 'k' }, undefined, sink);
    hub.changed(put(1, 'k')); // full now
    for (let index = 2; index <= 10; index++) hub.changed(put(index, 'other'));
    expect(sink.ended).toBe(false);
    hub.changed(put(11, 'k'));
    sink.drain();
    w.watcher.resume();
    expect(sink.ids).toEqual([1, 11]);
  });

  it('heartbeats live streams only, and closeAll ends every stream with event: closed', () => {
    const hub = new WatchHub();
    const live = watch(hub, { key: 'a' });
    const full = watch(hub, { key: 'b' }, undefined, new FakeSink(1));
    hub.heartbeat();
    expect(live.sink.frames.at(-1)).toBe(': ping\n\n');
    expect(full.sink.frames).toHaveLength(1);
    hub.closeAll('shutting down');
    expect(live.sink.events.at(-1)).toBe('closed');
    expect(live.sink.ended && full.sink.ended).toBe(true);
    expect(hub.watcherCount).toBe(0);
  });
});

describe('KvStateMachine → WatchHub', () => {
  const entry = (index: number, command: KvCommand) => ({ index, term: 1, type: EntryType.Normal, data: encodeCommand(command) });

  it('reports puts and deletes of existing keys with their log index; a delete of a missing key is no event', () => {
    const machine = new KvStateMachine();
    const hub = new WatchHub();
    machine.events = hub;
    const w = watch(hub, { prefix: '' });
    machine.apply(entry(1, { op: 'put', key: 'a', value: '1' }));
    machine.apply(entry(2, { op: 'delete', key: 'missing' }));
    // With a snapshot view alive, writes take the other path through apply().
    const view = machine.snapshot();
    machine.apply(entry(3, { op: 'put', key: 'a', value: '2' }));
    machine.apply(entry(4, { op: 'delete', key: 'a' }));
    machine.apply(entry(5, { op: 'delete', key: 'a' }));
    view.release();
    expect(w.sink.ids).toEqual([1, 3, 4]);
    expect(w.sink.events).toEqual(['put', 'put', 'delete']);
    expect(w.sink.frames.find((f) => f.startsWith('id: 3'))).toContain('"value":"2"');
  });

  it('tells the hub of a restore', async () => {
    const machine = new KvStateMachine();
    const hub = new WatchHub();
    machine.events = hub;
    hub.bind(() => 0);
    const w = watch(hub, { key: 'a' });
    const source = new KvStateMachine();
    source.apply(entry(1, { op: 'put', key: 'a', value: '1' }));
    const view = source.snapshot();
    machine.restore([...view.chunks()], () => undefined);
    view.release();
    await Promise.resolve();
    expect(w.sink.events).toEqual(['compacted']);
  });
});

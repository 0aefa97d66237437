import { Entry, EntryType, NoLeaderError, NotLeaderError, RaftNode, RaftStorage, StateType } from '@app/consensus';
import { SnapshotDecoder } from '@app/storage';
import { ModuleRef } from '@nestjs/core';
import { encodeCommand } from '../kv-command';
import { decodeKvSnapshot } from '../kv-snapshot-format';
import { KvStateMachine } from '../kv-state-machine';
import { KvBackupService } from './kv-backup.service';

const MEMBERS = ['http://a:1', 'http://b:2', 'http://c:3'];

/** The node as the backup sees it: a barrier the test resolves, the applied index, the core's status. */
class FakeNode {
  applied = 0;
  state = StateType.Leader;
  barriers: Array<{ resolve: (index: number) => void; reject: (error: Error) => void }> = [];

  readBarrier(): Promise<number> {
    return new Promise((resolve, reject) => this.barriers.push({ resolve, reject }));
  }

  raftStatus() {
    const progress = this.state === StateType.Leader ? Object.fromEntries(MEMBERS.map((m) => [m, {}])) : {};
    return { raftState: this.state, progress };
  }
}

interface Setup {
  node: FakeNode;
  sm: KvStateMachine;
  service: KvBackupService;
  /** Applies a command as the node loop does: the state machine, then the applied index. */
  apply(command: Parameters<typeof encodeCommand>[0]): void;
  terms: Map<number, number>;
  recorded: string[];
  views: { released: number; taken: number };
}

function setup(): Setup {
  const node = new FakeNode();
  const sm = new KvStateMachine();
  const terms = new Map<number, number>();
  const recorded: string[] = [];
  const storage = {
    storage: {
      term: (i: number) => {
        const t = terms.get(i);
        if (t === undefined) throw new Error(`no entry ${i}`);
        return t;
      },
      initialState: () => ({ hardState: { term: 0, vote: '', commit: 0 }, confState: { voters: recorded } }),
    },
  } as unknown as RaftStorage;
  const moduleRef = { get: () => storage } as unknown as ModuleRef;
  const service = new KvBackupService(node as unknown as RaftNode, sm, moduleRef);
  service.onModuleInit();
  const views = { released: 0, taken: 0 };
  const snapshot = sm.snapshot.bind(sm);
  jest.spyOn(sm, 'snapshot').mockImplementation(() => {
    const view = snapshot();
    views.taken++;
    const release = view.release.bind(view);
    view.release = () => {
      views.released++;
      release();
    };
    return view;
  });
  const apply = (command: Parameters<typeof encodeCommand>[0]) => {
    const index = node.applied + 1;
    const term = index < 4 ? 1 : 2;
    const entry: Entry = { index, term, type: EntryType.Normal, data: encodeCommand(command) };
    sm.apply(entry);
    terms.set(index, term);
    node.applied = index;
  };
  return { node, sm, service, apply, terms, recorded, views };
}

async function drain(gen: AsyncGenerator<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of gen) parts.push(part);
  return Buffer.concat(parts);
}

/** Decodes a whole snapshot file: its metadata and the map it holds. */
function decodeFile(bytes: Buffer) {
  const decoder = new SnapshotDecoder('backup');
  const chunks = decoder.push(bytes);
  const summary = decoder.end();
  return { summary, map: decodeKvSnapshot(chunks) };
}

describe('KvBackupService', () => {
  it('streams a sound snapshot file of the whole map at the applied index, with its term and the members', async () => {
    const { node, service, apply } = setup();
    apply({ op: 'put', key: 'a', value: '1' });
    apply({ op: 'put', key: 'b', value: '2' });
    apply({ op: 'put', key: 'a', value: '3' });
    apply({ op: 'delete', key: 'b' });
    apply({ op: 'put', key: 'c', value: 'x'.repeat(1000) });
    const pending = service.snapshot();
    node.barriers[0].resolve(5);
    const backup = await pending;
    expect(backup.metadata).toEqual({ index: 5, term: 2, confState: { voters: MEMBERS } });
    expect(backup.keys).toBe(2);
    const { summary, map } = decodeFile(await drain(backup.file()));
    expect(summary).toMatchObject({ index: 5, term: 2, confState: { voters: MEMBERS } });
    expect(map).toEqual(new Map([['a', '3'], ['c', 'x'.repeat(1000)]]));
  });

  it('takes the view and the index together, in the turn the barrier resolves: entries applied before it count, later ones do not', async () => {
    const { node, service, apply } = setup();
    apply({ op: 'put', key: 'a', value: '1' });
    const pending = service.snapshot();
    // Applied while the barrier waits, and in the same turn as its resolution (the loop goes on applying).
    apply({ op: 'put', key: 'b', value: '2' });
    node.barriers[0].resolve(2);
    apply({ op: 'put', key: 'c', value: '3' });
    const backup = await pending;
    // Applied after the view was taken, while the file streams.
    apply({ op: 'put', key: 'a', value: 'changed' });
    apply({ op: 'delete', key: 'b' });
    const { summary, map } = decodeFile(await drain(backup.file()));
    expect(summary.index).toBe(3);
    expect(map).toEqual(new Map([['a', '1'], ['b', '2'], ['c', '3']]));
  });

  it('releases the view once the file is drained, or closed early, and only once', async () => {
    const { node, service, apply, views } = setup();
    apply({ op: 'put', key: 'a', value: '1' });
    const first = service.snapshot();
    node.barriers[0].resolve(1);
    const backup = await first;
    await drain(backup.file());
    expect(views).toEqual({ taken: 1, released: 1 });
    backup.release();
    expect(views.released).toBe(1);

    const second = service.snapshot();
    node.barriers[1].resolve(1);
    const early = await second;
    const file = early.file();
    await file.next(); // the header record
    expect(views.released).toBe(1);
    await file.return(undefined); // the client went away
    expect(views).toEqual({ taken: 2, released: 2 });
  });

  it('takes no view when the barrier fails (a follower, no leader, a timeout)', async () => {
    const { node, service, views } = setup();
    const pending = service.snapshot();
    node.barriers[0].reject(new NotLeaderError('node2', 'http://b:2'));
    await expect(pending).rejects.toBeInstanceOf(NotLeaderError);
    expect(views.taken).toBe(0);
  });

  it('records the configuration the log holds when the leader stepped down after its barrier, else fails as a read does', async () => {
    const { node, service, apply, recorded, views } = setup();
    apply({ op: 'put', key: 'a', value: '1' });
    const first = service.snapshot();
    node.state = StateType.Follower;
    node.barriers[0].resolve(1);
    await expect(first).rejects.toBeInstanceOf(NoLeaderError);
    expect(views).toEqual({ taken: 1, released: 1 });

    recorded.push(...MEMBERS);
    const second = service.snapshot();
    node.barriers[1].resolve(1);
    const backup = await second;
    expect(backup.metadata.confState).toEqual({ voters: MEMBERS });
    backup.release();
  });
});

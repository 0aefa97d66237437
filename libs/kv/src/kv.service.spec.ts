import { Entry, EntryType, NotLeaderError, RaftNode } from '@app/consensus';
import { decodeCommand, encodeCommand } from './kv-command';
import { DataQuotaExceededError } from './kv.errors';
import { exceedsDataQuota, KvService } from './kv.service';
import { KvStateMachine } from './kv-state-machine';

describe('exceedsDataQuota', () => {
  it.each<[string, number, number, number | undefined, boolean]>([
    ['no quota: never', 10 ** 12, 10 ** 6, undefined, false],
    ['growing within the quota', 90, 10, 100, false],
    ['growing to exactly the quota', 90, 10, 100, false],
    ['growing one byte past it', 91, 10, 100, true],
    ['growing while already over it (in-flight writes overshot)', 150, 1, 100, true],
    ['not growing (same size) while over it', 150, 0, 100, false],
    ['shrinking while over it', 150, -20, 100, false],
  ])('%s', (_name, dataBytes, growth, quota, refused) => {
    expect(exceedsDataQuota(dataBytes, growth, quota)).toBe(refused);
  });
});

/**
 * KvService with a stand-in Raft node that commits every proposal at once into a real state machine, and can
 * be told it is not the leader.
 */
function service(maxDataBytes: number | undefined) {
  const machine = new KvStateMachine();
  const proposed: string[] = [];
  let index = 0;
  const raft = {
    isLeader: true,
    propose: async (data: Uint8Array) => {
      if (!raft.isLeader) throw new NotLeaderError('node2', 'http://localhost:3002');
      const command = decodeCommand(data)!;
      proposed.push(`${command.op} ${command.op === 'expire' ? '' : command.key}`);
      const entry: Entry = { term: 1, index: ++index, type: EntryType.Normal, data };
      return { index, result: machine.apply(entry) };
    },
  };
  const kv = new KvService(raft as unknown as RaftNode, machine, { maxKeyBytes: 64, maxValueBytes: 64, maxDataBytes });
  return { kv, machine, raft, proposed };
}

describe('KvService: the MAX_DATA_BYTES quota, checked on the leader before proposing', () => {
  it('refuses a put that would grow the data past the quota, without proposing it, and says how full the store is', async () => {
    const { kv, machine, proposed } = service(20);
    await kv.put('a', '123456789'); // 10 bytes
    await kv.put('b', '12345678'); // 9 bytes: 19 of 20
    const refusal = kv.put('c', '1');
    await expect(refusal).rejects.toThrow(DataQuotaExceededError);
    await expect(refusal).rejects.toMatchObject({ dataBytes: 19, quotaBytes: 20 });
    await expect(kv.put('b', '123456789x')).rejects.toThrow(
      'Data quota exceeded: the store holds 19 of MAX_DATA_BYTES 20 bytes; delete keys to make room',
    );
    expect(proposed).toEqual(['put a', 'put b']);
    expect(machine.dataBytes).toBe(19);
  });

  it('lets a full store be brought back: a put that does not grow, a delete, then new writes again', async () => {
    const { kv, machine } = service(20);
    await kv.put('a', '123456789');
    await kv.put('b', '123456789'); // 20 of 20
    await expect(kv.put('c', '')).rejects.toThrow(DataQuotaExceededError);
    await kv.put('a', '12345'); // shorter: 16
    await kv.put('b', 'abcdefghi'); // same length
    expect(machine.dataBytes).toBe(16);
    await kv.put('c', '12'); // grows to 19, within the quota
    await expect(kv.put('d', '12')).rejects.toThrow(DataQuotaExceededError);
    await expect(kv.delete('a')).resolves.toMatchObject({ existed: true });
    await kv.put('d', '12');
    expect(machine.dataBytes).toBe(16);
  });

  it('never refuses a delete, even over the quota', async () => {
    const { kv, machine } = service(5);
    await kv.put('k', '1234');
    // Overshoot as in-flight writes could make it: the machine applies a write the quota never saw.
    machine.apply({ term: 1, index: 100, type: EntryType.Normal, data: encodeCommand({ op: 'put', key: 'x', value: '99' }) });
    expect(machine.dataBytes).toBe(8);
    await expect(kv.delete('k')).resolves.toMatchObject({ existed: true });
    await expect(kv.delete('missing')).resolves.toMatchObject({ existed: false });
    expect(machine.dataBytes).toBe(3);
  });

  it('on a follower, does not decide: the write is redirected to the leader (NotLeaderError), whatever this copy holds', async () => {
    const { kv, raft } = service(5);
    await kv.put('k', '1234');
    raft.isLeader = false;
    await expect(kv.put('new', 'value')).rejects.toThrow(NotLeaderError);
  });

  it('without a quota, refuses nothing for size', async () => {
    const { kv, machine } = service(undefined);
    for (let i = 0; i < 50; i++) await kv.put(`key-${i}`, 'x'.repeat(64));
    expect(machine.dataBytes).toBe(10 * (5 + 64) + 40 * (6 + 64)); // key-0 … key-9, key-10 … key-49
  });
});

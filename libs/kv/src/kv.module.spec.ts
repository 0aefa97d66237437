import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { RAFT_STORAGE, RaftStorage, STATE_MACHINE } from '@app/consensus';
import { KvStateMachineModule } from './kv.module';
import { KvStateMachine } from './kv-state-machine';

/**
 * The wiring that lets a node restore a snapshot of the previous format: KvStateMachineModule's machine takes
 * the index of such a snapshot from the storage's newest snapshot, which the application provides elsewhere
 * (here a stand-in in a sibling module, as the storage module is in the node), looked up at restore time.
 */

const FORMAT_1 = readFileSync(join(__dirname, 'testdata', 'snapshot-format-1.bin'));

/** A storage whose newest snapshot is at `index()`: only what the lookup reads. */
function storageAt(index: () => number): RaftStorage {
  return { storage: { snapshot: () => ({ metadata: { index: index(), term: 3, confState: { voters: ['node1'] } } }) } } as unknown as RaftStorage;
}

describe('KvStateMachineModule', () => {
  it("restores a format 1 snapshot with the storage's newest snapshot index as every key's createIndex and modIndex", async () => {
    let index = 640;
    const storage = storageAt(() => index);
    @Module({ providers: [{ provide: RAFT_STORAGE, useValue: storage }], exports: [RAFT_STORAGE] })
    class FakeStorageModule {}
    const moduleRef = await Test.createTestingModule({ imports: [FakeStorageModule, KvStateMachineModule] }).compile();
    const machine = moduleRef.get(KvStateMachine);
    expect(moduleRef.get(STATE_MACHINE)).toBe(machine);

    const restore = () => new Promise<Error | undefined>((resolve) => machine.restore([FORMAT_1], resolve));
    expect(await restore()).toBeUndefined();
    expect(machine.getRecord('config/mode')).toEqual({ value: 'primary', createIndex: 640, modIndex: 640 });
    // Asked at each restore, not once at start: a later snapshot has a later index.
    index = 9000;
    expect(await restore()).toBeUndefined();
    expect(machine.getRecord('lock')).toEqual({ value: 'owner-1', createIndex: 9000, modIndex: 9000 });
  });

  it('without a storage in the application, refuses a format 1 snapshot and keeps the map', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [KvStateMachineModule] }).compile();
    const machine = moduleRef.get(KvStateMachine);
    const error = await new Promise<Error | undefined>((resolve) => machine.restore([FORMAT_1], resolve));
    expect(error?.message).toMatch(/RAFT_STORAGE|not found|Nest could not find/i);
    expect(machine.size).toBe(0);
  });
});

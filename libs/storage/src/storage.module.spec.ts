import { RAFT_STORAGE, RaftStorage, SNAPSHOT_FILES, SnapshotFiles } from '@app/consensus/ports';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { entry, MemoryLogger, TempDirs } from '../../../test/support/wal-test-helpers';
import { NodeStorage } from './node-storage';
import { NODE_STORAGE, StorageModule, WAL } from './storage.module';
import { Wal } from './wal';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

@Injectable()
class WalDirConfig {
  static dir = '';
  readonly dir = WalDirConfig.dir;
}

@Module({ providers: [WalDirConfig], exports: [WalDirConfig] })
class ConfigModule {}

describe('StorageModule', () => {
  it('provides the node storage under NODE_STORAGE and RAFT_STORAGE, its WAL under WAL and its snapshot files under SNAPSHOT_FILES, built from injected configuration, and closes it on shutdown', async () => {
    WalDirConfig.dir = join(dirs.make(), 'data');
    const moduleRef = await Test.createTestingModule({
      imports: [
        StorageModule.forRootAsync({
          imports: [ConfigModule],
          inject: [WalDirConfig],
          useFactory: (config: WalDirConfig) => ({ dir: config.dir, segmentBytes: 1 << 20, logger: new MemoryLogger() }),
        }),
      ],
    }).compile();
    const app = await moduleRef.init();

    const wal = app.get<Wal>(WAL);
    expect(wal).toBeInstanceOf(Wal);
    expect(wal.dir).toBe(WalDirConfig.dir);
    // The node loop's port writes through that Wal: a save through it is durable and visible in the Wal.
    const port = app.get<RaftStorage>(RAFT_STORAGE);
    await new Promise<void>((resolve, reject) =>
      port.save({ term: 1, vote: '', commit: 0 }, [entry(1, 1)], (error) => (error ? reject(error) : resolve())),
    );
    expect(port).toBeInstanceOf(NodeStorage);
    expect(app.get(NODE_STORAGE)).toBe(port);
    expect((port as NodeStorage).wal).toBe(wal);
    expect(app.get<SnapshotFiles>(SNAPSHOT_FILES)).toBe((port as NodeStorage).snapshotFiles);
    expect(port.storage.lastIndex()).toBe(1);
    expect(wal.storage.lastIndex()).toBe(1);
    expect(existsSync(join(WalDirConfig.dir, 'snap'))).toBe(true);
    expect(existsSync(join(WalDirConfig.dir, 'LOCK'))).toBe(true);

    await app.close();
    expect(existsSync(join(WalDirConfig.dir, 'LOCK'))).toBe(false);
    await expect(wal.save(undefined, [entry(2, 1)])).rejects.toThrow('is closed');
    const again = await Wal.open(WalDirConfig.dir, { logger: new MemoryLogger() });
    expect(again.storage.lastIndex()).toBe(1);
    await again.close();
  });
});

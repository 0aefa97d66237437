/**
 * Readiness on a full disk: WAL_DIR is still writable (access() needs no space), but a node whose disk
 * refuses writes is frozen, so the `wal` check fails with the disk's error until space returns.
 */
import { ServiceUnavailableException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftNodeService } from '@app/consensus';
import { nodeConfig } from '@app/config';
import { HealthController } from './health.controller';

describe('GET /health/ready on a full disk', () => {
  const walDir = mkdtempSync(join(tmpdir(), 'health-'));
  afterAll(() => rmSync(walDir, { recursive: true, force: true }));

  async function controller(storageFull?: { reason: string; code: string; sinceMs: number }): Promise<HealthController> {
    const raft = {
      failure: undefined,
      status: () => ({ state: 'StateLeader', term: 3, lead: 'n1', leaderName: 'node1', commit: 7, applied: 7, storageFull }),
    };
    const module = await Test.createTestingModule({
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController],
      providers: [
        { provide: RaftNodeService, useValue: raft },
        { provide: nodeConfig.KEY, useValue: { walDir } },
      ],
    }).compile();
    return module.get(HealthController);
  }

  it('is ready while the disk takes writes', async () => {
    const result = await (await controller()).ready();
    expect(result).toMatchObject({ status: 'ok', info: { wal: { status: 'up', dir: walDir } } });
  });

  it("fails the wal check with the disk's error while the node is frozen", async () => {
    const full = { reason: "ENOSPC: no space left on device, write '/data/wal/1.wal'", code: 'ENOSPC', sinceMs: 12_400 };
    const error = await (await controller(full)).ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ServiceUnavailableException);
    const body = (error as ServiceUnavailableException).getResponse() as Record<string, any>;
    expect(body.status).toBe('error');
    expect(body.info).toMatchObject({ raft: { status: 'up' }, apply: { status: 'up' } });
    expect(body.error.wal).toEqual({
      status: 'down',
      dir: walDir,
      storage: 'full',
      message: "the disk is full (ENOSPC: no space left on device, write '/data/wal/1.wal') for 12 s: writes are refused until space returns",
    });
  });
});

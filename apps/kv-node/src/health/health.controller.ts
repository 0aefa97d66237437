import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { RaftNodeService } from '@app/consensus';
import { nodeConfig, NodeConfigType } from '@app/config';
import { access, constants } from 'node:fs/promises';

/** A node more entries behind its commit index than this is not ready to serve. */
export const MAX_APPLY_LAG = 1000;

@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly raft: RaftNodeService,
    @Inject(nodeConfig.KEY) private readonly config: NodeConfigType,
  ) {}

  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process serves HTTP (a Docker / Kubernetes liveness probe)' })
  live() {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary:
      'Readiness: a leader is known, the state machine is caught up with the commit index, WAL_DIR is writable ' +
      '(and the disk takes writes: a node whose disk is full is frozen and not ready)',
  })
  ready() {
    return this.health.check([() => this.raftCheck(), () => this.applyCheck(), () => this.walCheck()]);
  }

  private raftCheck(): HealthIndicatorResult {
    const indicator = this.indicators.check('raft');
    const failure = this.raft.failure;
    if (failure) return indicator.down({ message: failure.message });
    const status = this.raft.status();
    const details = { state: status.state, term: status.term, leader: status.leaderName ?? status.lead ?? null };
    return status.lead ? indicator.up(details) : indicator.down({ ...details, message: 'no leader known' });
  }

  private applyCheck(): HealthIndicatorResult {
    const indicator = this.indicators.check('apply');
    const { commit, applied } = this.raft.status();
    const details = { commitIndex: commit, appliedIndex: applied, lag: commit - applied };
    return commit - applied <= MAX_APPLY_LAG ? indicator.up(details) : indicator.down(details);
  }

  private async walCheck(): Promise<HealthIndicatorResult> {
    const indicator = this.indicators.check('wal');
    // The directory may well be writable (access() needs no space) while the disk refuses every append.
    const full = this.raft.status().storageFull;
    if (full) {
      return indicator.down({
        dir: this.config.walDir,
        storage: 'full',
        message: `the disk is full (${full.reason}) for ${Math.round(full.sinceMs / 1000)} s: writes are refused until space returns`,
      });
    }
    try {
      await access(this.config.walDir, constants.W_OK);
      return indicator.up({ dir: this.config.walDir });
    } catch (error) {
      return indicator.down({ dir: this.config.walDir, message: (error as Error).message });
    }
  }
}

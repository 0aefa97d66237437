import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ClusterStatusDto } from './cluster-status.dto';
import { ClusterStatusService } from './cluster-status.service';

@ApiTags('cluster')
@Controller('cluster')
export class ClusterStatusController {
  constructor(private readonly clusterStatus: ClusterStatusService) {}

  @Get('status')
  @ApiOperation({
    summary:
      "Every member's GET /status, asked in parallel by this node; a member that does not answer within about " +
      'one election timeout is listed as unreachable, with the error',
  })
  @ApiOkResponse({ type: ClusterStatusDto })
  status(): Promise<ClusterStatusDto> {
    return this.clusterStatus.status();
  }
}

import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Post,
  Req,
  Res,
  UseFilters,
  UseGuards,
  ValidationError,
  ValidationPipe,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiGoneResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MembersAuthGuard } from './members-auth.guard';
import { MembersErrorsFilter } from './members-errors.filter';
import { AddMemberAnswerDto, AddMemberDto, MembersDto, MembershipErrorDto, PromoteAnswerDto, RemoveAnswerDto } from './members.dto';
import { ClusterMembersService } from './members.service';

/** The security scheme of these routes in the OpenAPI document (apps/kv-node/src/swagger.ts declares it). */
export const MEMBERSHIP_SECURITY = 'cluster-admin';

/** Every problem in one `error` line (each names its field), as the KV routes answer a bad body. */
function validationFailed(errors: ValidationError[]): BadRequestException {
  const list = errors.flatMap((e) =>
    Object.values(e.constraints ?? {}).map((m) => m.replace(/^property (\S+) should not exist$/, 'unknown field "$1"')),
  );
  return new BadRequestException({ error: list.join('; '), details: list });
}

const validation = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, stopAtFirstError: true, exceptionFactory: validationFailed });

const nodeIdParam = ApiParam({ name: 'nodeId', description: "The member's NODE_ID.", example: 'node4' });
const notLeader = ApiResponse({ status: 307, description: 'This node is a follower: Location is the same request on the leader.', type: MembershipErrorDto });
const unavailable = ApiServiceUnavailableResponse({
  description: 'No leader (Retry-After: 1), shutting down, or not committed in time (`outcome: "unknown"`: it may still take effect)',
  type: MembershipErrorDto,
});
const refused = ApiConflictResponse({
  description: 'Refused by the leader: another change is pending, the id or URL is in use, the learner has not caught up, or too few reachable voters would be left',
  type: MembershipErrorDto,
});

@ApiTags('cluster membership')
@ApiBearerAuth(MEMBERSHIP_SECURITY)
@ApiUnauthorizedResponse({ type: MembershipErrorDto, description: 'With CLUSTER_TOKEN or API_TOKENS_FILE set: no token, or an unknown one' })
@ApiForbiddenResponse({ type: MembershipErrorDto, description: 'With API_TOKENS_FILE set: an API token whose role is not admin' })
@ApiGoneResponse({ type: MembershipErrorDto, description: 'This node was removed from the cluster' })
@Controller('cluster/members')
@UseGuards(MembersAuthGuard)
@UseFilters(MembersErrorsFilter)
export class ClusterMembersController {
  constructor(private readonly membership: ClusterMembersService) {}

  @Get()
  @ApiOperation({
    summary: 'The members as this node has applied them',
    description: 'Any node answers. On the leader each member also has its match index and the time since it was last heard from.',
  })
  @ApiOkResponse({ type: MembersDto })
  list(): MembersDto {
    return this.membership.list();
  }

  @Post()
  @ApiOperation({
    summary: 'Add a member (a learner by default)',
    description:
      'Answered once the change is committed and applied on the leader (a follower answers 307). A joining node ' +
      '(JOIN) asks for itself: without `url`, its URL is `http://<the address the request came from>:<port>`. ' +
      'Asking again for a member that is already there as asked (same URL; a voter, or a learner when a learner ' +
      'was asked) answers 200 with the same shape.',
  })
  @ApiCreatedResponse({ type: AddMemberAnswerDto, description: 'Added' })
  @ApiOkResponse({ type: AddMemberAnswerDto, description: 'Already a member as asked (a repeated request)' })
  @ApiBadRequestResponse({ type: MembershipErrorDto, description: 'Invalid body: the error names the field' })
  @notLeader
  @refused
  @unavailable
  async add(
    @Body(validation) body: AddMemberDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<AddMemberAnswerDto> {
    const { created, answer } = await this.membership.add(body, request.ip);
    if (!created) void reply.status(200);
    return answer;
  }

  @Post(':nodeId/promote')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Promote a learner to voter',
    description: 'Refused (409) until the learner has caught up with the leader. A member that is a voter already is answered 200.',
  })
  @nodeIdParam
  @ApiOkResponse({ type: PromoteAnswerDto })
  @ApiNotFoundResponse({ type: MembershipErrorDto, description: 'No such member' })
  @notLeader
  @refused
  @unavailable
  promote(@Param('nodeId') nodeId: string): Promise<PromoteAnswerDto> {
    return this.membership.promote(nodeId);
  }

  @Delete(':nodeId')
  @ApiOperation({
    summary: 'Remove a member',
    description:
      'Refused (409) when the voters left could not form a quorum of the members reachable now. A leader that ' +
      'removes itself answers, then steps down; the removed node stops taking part and answers 410.',
  })
  @nodeIdParam
  @ApiOkResponse({ type: RemoveAnswerDto })
  @ApiNotFoundResponse({ type: MembershipErrorDto, description: 'No such member' })
  @notLeader
  @refused
  @unavailable
  remove(@Param('nodeId') nodeId: string): Promise<RemoveAnswerDto> {
    return this.membership.remove(nodeId);
  }
}

import { BadRequestException, Controller, HttpCode, HttpException, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiHeader, ApiOperation, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { FastifyRequest } from 'fastify';
import { HttpPeerTransport } from './http-peer-transport';
import { MessageDecodeError } from './message-codec';
import { PeerAuthGuard } from './peer-auth.guard';
import { PEER_HEADERS, PEER_MESSAGES_PATH } from './peer-protocol';

/** The peer endpoint: members POST batches of Raft messages here. Not for clients. */
@ApiTags('raft (peer)')
@Controller()
@UseGuards(PeerAuthGuard)
export class PeerController {
  constructor(private readonly transport: HttpPeerTransport) {}

  @Post(PEER_MESSAGES_PATH)
  @HttpCode(204)
  @ApiOperation({
    summary: 'Deliver a batch of Raft messages from a peer (cluster-internal)',
    description:
      'Body: a binary batch of Raft messages (see docs/cluster-rpc.md). Each request identifies its sender with ' +
      'the x-raft-* headers; with CLUSTER_TOKEN set, it must carry `Authorization: Bearer <token>`.',
  })
  @ApiSecurity('cluster-token')
  @ApiConsumes('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiHeader({ name: PEER_HEADERS.from, description: "Sender's advertised URL", required: true })
  @ApiHeader({ name: PEER_HEADERS.nodeId, description: "Sender's NODE_ID", required: true })
  @ApiHeader({ name: PEER_HEADERS.clusterId, description: "Fingerprint of the sender's member set", required: true })
  @ApiResponse({ status: 204, description: 'Accepted' })
  @ApiResponse({ status: 400, description: 'Malformed batch' })
  @ApiResponse({ status: 401, description: 'Missing or wrong cluster token' })
  @ApiResponse({ status: 403, description: 'Sender is not a member' })
  @ApiResponse({ status: 409, description: 'Sender belongs to another cluster configuration, or reuses this NODE_ID' })
  receive(@Req() request: FastifyRequest): void {
    if (!Buffer.isBuffer(request.body)) {
      throw new BadRequestException('peer messages must be sent as application/octet-stream');
    }
    let rejection;
    try {
      rejection = this.transport.deliver(request.headers, request.body);
    } catch (error) {
      if (error instanceof MessageDecodeError) throw new BadRequestException(error.message);
      throw error;
    }
    if (rejection) throw new HttpException(rejection.error, rejection.status);
  }
}

import { Controller, HttpException, Post, Req, Res, UnsupportedMediaTypeException, UseGuards } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiHeader, ApiOperation, ApiProduces, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { RouteConfig } from '@nestjs/platform-fastify';
import { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { HttpPeerTransport } from './http-peer-transport';
import { PeerAuthGuard } from './peer-auth.guard';
import {
  PEER_HEADERS,
  PEER_SNAPSHOT_CONTENT_TYPE,
  PEER_SNAPSHOT_PATH,
  PEER_STREAM_CONTENT_TYPE,
  PEER_STREAM_PATH,
  STREAMED_BODY_ROUTE,
} from './peer-protocol';

/**
 * The peer endpoints: each member keeps one stream of Raft messages open here, and sends snapshots here, one
 * request each. Not for clients.
 */
@ApiTags('raft (peer)')
@Controller()
@UseGuards(PeerAuthGuard)
export class PeerController {
  constructor(private readonly transport: HttpPeerTransport) {}

  @Post(PEER_STREAM_PATH)
  @RouteConfig(STREAMED_BODY_ROUTE)
  @ApiOperation({
    summary: 'Stream Raft messages from a peer (cluster-internal)',
    description:
      'A long-lived request: its chunked body is a sequence of frames, each a binary batch of Raft messages behind ' +
      'its 32-bit length (docs/cluster-rpc.md). The answer is 200 at once, then one pong byte every 100 ms for as ' +
      'long as the stream is open. Only the cluster members\' addresses may open one (403 otherwise, before the body ' +
      'is read; PEER_ALLOWED_ADDRESSES / PEER_ALLOW_ANY widen it). The x-raft-* headers identify the sender; with ' +
      'CLUSTER_TOKEN set, the request must carry `Authorization: Bearer <token>`.',
  })
  @ApiSecurity('cluster-token')
  @ApiConsumes(PEER_STREAM_CONTENT_TYPE)
  @ApiProduces('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiHeader({ name: PEER_HEADERS.from, description: "Sender's advertised URL", required: true })
  @ApiHeader({ name: PEER_HEADERS.nodeId, description: "Sender's NODE_ID", required: true })
  @ApiHeader({ name: PEER_HEADERS.clusterId, description: "Fingerprint of the sender's member set", required: true })
  @ApiResponse({ status: 200, description: 'Stream accepted; the answer carries pongs until either side closes it' })
  @ApiResponse({ status: 401, description: 'Missing or wrong cluster token' })
  @ApiResponse({ status: 403, description: "Sender connects from an address that is no member's, or its URL is not a member's" })
  @ApiResponse({ status: 409, description: 'Sender belongs to another cluster configuration, or reuses this NODE_ID' })
  @ApiResponse({ status: 415, description: `Body is not ${PEER_STREAM_CONTENT_TYPE}` })
  stream(@Req() request: FastifyRequest, @Res() reply: FastifyReply): void {
    if (!(request.body instanceof Readable)) {
      throw new UnsupportedMediaTypeException(`peer messages must be streamed as ${PEER_STREAM_CONTENT_TYPE}`);
    }
    const admitted = this.transport.admit(request.headers);
    if ('status' in admitted) throw new HttpException(admitted.error, admitted.status);
    // From here on the stream is ours: Fastify must neither answer nor time the request out.
    reply.hijack();
    this.transport.serve(admitted.from, request.body, reply.raw);
  }

  @Post(PEER_SNAPSHOT_PATH)
  @RouteConfig(STREAMED_BODY_ROUTE)
  @ApiOperation({
    summary: 'Receive a snapshot from the leader (cluster-internal)',
    description:
      'One snapshot transfer: the chunked body is one frame holding the MsgSnap (its 32-bit length, then a binary ' +
      'message batch of exactly that message, as on the stream) followed by the bytes of the snapshot file ' +
      '(docs/cluster-rpc.md). The file is written aside as it arrives and verified; only then is the MsgSnap handed ' +
      'to the node and the answer 200 given. A newer transfer from the same sender cuts this one. Admitted like the ' +
      'stream: members\' addresses, CLUSTER_TOKEN, the x-raft-* headers.',
  })
  @ApiSecurity('cluster-token')
  @ApiConsumes(PEER_SNAPSHOT_CONTENT_TYPE)
  @ApiProduces('application/json')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiHeader({ name: PEER_HEADERS.from, description: "Sender's advertised URL", required: true })
  @ApiHeader({ name: PEER_HEADERS.nodeId, description: "Sender's NODE_ID", required: true })
  @ApiHeader({ name: PEER_HEADERS.clusterId, description: "Fingerprint of the sender's member set", required: true })
  @ApiResponse({
    status: 200,
    description: 'The whole file was received and verified, and the MsgSnap handed to the node',
    schema: { type: 'object', properties: { index: { type: 'integer' }, term: { type: 'integer' } }, required: ['index', 'term'] },
  })
  @ApiResponse({
    status: 400,
    description: 'Bad leading frame, not one MsgSnap from the sender to this node, or a file that fails verification or holds another snapshot',
  })
  @ApiResponse({ status: 401, description: 'Missing or wrong cluster token' })
  @ApiResponse({ status: 403, description: "Sender connects from an address that is no member's, or its URL is not a member's" })
  @ApiResponse({ status: 409, description: 'Sender belongs to another cluster configuration, or reuses this NODE_ID' })
  @ApiResponse({ status: 415, description: `Body is not ${PEER_SNAPSHOT_CONTENT_TYPE}` })
  @ApiResponse({ status: 503, description: 'This node cannot take the snapshot now (no snapshot storage, storage error, stopping)' })
  async snapshot(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    if (!(request.body instanceof Readable)) {
      throw new UnsupportedMediaTypeException(`snapshots must be sent as ${PEER_SNAPSHOT_CONTENT_TYPE}`);
    }
    const admitted = this.transport.admit(request.headers);
    if ('status' in admitted) throw new HttpException(admitted.error, admitted.status);
    const answer = await this.transport.receiveSnapshot(admitted.from, request.body);
    // A cut or replaced transfer has no connection left to answer on.
    if (reply.raw.destroyed) return;
    // A refusal may come before the body is read: without `close`, Node would read (and drop) the rest of it.
    if (answer.status !== 200) void reply.header('connection', 'close');
    void reply.code(answer.status).send(answer.body);
  }
}

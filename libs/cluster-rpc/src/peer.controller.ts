import { Controller, Get, HttpException, Post, Req, Res, UnsupportedMediaTypeException, UseGuards } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiHeader, ApiOkResponse, ApiOperation, ApiProduces, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { RouteConfig } from '@nestjs/platform-fastify';
import { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { ClusterBootstrapService } from './cluster-bootstrap.service';
import { HttpPeerTransport } from './http-peer-transport';
import { PeerAuthGuard } from './peer-auth.guard';
import {
  HelloAnswer,
  PEER_HEADERS,
  PEER_HELLO_PATH,
  PEER_SNAPSHOT_CONTENT_TYPE,
  PEER_SNAPSHOT_PATH,
  PEER_STREAM_CONTENT_TYPE,
  PEER_STREAM_PATH,
  STREAMED_BODY_ROUTE,
} from './peer-protocol';

/**
 * The peer endpoints: each member keeps one stream of Raft messages open here, and sends snapshots here, one
 * request each; a node finding its cluster asks who answers here. Not for clients.
 */
@ApiTags('raft (peer)')
@Controller()
@UseGuards(PeerAuthGuard)
export class PeerController {
  constructor(
    private readonly transport: HttpPeerTransport,
    private readonly bootstrap: ClusterBootstrapService,
  ) {}

  @Get(PEER_HELLO_PATH)
  @ApiOperation({
    summary: 'Who answers: NODE_ID and cluster (cluster-internal)',
    description:
      'Asked by nodes discovering their peers at first start (PEER_URLS): this node\'s NODE_ID, a random value drawn ' +
      'once per process (a node that gets its own back has asked itself), and the cluster it belongs to with that ' +
      'cluster\'s initial voters (null while it has none: it is discovering or joining). With CLUSTER_TOKEN set, the ' +
      'request must carry `Authorization: Bearer <token>`; no address check (the asker is not a member yet). Under ' +
      'mutual TLS (TLS_CA_FILE), a client certificate signed by the cluster CA is required (403 otherwise).',
  })
  @ApiSecurity('cluster-token')
  @ApiOkResponse({
    description: 'This node',
    schema: {
      type: 'object',
      properties: {
        nodeId: { type: 'string', example: 'node1' },
        instance: { type: 'string', example: '9f2c4e7a0b1d4c5e8f6a7b3c2d1e0f9a' },
        clusterId: { type: 'string', nullable: true, example: '3f9a1c2b4d5e6f70' },
        initialVoters: { type: 'array', items: { type: 'string' }, nullable: true, example: ['node1', 'node2', 'node3'] },
      },
      required: ['nodeId', 'instance', 'clusterId', 'initialVoters'],
    },
  })
  @ApiHeader({ name: PEER_HEADERS.from, description: "The asker's NODE_ID (a duplicate of this node's is logged)", required: false })
  @ApiHeader({ name: PEER_HEADERS.instance, description: "The asker's own hello instance", required: false })
  @ApiResponse({ status: 401, description: 'Missing or wrong cluster token' })
  @ApiResponse({ status: 403, description: 'Mutual TLS: no client certificate signed by the cluster CA' })
  hello(@Req() request: FastifyRequest): HelloAnswer {
    const header = (name: string) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    return this.bootstrap.hello({
      nodeId: header(PEER_HEADERS.from),
      instance: header(PEER_HEADERS.instance),
      address: request.socket.remoteAddress,
    });
  }

  @Post(PEER_STREAM_PATH)
  @RouteConfig(STREAMED_BODY_ROUTE)
  @ApiOperation({
    summary: 'Stream Raft messages from a peer (cluster-internal)',
    description:
      'A long-lived request: its chunked body is a sequence of frames, each a binary batch of Raft messages behind ' +
      'its 32-bit length (docs/cluster-rpc.md). The answer is 200 at once, then one pong byte every 100 ms for as ' +
      'long as the stream is open. Only the cluster members\' addresses may open one (403 otherwise, before the body ' +
      'is read; PEER_ALLOWED_ADDRESSES / PEER_ALLOW_ANY widen it). The x-raft-* headers name the sender (its NODE_ID) ' +
      'and its cluster; with ' +
      'CLUSTER_TOKEN set, the request must carry `Authorization: Bearer <token>`.',
  })
  @ApiSecurity('cluster-token')
  @ApiConsumes(PEER_STREAM_CONTENT_TYPE)
  @ApiProduces('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiHeader({ name: PEER_HEADERS.from, description: "Sender's NODE_ID", required: true })
  @ApiHeader({ name: PEER_HEADERS.clusterId, description: "Id of the sender's cluster", required: true })
  @ApiResponse({ status: 200, description: 'Stream accepted; the answer carries pongs until either side closes it' })
  @ApiResponse({ status: 401, description: 'Missing or wrong cluster token' })
  @ApiResponse({
    status: 403,
    description:
      "Sender connects from an address that is no member's, or its NODE_ID is not a member's; under mutual TLS, it presented " +
      'no client certificate signed by the cluster CA',
  })
  @ApiResponse({ status: 409, description: 'Sender belongs to another cluster, or reuses this NODE_ID' })
  @ApiResponse({ status: 415, description: `Body is not ${PEER_STREAM_CONTENT_TYPE}` })
  @ApiResponse({ status: 503, description: 'This node has not found its cluster yet (it is discovering or joining)' })
  stream(@Req() request: FastifyRequest, @Res() reply: FastifyReply): void {
    if (!(request.body instanceof Readable)) {
      throw new UnsupportedMediaTypeException(`peer messages must be streamed as ${PEER_STREAM_CONTENT_TYPE}`);
    }
    const admitted = this.transport.admit(request.headers, request.socket.remoteAddress);
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
  @ApiHeader({ name: PEER_HEADERS.from, description: "Sender's NODE_ID", required: true })
  @ApiHeader({ name: PEER_HEADERS.clusterId, description: "Id of the sender's cluster", required: true })
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
  @ApiResponse({
    status: 403,
    description:
      "Sender connects from an address that is no member's, or its NODE_ID is not a member's; under mutual TLS, it presented " +
      'no client certificate signed by the cluster CA',
  })
  @ApiResponse({ status: 409, description: 'Sender belongs to another cluster, or reuses this NODE_ID' })
  @ApiResponse({ status: 415, description: `Body is not ${PEER_SNAPSHOT_CONTENT_TYPE}` })
  @ApiResponse({
    status: 503,
    description: 'This node cannot take the snapshot now (no snapshot storage, storage error, stopping, cluster not found yet)',
  })
  async snapshot(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    if (!(request.body instanceof Readable)) {
      throw new UnsupportedMediaTypeException(`snapshots must be sent as ${PEER_SNAPSHOT_CONTENT_TYPE}`);
    }
    const admitted = this.transport.admit(request.headers, request.socket.remoteAddress);
    if ('status' in admitted) throw new HttpException(admitted.error, admitted.status);
    const answer = await this.transport.receiveSnapshot(admitted.from, request.body);
    // A cut or replaced transfer has no connection left to answer on.
    if (reply.raw.destroyed) return;
    // A refusal may come before the body is read: without `close`, Node would read (and drop) the rest of it.
    if (answer.status !== 200) void reply.header('connection', 'close');
    void reply.code(answer.status).send(answer.body);
  }
}

import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Put, Query, Res, UseFilters, UsePipes } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiPayloadTooLargeResponse,
  ApiQuery,
  ApiForbiddenResponse,
  ApiRequestTimeoutResponse,
  ApiResponse,
  ApiUnauthorizedResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { RouteSchema } from '@nestjs/platform-fastify';
import { FastifyReply } from 'fastify';
import {
  DataQuotaExceededDto,
  DeleteResultDto,
  ErrorDto,
  KeyValueDto,
  NotLeaderDto,
  PreconditionFailedDto,
  PutResultDto,
  UnavailableDto,
} from './dto/kv-responses.dto';
import { etag, parseConditionHeaders } from './conditional-headers';
import { LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT, ListQueryDto } from './dto/list-query.dto';
import { ListResultDto } from './dto/list-result.dto';
import { PutValueDto } from './dto/put-value.dto';
import { ReadQueryDto } from './dto/read-query.dto';
import { KeyNotFoundError } from './kv.errors';
import { KvErrorsFilter } from './kv-errors.filter';
import { KvService } from './kv.service';
import { DtoValidationPipe } from './validation';
import { MAX_TTL_SECONDS, parseIdempotencyKey, parseTtl } from './write-options';
import { REPLAYED_HEADER } from './kv-errors.filter';

/**
 * Response schemas of the hot routes, so that Fastify serializes their answers with a compiled serializer
 * (fast-json-stringify) instead of JSON.stringify. Only the 200 answers; errors keep the generic path.
 */
const writeResultSchema = {
  type: 'object',
  properties: {
    success: { type: 'boolean' },
    index: { type: 'integer' },
    existed: { type: 'boolean' },
    createIndex: { type: 'integer' },
    modIndex: { type: 'integer' },
  },
  required: ['success', 'index'],
} as const;
const keyValueSchema = {
  type: 'object',
  properties: {
    key: { type: 'string' },
    value: { type: 'string' },
    createIndex: { type: 'integer' },
    modIndex: { type: 'integer' },
    ttl: { type: 'integer' },
    expiresAt: { type: 'string' },
  },
  required: ['key', 'value', 'createIndex', 'modIndex'],
} as const;

/** Fields added to an item (createIndex, modIndex, ...) must be added here too: the serializer drops others. */
const listResultSchema = {
  type: 'object',
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        properties: { key: { type: 'string' }, value: { type: 'string' }, createIndex: { type: 'integer' }, modIndex: { type: 'integer' } },
        required: ['key'],
      },
    },
    more: { type: 'boolean' },
    next: { type: ['string', 'null'] },
  },
  required: ['items', 'more', 'next'],
} as const;

const keyParam = ApiParam({
  name: 'key',
  description: 'The key (1 to MAX_KEY_BYTES bytes of UTF-8; percent-encode "/" and other reserved characters).',
  example: 'username',
});
const notLeader = ApiResponse({
  status: 307,
  description: 'This node is a follower: the Location header points at the same request on the leader.',
  type: NotLeaderDto,
});
const diskFull = ApiResponse({
  status: 507,
  description:
    "Insufficient Storage: this node's disk is full (it is frozen until space returns); nothing was written " +
    '(`outcome: "failed"`). Reads are still served; another leader may be elected meanwhile.',
  type: UnavailableDto,
});
const ifMatch = ApiHeader({
  name: 'If-Match',
  required: false,
  description:
    'Write only if the key exists and its modIndex is this one (its ETag, `"42"`; `42` unquoted is accepted too), ' +
    'or with `*` only if it exists. Evaluated when the write is applied, atomically. A list or a weak ETag is refused (400).',
});
const ifNoneMatch = ApiHeader({
  name: 'If-None-Match',
  required: false,
  description: '`*`: write only if the key does not exist (create only). Not together with If-Match.',
});
const preconditionFailed = ApiResponse({
  status: 412,
  description:
    'The If-Match / If-None-Match condition did not hold when the write was applied: nothing changed (the entry still ' +
    "took a log index). `modIndex` is the key's current one (null: absent), also as ETag when the key exists.",
  type: PreconditionFailedDto,
});
const ttlQuery = ApiQuery({
  name: 'ttl',
  required: false,
  description:
    `Seconds until the key expires (1 to ${MAX_TTL_SECONDS}); the leader deletes it once due, as a replicated delete. ` +
    'A PUT without ttl makes the key permanent again. Example: 30.',
});
const idempotencyKey = ApiHeader({
  name: 'Idempotency-Key',
  required: false,
  description:
    'A token (1-128 visible ASCII characters, a UUID say) that makes the write safe to retry: a retry with the same key ' +
    'and the same request is answered the first outcome (same index, same body, header Idempotent-Replayed: true) ' +
    'without applying again; the same key with a different request answers 422. Remembered for IDEMPOTENCY_WINDOW_S. ' +
    'Example: 3f2b8c1e-6a4d-4f0a-9d2e-8b7c6a5d4e3f.',
});
const replayedHeader = {
  'Idempotent-Replayed': { description: 'Present (true) when this is the first outcome of an earlier write with the same Idempotency-Key.', schema: { type: 'string' } },
};
const keyReused = ApiResponse({
  status: 422,
  description: 'The Idempotency-Key was already used (within IDEMPOTENCY_WINDOW_S) for a different request: nothing was written.',
  type: ErrorDto,
});
const etagHeader = { ETag: { description: 'The key\'s modIndex, quoted: `"42"` (use it as If-Match).', schema: { type: 'string' } } };

const unavailable = ApiServiceUnavailableResponse({
  description:
    'No leader, no quorum in time, shutting down, or more than MAX_PENDING_REQUESTS requests already waiting (Overloaded); ' +
    "for a linearizable read, also this node's disk being full (read with ?consistency=stale, or elsewhere). " +
    'For writes, `outcome` says whether it may still take effect.',
  type: UnavailableDto,
});

@ApiTags('kv')
@ApiUnauthorizedResponse({ type: ErrorDto, description: 'With API_TOKENS_FILE set: no token, or an unknown one (WWW-Authenticate: Bearer)' })
@ApiForbiddenResponse({ type: ErrorDto, description: "With API_TOKENS_FILE set: the token's role is not enough (reads need read, writes readwrite)" })
@ApiRequestTimeoutResponse({ type: ErrorDto, description: 'The request body was not complete within BODY_TIMEOUT_MS' })
@Controller('kv')
@UseFilters(KvErrorsFilter)
@UsePipes(DtoValidationPipe)
export class KvController {
  constructor(private readonly kv: KvService) {}

  @Put(':key')
  @HttpCode(200)
  @RouteSchema({ response: { 200: writeResultSchema } })
  @ApiOperation({
    summary: 'Write a value',
    description:
      'Answers 200 only once the write is committed by a quorum and applied on the leader. With If-Match or ' +
      'If-None-Match, a conditional write (compare-and-set): the condition is part of the replicated entry and is ' +
      'evaluated when it is applied, so no other write can come between the check and the change. With `?ttl=N`, the ' +
      "key expires N seconds after the leader proposed the write (on the leader's clock): the leader then deletes it " +
      'with a replicated delete, within about a heartbeat (up to an election timeout across a leader change). With an ' +
      'Idempotency-Key, a retry after an unknown outcome (a timeout, a 503 `outcome: "unknown"`, a lost connection) ' +
      'is answered the first outcome and never applied twice.',
  })
  @keyParam
  @ttlQuery
  @idempotencyKey
  // Decorators apply bottom-up: this order lists If-Match first in the document.
  @ifNoneMatch
  @ifMatch
  @ApiBody({ type: PutValueDto, examples: { seed: { value: { value: 'alice' } } } })
  @ApiOkResponse({ type: PutResultDto, headers: { ...etagHeader, ...replayedHeader } })
  @ApiBadRequestResponse({ type: ErrorDto, description: 'Invalid JSON, missing or non-string value, unknown field, bad key, malformed If-Match, bad ttl or Idempotency-Key' })
  @ApiPayloadTooLargeResponse({ type: ErrorDto, description: 'Value longer than MAX_VALUE_BYTES' })
  @ApiResponse({
    status: 507,
    type: DataQuotaExceededDto,
    description:
      'The write would grow the data (a new key, or a longer value) past MAX_DATA_BYTES: nothing was written. ' +
      'Deletes, and writes that do not grow the data, are still accepted.',
  })
  @preconditionFailed
  @keyReused
  @notLeader
  @unavailable
  @diskFull
  async put(
    @Param('key') key: string,
    @Body() body: PutValueDto,
    @Headers('if-match') ifMatchHeader: string | undefined,
    @Headers('if-none-match') ifNoneMatchHeader: string | undefined,
    @Query('ttl') ttlQueryValue: unknown,
    @Headers('idempotency-key') idempotencyKeyHeader: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<PutResultDto> {
    const condition = parseConditionHeaders(ifMatchHeader, ifNoneMatchHeader);
    const ttl = parseTtl(ttlQueryValue);
    const idempotencyKey = parseIdempotencyKey(idempotencyKeyHeader);
    const { index, createIndex, modIndex, replayed } = await this.kv.put(key, body.value, condition, { ttl, idempotencyKey });
    void reply.header('etag', etag(modIndex));
    if (replayed) void reply.header(REPLAYED_HEADER, 'true');
    return { success: true, index, createIndex, modIndex };
  }

  @Get()
  @RouteSchema({ response: { 200: listResultSchema } })
  @ApiOperation({
    summary: 'List keys by prefix',
    description:
      'The keys that start with `prefix`, in UTF-8 byte order, with their values (or names only with `keysOnly=true`), ' +
      `a page of at most \`limit\` (default ${LIST_DEFAULT_LIMIT}, at most ${LIST_MAX_LIMIT}) at a time. While \`more\` is true, ` +
      'ask again with `after` set to `next` to get the following page; the pages together hold every key of the prefix ' +
      'once. Each page is read at one point of the log, at the same consistency as `GET /kv/{key}`: linearizable by ' +
      'default on every node, or `?consistency=stale` from this node\'s copy. Keys written between two pages behind the ' +
      'cursor are not seen. A page also ends, with `more`, once its keys and values reach about 4 MiB.',
  })
  @ApiOkResponse({
    type: ListResultDto,
    examples: {
      page: {
        summary: 'GET /kv?prefix=user/&limit=2: the first page',
        value: { items: [{ key: 'user/1', value: 'alice' }, { key: 'user/2', value: 'bob' }], more: true, next: 'user/2' },
      },
      last: {
        summary: 'GET /kv?prefix=user/&limit=2&after=user/2: the last page',
        value: { items: [{ key: 'user/3', value: 'carol' }], more: false, next: null },
      },
      keysOnly: {
        summary: 'GET /kv?prefix=user/&keysOnly=true',
        value: { items: [{ key: 'user/1' }, { key: 'user/2' }, { key: 'user/3' }], more: false, next: null },
      },
    },
  })
  @ApiBadRequestResponse({
    type: ErrorDto,
    description: `A bad query: a limit outside 1-${LIST_MAX_LIMIT}, keysOnly other than true/false, an unknown consistency, a parameter given twice, an unknown parameter`,
  })
  @unavailable
  async list(@Query() query: ListQueryDto): Promise<ListResultDto> {
    return this.kv.list(
      {
        prefix: query.prefix ?? '',
        after: query.after,
        limit: query.limit === undefined ? LIST_DEFAULT_LIMIT : Number(query.limit),
        keysOnly: query.keysOnly === 'true',
      },
      query.consistency,
    );
  }

  @Get(':key')
  @RouteSchema({ response: { 200: keyValueSchema } })
  @ApiOperation({
    summary: 'Read a value',
    description:
      'Linearizable by default, on every node (no redirect): the leader confirms its leadership with a quorum ' +
      '(ReadIndex), a follower asks the leader for that read index, and the node answers once it has applied it, ' +
      'from a state at least as new as every write acknowledged before the request. `?consistency=stale` answers ' +
      "from this node's local copy at once, possibly behind. The body and the ETag header give the key's " +
      'createIndex and modIndex (the log indexes that created it and last changed it); a key written with a TTL ' +
      "also has `ttl` (whole seconds left on this node's clock, 0 once due) and `expiresAt`. A key past its " +
      'deadline is served until the replicated delete has applied here.',
  })
  @keyParam
  @ApiOkResponse({ type: KeyValueDto, headers: etagHeader })
  @ApiNotFoundResponse({ type: ErrorDto, description: 'Key not found' })
  @ApiBadRequestResponse({ type: ErrorDto })
  @unavailable
  async get(
    @Param('key') key: string,
    @Query() query: ReadQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<KeyValueDto> {
    const record = await this.kv.read(key, query.consistency);
    if (record === undefined) throw new KeyNotFoundError(key);
    void reply.header('etag', etag(record.modIndex));
    const { value, createIndex, modIndex, expiresAt } = record;
    if (expiresAt === undefined) return { key, value, createIndex, modIndex };
    // Rounded up: a key with 0.4 s left shows 1 (it is still there), and 0 only once due.
    const ttl = Math.max(0, Math.ceil((expiresAt - Date.now()) / 1000));
    return { key, value, createIndex, modIndex, ttl, expiresAt: new Date(expiresAt).toISOString() };
  }

  @Delete(':key')
  @RouteSchema({ response: { 200: writeResultSchema } })
  @ApiOperation({
    summary: 'Delete a key',
    description:
      'Answers 200 once the delete is committed; deleting a missing key succeeds with `existed: false`. ' +
      'If-Match / If-None-Match make it conditional, as for PUT (with If-Match a missing key fails with 412). ' +
      'An Idempotency-Key makes it safe to retry, as for PUT.',
  })
  @keyParam
  // Decorators apply bottom-up: this order lists If-Match first in the document.
  @idempotencyKey
  @ifNoneMatch
  @ifMatch
  @ApiOkResponse({ type: DeleteResultDto, headers: replayedHeader })
  @ApiBadRequestResponse({ type: ErrorDto, description: 'Bad key, malformed If-Match, malformed Idempotency-Key' })
  @preconditionFailed
  @keyReused
  @notLeader
  @unavailable
  @diskFull
  async delete(
    @Param('key') key: string,
    @Headers('if-match') ifMatchHeader: string | undefined,
    @Headers('if-none-match') ifNoneMatchHeader: string | undefined,
    @Headers('idempotency-key') idempotencyKeyHeader: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<DeleteResultDto> {
    const condition = parseConditionHeaders(ifMatchHeader, ifNoneMatchHeader);
    const idempotencyKey = parseIdempotencyKey(idempotencyKeyHeader);
    const { index, existed, replayed } = await this.kv.delete(key, condition, { idempotencyKey });
    if (replayed) void reply.header(REPLAYED_HEADER, 'true');
    return { success: true, index, existed };
  }
}

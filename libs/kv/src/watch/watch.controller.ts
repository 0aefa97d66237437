import { Controller, Get, Headers, Query, Res, UseFilters, UsePipes } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiForbiddenResponse,
  ApiHeader,
  ApiOperation,
  ApiResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ErrorDto } from '../dto/kv-responses.dto';
import { KvErrorsFilter } from '../kv-errors.filter';
import { DtoValidationPipe } from '../validation';
import { fromLastEventId } from './sse';
import { Watcher, WatchSink } from './watch-hub';
import { WatchQueryDto } from './watch-query.dto';
import { WatchService } from './watch.service';
import { InvalidKeyError } from '../kv.errors';

const STREAM_EXAMPLE =
  ': watching from index 42\nretry: 1000\nid: 41\n\n' +
  'id: 42\nevent: put\ndata: {"key":"config/db","value":"postgres://db2","index":42}\n\n' +
  ': ping\n\n' +
  'id: 45\nevent: delete\ndata: {"key":"config/db","index":45}\n\n';

@ApiTags('watch')
@ApiUnauthorizedResponse({ type: ErrorDto, description: 'With API_TOKENS_FILE set: no token, or an unknown one' })
@ApiForbiddenResponse({ type: ErrorDto, description: 'With API_TOKENS_FILE set: the token needs at least the read role' })
@Controller('watch')
@UseFilters(KvErrorsFilter)
@UsePipes(DtoValidationPipe)
export class WatchController {
  constructor(private readonly watch: WatchService) {}

  @Get()
  @ApiOperation({
    summary: 'Watch a key or a prefix (Server-Sent Events)',
    description:
      'A `text/event-stream` of the `put` and `delete` events this node applies for the key (or every key under ' +
      'the prefix), in log order, with no gap and no duplicate. Each event has `id:` its log index, `event:` put or ' +
      'delete, `data:` JSON `{key, value?, index}`. Served by any node from its own applied log. With `fromIndex` (or ' +
      'a `Last-Event-ID` header: resume after that id) the changes still in the watch history are replayed first. ' +
      'Heartbeat comments (`: ping`) every WATCH_HEARTBEAT_MS. The stream ends with `event: compacted` ' +
      '(`{error, oldestIndex}`) when the watcher fell behind the history or the node restored a snapshot, and with ' +
      '`event: closed` when the node shuts down or is removed. Deleting a missing key is no event.',
  })
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Resume after this log index (overrides fromIndex)' })
  @ApiResponse({ status: 200, description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' }, example: STREAM_EXAMPLE } } })
  @ApiBadRequestResponse({ type: ErrorDto, description: 'Neither or both of key and prefix, a bad key, a bad fromIndex or Last-Event-ID' })
  @ApiResponse({
    status: 410,
    description:
      'fromIndex is older than the watch history (bounded by WATCH_HISTORY_ENTRIES and WATCH_HISTORY_BYTES, and starting ' +
      'empty at a restart or snapshot install): `{"error": ..., "oldestIndex": N}`. Re-read, then watch from oldestIndex. ' +
      'Also answered by a node removed from the cluster.',
    schema: {
      type: 'object',
      properties: { error: { type: 'string' }, oldestIndex: { type: 'integer' } },
      example: { error: "fromIndex 3 is older than this node's watch history, which starts at index 120; re-read and watch from there", oldestIndex: 120 },
    },
  })
  watchKeys(
    @Query() query: WatchQueryDto,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Res() reply: FastifyReply,
  ): void {
    const filter = this.watch.filterOf(query.key, query.prefix);
    let fromIndex: number | undefined;
    try {
      fromIndex = fromLastEventId(lastEventId) ?? (query.fromIndex === undefined ? undefined : Number(query.fromIndex));
    } catch (error) {
      throw new InvalidKeyError((error as Error).message);
    }
    const hub = this.watch.hub;
    // Decided before anything is sent: a 410 is an ordinary JSON answer.
    const start = hub.startIndex(fromIndex);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // nginx and the like would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    const bound = Math.max(this.watch.stream.bufferBytes, res.writableHighWaterMark);
    let watcher: Watcher | undefined;
    const sink: WatchSink = {
      write: (chunk) => {
        if (res.destroyed || res.writableEnded) return false;
        res.write(chunk);
        if (res.writableLength < bound) return true;
        // bound >= the high-water mark, so this write returned false and 'drain' will come.
        res.once('drain', () => watcher?.resume());
        return false;
      },
      end: () => res.end(),
    };
    // Synchronously after startIndex(): nothing is applied in between.
    watcher = hub.subscribe(filter, start, sink);
    res.once('close', () => watcher?.close());
  }
}

import { Controller, Get, Logger, Req, Res, UseFilters } from '@nestjs/common';
import {
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { ErrorDto, NotLeaderDto, UnavailableDto } from '../dto/kv-responses.dto';
import { KvErrorsFilter } from '../kv-errors.filter';
import { KvBackupService } from './kv-backup.service';

/** Response headers that carry the snapshot's metadata, so that a client can report it before reading the body. */
export const SNAPSHOT_HEADERS = {
  index: 'x-snapshot-index',
  term: 'x-snapshot-term',
  keys: 'x-snapshot-keys',
} as const;

@ApiTags('cluster')
@Controller('cluster')
@UseFilters(KvErrorsFilter)
export class BackupController {
  private readonly logger = new Logger('Backup');

  constructor(private readonly backups: KvBackupService) {}

  @Get('snapshot')
  @ApiOperation({
    summary: 'Download a consistent snapshot of the whole map (a backup), in the snapshot file format',
    description:
      'Taken at a linearizable point: the leader confirms its leadership with a quorum (ReadIndex), then takes a ' +
      'point-in-time view of the map at its applied index, which includes every write acknowledged before the ' +
      'request. Streamed as it is encoded (chunked); the node keeps serving meanwhile. A follower answers 307 to ' +
      'the leader, like linearizable reads. Restore it with `kvctl snapshot restore`. Needs an admin token when ' +
      'API_TOKENS_FILE is set.',
  })
  @ApiProduces('application/octet-stream')
  @ApiOkResponse({
    description: 'The snapshot file (docs/storage.md, "Snapshot files"): `Content-Disposition: attachment; filename="raft-kv-<index>.snap"`',
    schema: { type: 'string', format: 'binary' },
    headers: {
      [SNAPSHOT_HEADERS.index]: { description: 'Log index the snapshot reflects', schema: { type: 'integer' } },
      [SNAPSHOT_HEADERS.term]: { description: 'Term of the entry at that index', schema: { type: 'integer' } },
      [SNAPSHOT_HEADERS.keys]: { description: 'Number of keys in the snapshot', schema: { type: 'integer' } },
    },
  })
  @ApiResponse({ status: 307, description: 'This node is a follower: the Location header points at the leader.', type: NotLeaderDto })
  @ApiServiceUnavailableResponse({
    description: 'No leader, leadership not confirmed within REQUEST_TIMEOUT_MS, shutting down, or overloaded',
    type: UnavailableDto,
  })
  @ApiUnauthorizedResponse({ type: ErrorDto, description: 'With API_TOKENS_FILE set: no token, or an unknown one (WWW-Authenticate: Bearer)' })
  @ApiForbiddenResponse({ type: ErrorDto, description: "With API_TOKENS_FILE set: the token's role is not admin" })
  async snapshot(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const backup = await this.backups.snapshot();
    const { index, term } = backup.metadata;
    const started = Date.now();
    const res = reply.raw;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      backup.release();
      const how = res.writableFinished ? 'sent' : 'aborted (the client went away)';
      this.logger.log(`backup at index ${index} (term ${term}, ${backup.keys} keys) ${how} to ${request.ip} after ${Date.now() - started} ms`);
    };
    // The view pins the map's frozen state until released: whatever ends the response (done, client gone,
    // an error) releases it. A client that left while the barrier waited will never see 'close' again, and
    // a stream that is never read would not run the file's own release either.
    if (res.destroyed || request.raw.socket?.destroyed) {
      end();
      return;
    }
    res.once('close', end);
    void reply
      .status(200)
      .headers({
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename="raft-kv-${index}.snap"`,
        'cache-control': 'no-store',
        [SNAPSHOT_HEADERS.index]: String(index),
        [SNAPSHOT_HEADERS.term]: String(term),
        [SNAPSHOT_HEADERS.keys]: String(backup.keys),
      })
      .send(Readable.from(backup.file(), { objectMode: false }));
  }
}

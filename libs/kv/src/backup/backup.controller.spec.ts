import { Logger } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { FastifyReply, FastifyRequest } from 'fastify';
import { BackupController } from './backup.controller';
import { KvBackup, KvBackupService } from './kv-backup.service';

function fakeBackup(): KvBackup & { releases: number } {
  const backup = {
    metadata: { index: 7, term: 2, confState: { voters: ['a'] } },
    keys: 3,
    releases: 0,
    release: () => {
      backup.releases++;
    },
    async *file() {
      yield Buffer.from('file');
    },
  };
  return backup;
}

function fakeReply(destroyed = false) {
  const raw = Object.assign(new EventEmitter(), { destroyed, writableFinished: false });
  const reply = {
    raw,
    sent: undefined as unknown,
    headersSet: {} as Record<string, string>,
    statusCode: 0,
    status(code: number) {
      reply.statusCode = code;
      return reply;
    },
    headers(h: Record<string, string>) {
      Object.assign(reply.headersSet, h);
      return reply;
    },
    send(payload: unknown) {
      reply.sent = payload;
      return reply;
    },
  };
  return reply;
}

const request = (socketDestroyed = false) => ({ ip: '127.0.0.1', raw: { socket: { destroyed: socketDestroyed } } }) as unknown as FastifyRequest;

beforeAll(() => Logger.overrideLogger(false));

describe('BackupController', () => {
  it('streams the file with its name and metadata headers, and releases the view when the response closes', async () => {
    const backup = fakeBackup();
    const controller = new BackupController({ snapshot: async () => backup } as unknown as KvBackupService);
    const reply = fakeReply();
    await controller.snapshot(request(), reply as unknown as FastifyReply);
    expect(reply.statusCode).toBe(200);
    expect(reply.headersSet).toMatchObject({
      'content-type': 'application/octet-stream',
      'content-disposition': 'attachment; filename="raft-kv-7.snap"',
      'x-snapshot-index': '7',
      'x-snapshot-term': '2',
      'x-snapshot-keys': '3',
    });
    expect(reply.sent).toBeInstanceOf(Readable);
    expect(backup.releases).toBe(0);
    reply.raw.emit('close');
    reply.raw.emit('close');
    expect(backup.releases).toBe(1);
  });

  it('releases the view at once, sending nothing, when the client left while the barrier waited', async () => {
    for (const [socketGone, responseGone] of [
      [true, false],
      [false, true],
    ]) {
      const backup = fakeBackup();
      const controller = new BackupController({ snapshot: async () => backup } as unknown as KvBackupService);
      const reply = fakeReply(responseGone);
      await controller.snapshot(request(socketGone), reply as unknown as FastifyReply);
      expect(backup.releases).toBe(1);
      expect(reply.sent).toBeUndefined();
    }
  });
});

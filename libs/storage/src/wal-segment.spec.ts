import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TempDirs } from '../../../test/support/wal-test-helpers';
import { listSegments, parseSegmentFileName, segmentFileName, WalSegment } from './wal-segment';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe('segment files', () => {
  it('are named <seq>-<firstIndex>.wal in 16 hex digits, sorting in log order', () => {
    expect(segmentFileName(1, 1)).toBe('0000000000000001-0000000000000001.wal');
    expect(segmentFileName(26, 2 ** 40)).toBe('000000000000001a-0000010000000000.wal');
    expect(parseSegmentFileName('000000000000001a-0000010000000000.wal')).toEqual({
      seq: 26,
      firstIndex: 2 ** 40,
      name: '000000000000001a-0000010000000000.wal',
    });
    for (const bad of ['1-1.wal', '000000000000001A-0000000000000001.wal', '0000000000000001-0000000000000001.wal.tmp']) {
      expect(parseSegmentFileName(bad)).toBeUndefined();
    }
  });

  it('are listed in sequence order, other files ignored', async () => {
    const dir = dirs.make();
    for (const name of [segmentFileName(10, 50), segmentFileName(2, 5), 'LOCK', 'meta.json', segmentFileName(9, 40)]) {
      writeFileSync(join(dir, name), '');
    }
    expect((await listSegments(dir)).map((s) => s.seq)).toEqual([2, 9, 10]);
  });

  it.each(['dsync', 'fdatasync'] as const)('are created exclusively, appended to and read back at any offset (%s)', async (sync) => {
    const dir = dirs.make();
    const segment = await WalSegment.create(dir, 1, 1, sync);
    await expect(WalSegment.create(dir, 1, 1, sync)).rejects.toThrow('EEXIST');
    await segment.appendDurably([Buffer.from('hello '), Buffer.from('world')], 11);
    expect(segment.size).toBe(11);
    expect(segment.readSync(6, 5).toString()).toBe('world');
    expect(() => segment.readSync(6, 10)).toThrow('unexpected end');
    segment.close();
    const reopened = await WalSegment.open(dir, parseSegmentFileName(segmentFileName(1, 1))!, 11);
    expect(reopened.readSync(0, 5).toString()).toBe('hello');
    await expect(reopened.appendDurably([Buffer.from('x')], 1)).rejects.toThrow('not open for writing');
    reopened.close();
  });
});

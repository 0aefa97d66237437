import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TempDirs } from '../../../test/support/wal-test-helpers';
import { WalCorruptionError } from './errors';
import { META_FILE, readMeta, writeMeta } from './meta-file';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

describe('meta file', () => {
  it('is absent on a new directory', async () => {
    await expect(readMeta(dirs.make())).resolves.toBeUndefined();
  });

  it('round-trips a JSON object, as a checksum line and one JSON line', async () => {
    const dir = dirs.make();
    const meta = { nodeId: 'n1', members: ['http://a:3001', 'http://b:3001'], created: 3 };
    await writeMeta(dir, meta);
    await expect(readMeta(dir)).resolves.toEqual(meta);
    expect(readFileSync(join(dir, META_FILE), 'utf8')).toMatch(/^crc32=[0-9a-f]{8}\n\{"nodeId":"n1",.*\}\n$/);
    expect(readdirSync(dir)).toEqual([META_FILE]);
  });

  it('replaces the file whole, and drops a temporary file left by a crash mid-write', async () => {
    const dir = dirs.make();
    await writeMeta(dir, { v: 1 });
    writeFileSync(join(dir, `${META_FILE}.tmp`), 'crc32=0000'); // a crash before the rename
    await expect(readMeta(dir)).resolves.toEqual({ v: 1 });
    expect(readdirSync(dir)).toEqual([META_FILE]);
    await writeMeta(dir, { v: 2 });
    await expect(readMeta(dir)).resolves.toEqual({ v: 2 });
  });

  it('detects damage', async () => {
    const dir = dirs.make();
    await writeMeta(dir, { nodeId: 'n1' });
    const path = join(dir, META_FILE);
    writeFileSync(path, readFileSync(path, 'utf8').replace('n1', 'n2'));
    await expect(readMeta(dir)).rejects.toThrow(WalCorruptionError);
    await expect(readMeta(dir)).rejects.toThrow('metadata checksum mismatch');
    writeFileSync(path, '{"nodeId":"n1"}');
    await expect(readMeta(dir)).rejects.toThrow('not a metadata file');
  });
});

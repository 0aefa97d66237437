import type { RaftStorage } from '@app/consensus/ports';
import { Wal } from './wal';

/**
 * The node loop's storage port on a Wal. The port takes a callback (so that the deterministic simulator can
 * complete a save inside its own schedule); the Wal's save() returns a promise, settled after the fsync.
 */
export function walRaftStorage(wal: Wal): RaftStorage {
  return {
    get storage() {
      return wal.storage;
    },
    save(hardState, entries, done) {
      wal.save(hardState, entries).then(
        () => done(),
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
      );
    },
    get meta() {
      return wal.meta;
    },
    setMeta: (meta) => wal.setMeta(meta),
  };
}

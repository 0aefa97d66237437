/**
 * What the crash tests (wal-crash, snapshot-crash) share: the child processes they kill over and over, killed
 * for good after the suite; temporary directories, removed after it; and the directory in which the lean
 * loader (test/e2e/wal-crash-register.js) caches compiled files, so that only the first child compiles.
 */
import { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CrashChildren {
  /** Children still running; add each one started, delete it once it exited. */
  readonly children: Set<ChildProcess>;
  /** A new temporary directory, removed after the suite. */
  tempDir(): string;
  /** The loader's compile cache (WAL_CRASH_CACHE), made before the suite's tests run. */
  readonly compileCache: string;
}

/** Registers the suite's beforeAll/afterAll; call at the top level of a spec file. */
export function crashChildren(prefix: string): CrashChildren {
  const children = new Set<ChildProcess>();
  const dirs: string[] = [];
  let compileCache = '';
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  beforeAll(() => {
    compileCache = tempDir();
  });
  afterAll(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return {
    children,
    tempDir,
    get compileCache() {
      return compileCache;
    },
  };
}

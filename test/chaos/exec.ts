import { spawn, spawnSync } from 'node:child_process';

/** Thrown when a command exits with a non-zero status; the message carries its stderr. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${status}): ${stderr.trim() || '(no output)'}`);
    this.name = 'CommandError';
  }
}

/** Runs a command to completion (optionally feeding `input` on stdin); resolves with its stdout. */
export function run(file: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      if (status === 0) resolve(out);
      else reject(new CommandError(`${file} ${args.join(' ')}`, status, err));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** Synchronous variant for exit handlers and sweeps: never throws; returns stdout, or undefined on failure. */
export function runSync(file: string, args: readonly string[], input?: string): string | undefined {
  const r = spawnSync(file, args, { input: input ?? '', encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout : undefined;
}

/** Whether `file` can be run here (found on PATH and executable). */
export function available(file: string, args: readonly string[] = ['-V']): boolean {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 10_000 });
  return r.error === undefined && r.status === 0;
}

/** Whether a process with this pid exists (ours or not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

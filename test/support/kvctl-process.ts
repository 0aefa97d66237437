import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
/** The kvctl the package ships (package.json "bin"), run from the build. */
export const KVCTL_BIN = join(ROOT, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.kvctl);

export interface KvctlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs kvctl with `args` and waits for it to exit. `env` is added to this process's environment; kvctl's
 * own variables (KVCTL_ENDPOINTS, KVCTL_TOKEN, KVCTL_CACERT/CERT/KEY) are passed only when `env` names them, so a developer's
 * shell cannot change what a test runs.
 */
export function runKvctl(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<KvctlResult> {
  return new Promise((ok, fail) => {
    const env = { ...process.env, ...options.env };
    for (const k of ['KVCTL_ENDPOINTS', 'KVCTL_TOKEN', 'KVCTL_CACERT', 'KVCTL_CERT', 'KVCTL_KEY']) if (!options.env || !(k in options.env)) delete env[k];
    const child = spawn(process.execPath, [KVCTL_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('exit', (code) => ok({ code, stdout, stderr }));
    if (options.stdin !== undefined) child.stdin.end(options.stdin);
    else child.stdin.end();
  });
}

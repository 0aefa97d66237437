import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { eventually } from './local-cluster';

export const ROOT = resolve(__dirname, '../..');

/** Every supervisor started here, so that a crashing test run still kills them (and, through them, the nodes). */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) killGroup(p, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const server = createServer();
    server.once('error', () => ok(false));
    server.listen(port, '127.0.0.1', () => server.close(() => ok(true)));
  });
}

/** `preferred`..`preferred+count-1` if all are free, else another run of `count` consecutive free ports. */
export async function consecutiveFreePorts(count: number, preferred?: number): Promise<number> {
  const allFree = async (base: number) => {
    for (let p = base; p < base + count; p++) if (!(await portFree(p))) return false;
    return true;
  };
  if (preferred !== undefined && (await allFree(preferred))) return preferred;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    if (await allFree(base)) return base;
  }
  throw new Error(`no ${count} consecutive free ports`);
}

/**
 * Where each README suite prefers to run its cluster. `npm test` runs two suites at once, so each has ports of
 * its own: readme.e2e runs the README on its own ports (3001-3003) when they are free; the others would reach
 * readme.e2e's cluster through kvctl's default endpoints (3001-3003), so they set KVCTL_ENDPOINTS to theirs, and
 * their rewrite of the README's ports works from any base. A range taken on this machine moves to random free
 * ports (consecutiveFreePorts).
 */
export const README_PORTS = {
  readme: 3001,
  /** Five nodes: 3101-3105. */
  membershipReadme: 3101,
  /** The source cluster; the restored one at 4201 (the README's 4001). */
  backupReadme: 3201,
  backupReadmeRestored: 4201,
  tlsReadme: 3301,
} as const;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a shell command in the repository root, as a user would in a terminal (no TTY). */
export function sh(command: string, env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<Run> {
  return new Promise((ok, fail) => {
    const child = spawn('bash', ['-c', command], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`\`${command}\` did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      ok({ code, stdout, stderr });
    });
  });
}

/**
 * `npm run cluster` as a user runs it, in its own process group as a terminal's foreground job would be,
 * so that `interrupt()` is exactly Ctrl-C: SIGINT to npm, the shell and the supervisor at once.
 */
export class ClusterScript {
  private text = '';
  exit?: { code: number | null; signal: NodeJS.Signals | null };

  private constructor(
    readonly child: ChildProcess,
    readonly env: NodeJS.ProcessEnv,
  ) {
    const collect = (d: Buffer) => {
      this.text += d.toString();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    // 'close', not 'exit': npm may exit on Ctrl-C before the supervisor it started has stopped the nodes;
    // the output pipes close once every process holding them (npm, the shell, the supervisor) has exited.
    child.on('close', (code, signal) => {
      live.delete(child);
      this.exit = { code, signal };
    });
  }

  /** Starts `npm run cluster -- <args>` with `CLUSTER_DATA_DIR` set, so that control commands find it. */
  static start(args: string[], dataDir: string, extraEnv: NodeJS.ProcessEnv = {}): ClusterScript {
    const env = { ...process.env, CLUSTER_DATA_DIR: dataDir, NO_COLOR: '1', FORCE_COLOR: '', ...extraEnv };
    const child = spawn('npm', ['run', 'cluster', '--', ...args], {
      cwd: ROOT,
      env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(child);
    return new ClusterScript(child, env);
  }

  output(): string {
    return this.text;
  }

  /** Waits until the output matches; fails early, with the output, if the script exits first. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    return eventually(
      `npm run cluster to print ${pattern}`,
      async () => {
        const match = this.text.match(pattern);
        if (match) return match;
        if (this.exit) throw new Error(`npm run cluster exited (${JSON.stringify(this.exit)}):\n${this.text}`);
        return undefined;
      },
      timeoutMs,
      100,
    ).catch((error: Error) => {
      if (!error.message.includes(this.text)) error.message += `\n----- npm run cluster output -----\n${this.text}`;
      throw error;
    });
  }

  /** `npm run cluster -- <args>` from "another terminal". */
  control(args: string, timeoutMs = 90_000): Promise<Run> {
    return sh(`npm run cluster -- ${args}`, this.env, timeoutMs);
  }

  /** Ctrl-C in the cluster's terminal. */
  interrupt(): void {
    killGroup(this.child, 'SIGINT');
  }

  async waitForExit(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return eventually('npm run cluster to exit', async () => this.exit, timeoutMs, 50);
  }

  /** Stops it whatever its state: Ctrl-C, then SIGKILL to its process group if it lingers. */
  async stop(): Promise<void> {
    if (this.exit) return;
    this.interrupt();
    try {
      await this.waitForExit(30_000);
    } catch {
      killGroup(this.child, 'SIGKILL');
      this.child.stdin?.destroy(); // the supervisor's nodes stop when it is gone (scripts/cluster-watchdog.js)
    }
  }
}

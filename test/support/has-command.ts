import { spawnSync } from 'node:child_process';

/** Whether a command exists on this machine (`command -v`). */
export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' }).status === 0;
}

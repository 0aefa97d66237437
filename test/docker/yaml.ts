import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * YAML → JSON through Python's PyYAML, which Debian's docker-compose package depends on (the project has no
 * YAML parser of its own, and needs none at run time). Undefined when python3 or PyYAML is missing.
 */
export function parseYaml(text: string): unknown {
  const result = spawnSync('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {
    input: text,
    encoding: 'utf8',
  });
  if (result.error || result.status !== 0) {
    throw new Error(`cannot parse YAML with python3 + PyYAML: ${result.error?.message ?? result.stderr}`);
  }
  return JSON.parse(result.stdout);
}

export function readYaml(path: string): any {
  return parseYaml(readFileSync(path, 'utf8'));
}

/** Whether a command exists on this machine (`command -v`). */
export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}

/** Says why a check is skipped, where a developer reading the test output sees it. */
export function skipBecause(reason: string): void {
  process.stdout.write(`SKIPPED: ${reason}\n`);
}

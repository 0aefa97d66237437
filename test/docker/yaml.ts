import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/**
 * YAML → plain values with the `yaml` package (a development dependency: the node itself reads no YAML).
 * Merge keys (`<<: *anchor`, which docker-compose.yml uses) are resolved as docker-compose resolves them.
 * Throws on a syntax error or a duplicated key, naming the line, so that a broken file fails its test
 * instead of being half-read.
 */
export function parseYaml(text: string): unknown {
  return parse(text, { merge: true, uniqueKeys: true });
}

export function readYaml(path: string): any {
  return parseYaml(readFileSync(path, 'utf8'));
}

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** docker/Dockerfile, parsed enough for the tests (test/docker, test/e2e): stages and their instructions. */
export interface Instruction {
  keyword: string;
  args: string;
}

export interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

export const DOCKERFILE = resolve(__dirname, '../../docker/Dockerfile');

export function parseDockerfile(text = readFileSync(DOCKERFILE, 'utf8')): { args: Record<string, string>; stages: Stage[] } {
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [keyword, ...rest] = l.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
  const stages: Stage[] = [];
  const args: Record<string, string> = {};
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [from, , name] = ins.args.split(/\s+/);
      stages.push({ name: name ?? String(stages.length), from, body: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1].body.push(ins);
    } else if (ins.keyword === 'ARG') {
      const [key, value] = ins.args.split('=');
      args[key] = value;
    }
  }
  return { args, stages };
}

/** The runtime (last) stage's ENV values. */
export function runtimeEnv(stage: Stage): Record<string, string> {
  return Object.fromEntries(
    stage.body.filter((i) => i.keyword === 'ENV').flatMap((i) => i.args.split(/\s+/).map((kv) => kv.split('=') as [string, string])),
  );
}

/** The exec-form command of an instruction (`CMD ["node", ...]`, `HEALTHCHECK ... CMD [...]`). */
export function execForm(stage: Stage, keyword: 'CMD' | 'HEALTHCHECK'): string[] {
  const ins = stage.body.find((i) => i.keyword === keyword);
  if (!ins) throw new Error(`no ${keyword} in the runtime stage`);
  const json = keyword === 'CMD' ? ins.args : ins.args.slice(ins.args.indexOf('CMD') + 3).trim();
  return JSON.parse(json) as string[];
}

/**
 * docker/Dockerfile, read as text (no Docker engine here): the multi-stage shape, a small non-root runtime
 * image with its data in a volume and a HEALTHCHECK on /health/ready, and build inputs that exist. The
 * runtime stage's contents are run for real in test/e2e/docker-runtime.e2e-spec.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execForm, parseDockerfile, runtimeEnv } from '../support/dockerfile';

const ROOT = resolve(__dirname, '../..');
const { args, stages } = parseDockerfile();
const runtime = stages[stages.length - 1];
const env = runtimeEnv(runtime);

describe('docker/Dockerfile', () => {
  it('builds in separate stages and runs from a slim Node 20 image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const base = runtime.from.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name]);
    expect(base).toMatch(/^node:20(\.\d+)*-(slim|alpine)/);
    // The build stage compiles; the runtime stage only copies its output.
    const build = stages.find((s) => s.body.some((i) => i.keyword === 'RUN' && i.args.includes('npm run build')));
    expect(build).toBeDefined();
    expect(build).not.toBe(runtime);
    expect(runtime.body.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n')).not.toMatch(/npm (ci|install|run build)/);
    expect(runtime.body.some((i) => i.keyword === 'COPY' && i.args.includes(`--from=${build!.name}`) && i.args.includes('dist'))).toBe(true);
  });

  it('ships production dependencies only', () => {
    const deps = stages.find((s) => s.body.some((i) => i.keyword === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args)));
    expect(deps).toBeDefined();
    expect(runtime.body.some((i) => i.keyword === 'COPY' && i.args.includes(`--from=${deps!.name}`) && i.args.includes('node_modules'))).toBe(true);
  });

  it('runs as the unprivileged node user, with WAL_DIR in a volume it owns', () => {
    const users = runtime.body.filter((i) => i.keyword === 'USER');
    expect(users.map((u) => u.args)).toEqual(['node']);
    expect(env.WAL_DIR).toBe('/data');
    const volume = runtime.body.find((i) => i.keyword === 'VOLUME')!;
    expect(JSON.parse(volume.args)).toEqual([env.WAL_DIR]);
    expect(runtime.body.some((i) => i.keyword === 'RUN' && i.args.includes(`chown node:node ${env.WAL_DIR}`))).toBe(true);
    expect(env.BIND_HOST).toBe('0.0.0.0');
  });

  it('checks its health on /health/ready with node itself (the slim image has no curl)', () => {
    const command = execForm(runtime, 'HEALTHCHECK');
    expect(command[0]).toBe('node');
    expect(command.join(' ')).toContain('/health/ready');
  });

  it("starts the node's production build, the file `npm start` runs", () => {
    const cmd = execForm(runtime, 'CMD');
    const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;
    expect(cmd[0]).toBe('node');
    expect(cmd[1].replace(/\.js$/, '')).toBe(start.replace(/^node\s+/, '').replace(/\.js$/, ''));
  });

  it('copies only paths that exist, and the build context leaves out local builds, dependencies and data', () => {
    for (const stage of stages) {
      for (const copy of stage.body.filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))) {
        const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
        for (const source of parts.slice(0, -1)) expect({ source, exists: existsSync(join(ROOT, source)) }).toEqual({ source, exists: true });
      }
    }
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const path of ['node_modules', 'dist', 'data', '.git']) expect(ignored).toContain(path);
  });
});

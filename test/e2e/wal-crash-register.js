/**
 * A lean TypeScript loader for the WAL crash test's child processes, which the test starts 50+ times:
 * @swc/core through pirates, with the monorepo's path aliases, and a cache of compiled files in the
 * directory named by WAL_CRASH_CACHE (made and removed by the test), so only the first child compiles.
 * A cached start takes about a third of the time of @swc-node/register, which loads the TypeScript
 * compiler just to read tsconfig.json.
 */
const { createHash } = require('node:crypto');
const { readFileSync, writeFileSync, renameSync } = require('node:fs');
const { join } = require('node:path');
const { addHook } = require('pirates');

const root = join(__dirname, '..', '..');
const cacheDir = process.env.WAL_CRASH_CACHE;
let swc;

function compile(code, filename) {
  swc ??= require('@swc/core');
  const { compilerOptions } = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8'));
  return swc.transformSync(code, {
    filename,
    sourceMaps: 'inline',
    module: { type: 'commonjs' },
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
      keepClassNames: true,
      baseUrl: root,
      paths: compilerOptions.paths,
    },
  }).code;
}

addHook(
  (code, filename) => {
    if (!cacheDir) return compile(code, filename);
    const file = join(cacheDir, createHash('sha1').update(filename).update('\0').update(code).digest('hex') + '.js');
    try {
      return readFileSync(file, 'utf8');
    } catch {
      const js = compile(code, filename);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, js);
      renameSync(tmp, file); // whole or absent, even if this child is killed mid-way
      return js;
    }
  },
  { exts: ['.ts'], ignoreNodeModules: true },
);

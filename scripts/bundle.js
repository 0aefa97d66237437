'use strict';
/**
 * The last step of `npm run build`: bundles the node's compiled output (what `nest build` wrote, decorators'
 * metadata included) with its packages into one file, dist/apps/kv-node/kv-node.js, which is what runs
 * (npm start, npm run cluster, the Docker image, every e2e suite and the chaos suite).
 * Why: a node loads ~1,800 modules at every start, and finding and reading them as separate files cost about
 * a quarter of its start (measured in docs/operations.md, "The build"). The code is the same: esbuild only
 * concatenates the CommonJS modules (no minifying; names kept for Nest's logs and stack traces; a source map
 * beside it for `node --enable-source-maps`). kvctl is not bundled: it loads little until a command needs it,
 * and bundled it started no faster.
 *
 * Left out of the bundles, loaded from node_modules at run time:
 * - swagger-ui-dist: it serves its files from its own directory (__dirname);
 * - packages that are not installed: Nest and its modules probe optional packages (@nestjs/microservices,
 *   database drivers for terminus, ...) with a require() in a try/catch; bundled, they would be build errors.
 */
const { build } = require('esbuild');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const ALWAYS_EXTERNAL = ['swagger-ui-dist', 'swagger-ui-dist/*'];

/** Marks a bare import that does not resolve from where it is imported as external (an optional package). */
const optionalPackages = {
  name: 'optional-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return undefined;
      try {
        require.resolve(args.path, { paths: [args.resolveDir] });
        return undefined;
      } catch {
        return { path: args.path, external: true };
      }
    });
  },
};

build({
  absWorkingDir: ROOT,
  entryPoints: ['dist/apps/kv-node/apps/kv-node/src/main.js'],
  outfile: 'dist/apps/kv-node/kv-node.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  keepNames: true,
  sourcemap: 'linked',
  external: ALWAYS_EXTERNAL,
  plugins: [optionalPackages],
  logLevel: 'warning',
}).catch((error) => {
  process.stderr.write(`bundle: ${error.message}\n`);
  process.exit(1);
});

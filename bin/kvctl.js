#!/usr/bin/env node
'use strict';
// The `kvctl` command (package.json "bin"): runs the built client in dist/ (`npm run build`).
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const main = join(__dirname, '..', 'dist', 'apps', 'kvctl', 'apps', 'kvctl', 'src', 'main.js');
if (!existsSync(main)) {
  process.stderr.write(`kvctl: not built yet: run \`npm run build\` in ${join(__dirname, '..')}\n`);
  process.exit(1);
}
require(main);

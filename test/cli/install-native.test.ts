// `npm install` runs scripts/build-native.mjs: with an addon newer than native/ and binding.gyp that
// loads in this Node, it must not run node-gyp (a rebuild takes ~45 s and rewrites the file).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../paths.js';

test('install: an up-to-date native addon is not rebuilt', () => {
  const addon = join(repoRoot, 'build', 'Release', 'vserve_native.node');
  const before = statSync(addon).mtimeMs;
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'build-native.mjs')], { encoding: 'utf8', env: { ...process.env, PATH: '' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /native addon is up to date/);
  assert.equal(statSync(addon).mtimeMs, before);
});

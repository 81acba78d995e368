// vserve's commands run under NODE_FLAGS wherever node is started for them: bin/vserve's first line,
// `npm start`, and the benchmarks' child processes, which import the list.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { repoRoot } from '../paths.js';

test('bin/vserve starts node with every flag in NODE_FLAGS, and runs when executed directly', () => {
  const first = readFileSync(join(repoRoot, 'bin', 'vserve'), 'utf8').split('\n')[0]!;
  const m = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)$/.exec(first);
  assert.ok(m, `bin/vserve's first line must be "#!/usr/bin/env -S node FLAGS...", got ${JSON.stringify(first)}`);
  assert.deepEqual(m[1]!.trim().split(' ').filter(Boolean), [...NODE_FLAGS]);
  // Executing the file itself goes through that line (env -S splitting it), as `npm link` users do.
  const r = spawnSync(join(repoRoot, 'bin', 'vserve'), ['--version'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^vserve \d+\.\d+\.\d+/);
});

test('npm start runs the server under NODE_FLAGS', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.start, `node ${NODE_FLAGS.join(' ')} dist/src/cli/main.js serve -m models/stories260K.gguf`);
});

test('node accepts NODE_FLAGS on this Node version', () => {
  const r = spawnSync(process.execPath, [...NODE_FLAGS, '-e', 'process.stdout.write("ok")'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'ok');
});

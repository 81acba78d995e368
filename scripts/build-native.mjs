#!/usr/bin/env node
// npm's install step: builds the native addon with node-gyp only when it is missing, older than its
// sources, or does not load in this Node.js (another ABI, arch or libc). `--force` always rebuilds
// (`npm run build:native`). Skipping an up-to-date build saves ~45 s on every `npm install` / `npm link`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'build', 'Release', 'vserve_native.node');

function newestSource(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestSource(join(path, name))));
}

/** Why the addon must be built, or undefined when the existing one is current and loads here. */
function staleReason() {
  if (!existsSync(addon)) return 'not built yet';
  const built = statSync(addon).mtimeMs;
  if (newestSource(join(root, 'native')) > built || newestSource(join(root, 'binding.gyp')) > built) return 'sources changed';
  // Loading it in a child proves the ABI matches without keeping the addon's threads in this process.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VSERVE_')));
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addon)})`], { stdio: 'ignore', env });
  return probe.status === 0 ? undefined : `it does not load in Node.js ${process.version}`;
}

const reason = process.argv.includes('--force') ? 'forced' : staleReason();
if (reason === undefined) {
  console.log('vserve: native addon is up to date (npm run build:native rebuilds it)');
} else {
  console.log(`vserve: building the native addon (${reason})`);
  // npm puts its bundled node-gyp on PATH for lifecycle scripts.
  const r = spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.error) {
    console.error(`vserve: cannot run node-gyp (${r.error.message}); install it with "npm install -g node-gyp"`);
    process.exit(1);
  }
  process.exit(r.status ?? 1);
}

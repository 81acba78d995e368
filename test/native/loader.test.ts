// The binding's loader explains a missing or unloadable addon and how to rebuild it. The compiled
// loader is copied into a scratch package so it looks for the addon there.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const compiledLoader = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'backend', 'native', 'addon.js');

function loadError(root: string): string {
  const script = `import(${JSON.stringify(join(root, 'dist', 'addon.js'))}).then((m) => { try { m.loadNativeAddon(); console.log('loaded'); } catch (e) { console.log(e.name + ': ' + e.message); } });`;
  return execFileSync(process.execPath, ['-e', script]).toString();
}

test('a missing or broken addon gives a NativeAddonError that says how to rebuild', () => {
  const root = mkdtempSync(join(tmpdir(), 'vserve-loader-'));
  try {
    writeFileSync(join(root, 'package.json'), '{"type":"module"}');
    mkdirSync(join(root, 'dist'));
    copyFileSync(compiledLoader, join(root, 'dist', 'addon.js'));
    copyFileSync(join(dirname(compiledLoader), 'native-env.js'), join(root, 'dist', 'native-env.js'));
    assert.match(loadError(root), /NativeAddonError: .*not built.*npm run build:native/);
    mkdirSync(join(root, 'build', 'Release'), { recursive: true });
    writeFileSync(join(root, 'build', 'Release', 'vserve_native.node'), 'not a shared library');
    assert.match(loadError(root), /NativeAddonError: cannot load .*npm run build:native/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

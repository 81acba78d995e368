// What the benchmarks use from vserve's native addon, looked up at run time: the addon is built by
// `npm install` (node-gyp) and may be missing or older than this code, and benchmarks should still
// run and say what was not available.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

type Addon = Record<string, unknown>;
let addon: Addon | null | undefined;

function loadAddon(): Addon | null {
  if (addon !== undefined) return addon;
  const path = join(repoRoot, 'build', 'Release', 'vserve_native.node');
  try {
    addon = existsSync(path) ? (createRequire(import.meta.url)(path) as Addon) : null;
  } catch {
    addon = null;
  }
  return addon;
}

/** The addon's read-bandwidth measurement (GB/s for `bytes`, `threads`, best of `passes`), if it has one. */
export async function nativeReadBandwidth(): Promise<((bytes: number, threads: number, passes: number) => number) | undefined> {
  const fn = loadAddon()?.measureReadBandwidth;
  return typeof fn === 'function' ? (fn as (bytes: number, threads: number, passes: number) => number) : undefined;
}

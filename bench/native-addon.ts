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

type ReadBandwidth = (bytes: number, threads?: number) => { bytesPerSecond: number };

/** The addon's read-bandwidth probe as GB/s for `bytes` and `threads` (best of its own passes), if it has one. */
export async function nativeReadBandwidth(): Promise<((bytes: number, threads: number) => number) | undefined> {
  const fn = loadAddon()?.readBandwidth;
  if (typeof fn !== 'function') return undefined;
  return (bytes, threads) => (fn as ReadBandwidth)(bytes, threads).bytesPerSecond / 1e9;
}

/** The instruction set the native kernels run with (e.g. "avx512"), if the addon says. */
export function nativeIsa(): string | undefined {
  const fn = loadAddon()?.isa;
  return typeof fn === 'function' ? String((fn as () => unknown)()) : undefined;
}

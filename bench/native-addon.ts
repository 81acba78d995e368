// What the benchmarks use from vserve's native addon beyond the Backend interface. The addon may be
// missing (not built yet, or being rebuilt): benchmarks still run and say what was not available.
import { loadNativeAddon, type NativeAddon } from '../src/backend/native/addon.js';

function addonOrUndefined(): NativeAddon | undefined {
  try {
    return loadNativeAddon();
  } catch {
    return undefined;
  }
}

/** The addon's read-bandwidth probe as GB/s for `bytes` and `threads` (best of its own passes), if it is built. */
export async function nativeReadBandwidth(): Promise<((bytes: number, threads: number) => number) | undefined> {
  const addon = addonOrUndefined();
  return addon && ((bytes, threads) => addon.readBandwidth(bytes, threads).bytesPerSecond / 1e9);
}

/** The instruction set the native kernels run with (e.g. "avx512"), if the addon is built. */
export function nativeIsa(): string | undefined {
  return addonOrUndefined()?.isa();
}

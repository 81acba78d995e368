// Arrays for KV caches, starting on a page boundary. The kernels read cache rows with 64-byte
// vector loads, and a plain large Float32Array starts 16 bytes into a cache line (V8 takes it from
// calloc), so every such load would straddle two lines (about 10% slower attention). Falls back to a
// plain Float32Array when the native addon cannot be loaded (the reference backend does not care).
import { loadNativeAddon, type NativeAddon } from './native/addon.js';

let addon: NativeAddon | null | undefined;

function tryAddon(): NativeAddon | null {
  if (addon === undefined) {
    try {
      addon = loadNativeAddon();
    } catch {
      addon = null;
    }
  }
  return addon;
}

/** A zero-filled Float32Array of `length` elements, page-aligned where the native addon is available. */
export function alignedFloat32Array(length: number): Float32Array {
  const native = tryAddon();
  return native ? new Float32Array(native.alignedBuffer(length * 4)) : new Float32Array(length);
}

/** A zero-filled byte array of `length` bytes, page-aligned where the native addon is available. */
export function alignedBytes(length: number): Uint8Array {
  const native = tryAddon();
  return native ? new Uint8Array(native.alignedBuffer(length)) : new Uint8Array(length);
}

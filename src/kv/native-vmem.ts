// Loads the native addon's VirtualKV class (native/vmem_*.cc) and describes it for TypeScript.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KVError } from './errors.js';

export interface NativeVirtualKVOptions {
  layers: number;
  kvHeads: number;
  headDim: number;
  elemSize: number;
  maxSlots: number;
  maxContext: number;
  pageSize: number;
  budgetBytes: number;
  deferredReclaim: boolean;
  trimOnFree: boolean;
}

export interface NativeGrowResult {
  ok: boolean;
  pagesNeeded: number;
  pagesAvailable: number;
  pagesMapped: number;
}

export interface NativeLayout {
  pageSize: number;
  tokenBytes: number;
  /** maxContext rounded up so a slot is whole pages: the slot stride in tokens. */
  paddedContext: number;
  slotBytes: number;
  rangeBytes: number;
  pagesPerSlot: number;
  ranges: number;
  baseAddress: number;
  poolPages: number;
}

export interface NativeStats {
  pageSize: number;
  totalPages: number;
  freePages: number;
  usedPages: number;
  sharedPages: number;
  idlePages: number;
  mappings: number;
  reclaimablePages: number;
  allocatedBytes: number;
  mapCalls: number;
  mapNs: number;
  unmapCalls: number;
  unmapNs: number;
  pagesMappedTotal: number;
  pagesUnmappedTotal: number;
  pagesReclaimedTotal: number;
  /** 0 free, 1 active, 2 idle */
  slotStates: Uint8Array;
  slotTokens: Uint32Array;
  slotPages: Float64Array;
}

/** The native class. `range` = layer * 2 + (0 for K, 1 for V). */
export interface NativeVirtualKV {
  reservePhysical(bytes: number): void;
  allocSlot(): number;
  freeSlot(slot: number): void;
  step(seqLens: Int32Array): NativeGrowResult;
  stepAsync(seqLens: Int32Array): NativeGrowResult;
  wait(): void;
  share(src: number, dst: number, tokens: number): NativeGrowResult;
  compact(slot: number, keep: Int32Array, kept: number): NativeGrowResult;
  trim(): number;
  pagesNeeded(slot: number, tokens: number): number;
  freePages(): number;
  reclaimablePages(): number;
  slotTokens(slot: number): number;
  /** The range's reserved addresses. Touching a page that step() has not mapped kills the process (SIGSEGV). */
  buffer(range: number): ArrayBuffer;
  layout(): NativeLayout;
  stats(): NativeStats;
  slotPages(slot: number, range: number): Uint32Array;
  refCounts(): Uint32Array;
  close(): void;
}

interface VmemAddon {
  VirtualKV: new (options: NativeVirtualKVOptions) => NativeVirtualKV;
}

const ADDON_PATHS = ['build/Release/vserve_native.node', 'build/Debug/vserve_native.node'];
let cached: VmemAddon | undefined;

/** The addon, found in the package root's build folder (from src/kv or dist/src/kv). */
export function loadVmem(): VmemAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    for (const rel of ADDON_PATHS) {
      const file = path.join(dir, rel);
      if (existsSync(file)) {
        cached = require(file) as VmemAddon;
        return cached;
      }
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new KVError('ERR_KV_NATIVE_MISSING', 'the native addon is not built: run `npm run build:native`');
}

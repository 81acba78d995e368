// Loads the native addon's VirtualKV class (native/vmem_*.cc) and describes it for TypeScript.
import { loadNativeAddon, NativeAddonError, type NativeAddon } from '../backend/native/addon.js';
import { KVError } from './errors.js';

export interface NativeVirtualKVOptions {
  layers: number;
  kvHeads: number;
  headDim: number;
  /** Bytes of one token's row (K or V of one layer) in the cache's format. */
  tokenBytes: number;
  /** Pages hold a multiple of this many rows (the formats' group). */
  rowGroup: number;
  /**
   * Bytes of one KV head's slice of a K (V) row, for per-head compaction; kvHeads x slice must fit the
   * row. 0 (the default) when the format's rows do not split by head: per-head keep lists are refused.
   */
  keyHeadBytes?: number;
  valueHeadBytes?: number;
  maxSlots: number;
  maxContext: number;
  pageSize: number;
  budgetBytes: number;
  deferredReclaim: boolean;
  trimOnFree: boolean;
}

export interface NativeGrowResult {
  ok: boolean;
  limit?: 'pages' | 'mappings';
  reason?: string;
  pagesNeeded: number;
  pagesAvailable: number;
  pagesMapped: number;
}

export interface NativeLayout {
  pageSize: number;
  tokenBytes: number;
  /** Whole rows in a page (a row never straddles two pages). */
  rowsPerPage: number;
  /** maxContext rounded up so a slot is whole pages: the slot stride in tokens. */
  paddedContext: number;
  slotBytes: number;
  rangeBytes: number;
  pagesPerSlot: number;
  ranges: number;
  baseAddress: number;
  poolPages: number;
  /** Tokens of one cache-owned page group, and the pages it holds in each range. */
  blockTokens: number;
  blockPages: number;
}

export interface NativeStats {
  pageSize: number;
  totalPages: number;
  freePages: number;
  usedPages: number;
  sharedPages: number;
  /** Cache-owned page groups alive now. */
  cacheGroups: number;
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
  /** Per slot, how many of its mapped pages another slot maps too. */
  slotSharedPages: Float64Array;
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
  /**
   * keep: `kept` positions for all layers, or kept x layers (per layer), or kept x layers x kvHeads (per
   * layer and head, [layer][head] order). Validates the entries as arguments.ts checkKeep does.
   */
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
  /** A cache-owned group holding a reference on slot's block `block`; returns the group id. */
  retainGroup(slot: number, block: number): number;
  /** Maps the groups as the first blocks of an empty slot. */
  mapGroups(slot: number, groups: Uint32Array): NativeGrowResult;
  /** Drops a group; returns the pool pages that became free. */
  releaseGroup(group: number): number;
  close(): void;
}

interface VmemAddon {
  VirtualKV: new (options: NativeVirtualKVOptions) => NativeVirtualKV;
}

/** The addon's vmem part, through the one loader every native feature uses (ABI and build checks included). */
export function loadVmem(): VmemAddon {
  try {
    return loadNativeAddon() as NativeAddon & VmemAddon;
  } catch (e) {
    if (e instanceof NativeAddonError) throw new KVError('ERR_KV_NATIVE_MISSING', e.message);
    throw e;
  }
}

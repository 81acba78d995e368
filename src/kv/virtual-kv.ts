// vAttention on the CPU: the KV of every slot is contiguous in virtual memory, and physical pages from a
// memfd pool are mapped in as the slot grows (native/vmem_virtual_kv.cc does the work).
//
// The view's byte arrays cover each layer's whole reserved range, but only mapped pages may be touched:
// reading or writing a position the slot has not been grown to with step()/stepAsync() (+ wait()) is a
// SIGSEGV that kills the process, not an exception. So: step() before the model writes; never read past
// a slot's tokens. After close() the arrays are detached (length 0).
import type { ContiguousKV } from '../backend/backend.js';
import { checkSlotIndex, flattenKeep, toSeqLensArray } from './arguments.js';
import type { CachedBlocks } from './cached-blocks.js';
import { isKVError, KVError } from './errors.js';
import { headSliceBytes } from './format.js';
import type { GrowResult, KeepPositions, KVCacheManager, SeqLens } from './manager.js';
import { loadVmem, type NativeLayout, type NativeVirtualKV } from './native-vmem.js';
import { defaultPageSize } from './page-size.js';
import { residualRingFor, refuseCompaction, type ResidualRing } from './residual-ring.js';
import { groupTokens, headSlices, rangeCount, resolveShape, tokenBytes, type KVShape, type ResolvedKVShape } from './shape.js';
import { pageRuns, slotPageFlags } from './page-runs.js';
import { SlotEvictions } from './slot-evictions.js';
import { buildStats, type KVStats, type PageRun, type SlotState, type SlotStats } from './stats.js';

export interface VirtualKVOptions extends KVShape {
  /** Physical memory for K and V of all slots: the pool (memfd) size. */
  budgetBytes: number;
  /** Bytes per page, a multiple of 4 KiB up to 2 MiB; by default chosen from the budget (see page-size.ts). */
  pageSize?: number;
  /** A freed slot keeps its pages and is reused first; pages are taken back only when the pool runs dry. Default true. */
  deferredReclaim?: boolean;
  /** Punch freed pages out of the pool at once (else trim() does it). Default false. */
  trimOnFree?: boolean;
}

const SLOT_STATES: readonly SlotState[] = ['free', 'active', 'idle'];

export class VirtualKVManager implements KVCacheManager {
  readonly kind = 'virtual' as const;
  readonly shape: ResolvedKVShape;
  readonly pageBytes: number;
  /** Slot stride in tokens (maxContext rounded up to whole pages): the view's maxContext. */
  readonly paddedContext: number;
  readonly native: NativeVirtualKV;
  readonly blocks: CachedBlocks;
  private readonly layout: NativeLayout;
  private readonly scratch: Int32Array;
  private contiguous: ContiguousKV | undefined;
  /** The f16 window of the newest tokens, for formats that need one. */
  readonly residual: ResidualRing | undefined;
  private readonly evictions: SlotEvictions;
  /**
   * Per slot that is not free, its pages by who else holds them, as of the last call that could change a
   * mapping or a reference. Reading them takes a native call per (slot, range), so stats() rebuilds them
   * only after such a call, not at every poll of a steady decode.
   */
  private holders: Map<number, SlotHolders> | undefined;

  constructor(options: VirtualKVOptions) {
    this.shape = resolveShape(options);
    const pageSize = options.pageSize ?? defaultPageSize(options.budgetBytes, this.shape.maxContext * tokenBytes(this.shape), undefined, tokenBytes(this.shape));
    const addon = loadVmem();
    if (typeof addon.VirtualKV !== 'function') {
      throw new KVError('ERR_KV_NATIVE_MISSING', 'the native addon was built without vmem (native/vmem_*.cc)');
    }
    try {
      this.native = new addon.VirtualKV({
        layers: this.shape.layers,
        kvHeads: this.shape.kvHeads,
        headDim: this.shape.headDim,
        maxSlots: this.shape.maxSlots,
        maxContext: this.shape.maxContext,
        tokenBytes: tokenBytes(this.shape),
        rowGroup: groupTokens(this.shape),
        keyHeadBytes: headSliceBytes(this.shape.keyFormat, this.shape.headDim) ?? 0,
        valueHeadBytes: headSliceBytes(this.shape.valueFormat, this.shape.headDim) ?? 0,
        pageSize,
        budgetBytes: options.budgetBytes,
        deferredReclaim: options.deferredReclaim ?? true,
        trimOnFree: options.trimOnFree ?? false,
      });
    } catch (e) {
      // The native error has the code but not the class; the class is what crosses the engine's worker.
      throw isKVError(e) ? new KVError(e.code, e.message) : e;
    }
    this.layout = this.native.layout();
    this.pageBytes = this.layout.pageSize;
    this.paddedContext = this.layout.paddedContext;
    this.scratch = new Int32Array(this.shape.maxSlots);
    this.residual = residualRingFor(this.shape);
    this.evictions = new SlotEvictions(this.shape.maxSlots);
    this.blocks = new VirtualCachedBlocks(this.native, this.layout, rangeCount(this.shape), this.residual, () => this.mappingsChanged());
  }

  private mappingsChanged(): void {
    this.holders = undefined;
  }

  /** Passes a grow result on; one that mapped nothing changed no mapping (a refusal may have released idle slots). */
  private grown(result: GrowResult): GrowResult {
    if (!result.ok || result.pagesMapped > 0) this.mappingsChanged();
    return result;
  }

  /** Resizes the physical pool (growing it, or shrinking it by its free and idle pages). */
  reservePhysical(bytes: number): void {
    this.mappingsChanged();
    this.native.reservePhysical(bytes);
  }

  allocSlot(): number | null {
    this.mappingsChanged();
    const slot = this.native.allocSlot();
    if (slot < 0) return null;
    this.residual?.reset(slot);
    this.evictions.reset(slot);
    return slot;
  }

  freeSlot(slot: number): void {
    this.mappingsChanged();
    this.native.freeSlot(slot);
    this.residual?.reset(slot);
    this.evictions.reset(slot);
  }

  step(seqLens: SeqLens): GrowResult {
    return this.grown(this.native.step(toSeqLensArray(seqLens, this.shape.maxSlots, this.scratch)));
  }

  stepAsync(seqLens: SeqLens): GrowResult {
    return this.grown(this.native.stepAsync(toSeqLensArray(seqLens, this.shape.maxSlots, this.scratch)));
  }

  wait(): void {
    try {
      this.native.wait();
    } catch (e) {
      // A failed background mapping was undone.
      this.mappingsChanged();
      throw e;
    }
  }

  sharePrefix(src: number, dst: number, tokens: number): GrowResult {
    this.mappingsChanged();
    const result = this.native.share(src, dst, tokens);
    if (result.ok) {
      this.residual?.share(src, dst, tokens);
      this.evictions.copy(src, dst);
    }
    return result;
  }

  compact(slot: number, keep: KeepPositions): GrowResult {
    refuseCompaction(this.residual);
    const flat = flattenKeep(keep, this.shape);
    if (flat.per === 'head') headSlices(this.shape); // the clear refusal, before the native one
    checkSlotIndex(slot, this.shape.maxSlots);
    this.mappingsChanged();
    const before = this.native.slotTokens(slot);
    // The native manager checks the positions (checkKeep's rules and messages), once.
    const result = this.native.compact(slot, flat.flat, flat.kept);
    if (result.ok) this.evictions.compacted(slot, before, flat.kept);
    return result;
  }

  tokens(slot: number): number {
    return this.native.slotTokens(slot);
  }

  pagesNeeded(slot: number, tokens: number): number {
    return this.native.pagesNeeded(slot, tokens);
  }

  canGrow(slot: number, tokens: number): boolean {
    checkSlotIndex(slot, this.shape.maxSlots);
    if (tokens > this.shape.maxContext) return false;
    return this.pagesNeeded(slot, tokens) <= this.availablePages();
  }

  pagesForTokens(tokens: number): number {
    return Math.ceil(tokens / this.layout.rowsPerPage) * rangeCount(this.shape);
  }

  freePages(): number {
    return this.native.freePages();
  }

  availablePages(): number {
    return this.native.freePages() + this.native.reclaimablePages();
  }

  trim(): number {
    return this.native.trim();
  }

  /** Pool page ids mapped at each page of slot's (layer, K/V) range, in address order. */
  slotPages(slot: number, layer: number, kind: 'k' | 'v'): Uint32Array {
    return this.native.slotPages(slot, layer * 2 + (kind === 'k' ? 0 : 1));
  }

  /** Where the reserved ranges start (for reading /proc/self/smaps) and their byte layout. */
  addressLayout(): NativeLayout {
    return { ...this.layout, poolPages: this.native.layout().poolPages };
  }

  stats(): KVStats {
    const n = this.native.stats();
    const holders = (this.holders ??= this.readHolders(n.slotStates));
    const slots: SlotStats[] = [];
    for (let slot = 0; slot < this.shape.maxSlots; slot++) {
      const state = SLOT_STATES[n.slotStates[slot]!]!;
      if (state === 'free') continue;
      const pages = n.slotPages[slot]!;
      const held = holders.get(slot) ?? { runs: [], cachedPages: 0 };
      slots.push({
        slot,
        state,
        tokens: n.slotTokens[slot]!,
        pages,
        sharedPages: n.slotSharedPages[slot]!,
        cachedPages: held.cachedPages,
        bytes: pages * this.pageBytes,
        pageRuns: held.runs,
        evictedRows: this.evictions.evictedRows(slot),
        compactions: this.evictions.compactions(slot),
      });
    }
    const counts = {
      kind: this.kind,
      pageBytes: this.pageBytes,
      rowsPerPage: this.layout.rowsPerPage,
      rangePages: this.layout.pagesPerSlot,
      totalPages: n.totalPages,
      freePages: n.freePages,
      usedPages: n.usedPages,
      sharedPages: n.sharedPages,
      idlePages: n.idlePages,
      reclaimablePages: n.reclaimablePages,
      residentBytes: n.allocatedBytes,
      mapCalls: n.mapCalls,
      mapNs: n.mapNs,
      unmapCalls: n.unmapCalls,
      unmapNs: n.unmapNs,
    };
    return buildStats(counts, slots, this.shape, this.residual?.bytes ?? 0);
  }

  /**
   * Which pool pages each slot maps in each range, and how many slot ranges map each pool page: what tells
   * a page only its slot holds from one shared with another slot or kept by the prefix cache.
   */
  private readHolders(states: Uint8Array): Map<number, SlotHolders> {
    const refs = this.native.refCounts();
    const mappedBy = new Uint32Array(refs.length);
    const lists = new Map<number, Uint32Array[]>();
    for (let slot = 0; slot < this.shape.maxSlots; slot++) {
      if (SLOT_STATES[states[slot]!] === 'free') continue;
      const ranges = Array.from({ length: rangeCount(this.shape) }, (_, range) => this.native.slotPages(slot, range));
      for (const list of ranges) for (const p of list) mappedBy[p]!++;
      lists.set(slot, ranges);
    }
    const holders = new Map<number, SlotHolders>();
    for (const [slot, ranges] of lists) {
      const { flags, cached } = slotPageFlags(ranges, mappedBy, refs);
      holders.set(slot, { runs: pageRuns(flags), cachedPages: cached });
    }
    return holders;
  }

  /** Each layer's K and V as one byte array over the reserved range: [slot][page][row] (see ContiguousKV). */
  view(): ContiguousKV {
    if (this.contiguous) return this.contiguous;
    const arrays = Array.from({ length: rangeCount(this.shape) }, (_, range) => new Uint8Array(this.native.buffer(range)));
    const checkLayer = (layer: number): number => {
      if (!Number.isInteger(layer) || layer < 0 || layer >= this.shape.layers) {
        throw new KVError('ERR_KV_INVALID_ARGUMENT', `layer ${layer} out of range 0..${this.shape.layers - 1}`);
      }
      return layer * 2;
    };
    this.contiguous = {
      layout: 'contiguous',
      maxSlots: this.shape.maxSlots,
      maxContext: this.paddedContext,
      kvHeads: this.shape.kvHeads,
      headDim: this.shape.headDim,
      keyFormat: this.shape.keyFormat,
      valueFormat: this.shape.valueFormat,
      rowBytes: this.layout.tokenBytes,
      rowsPerPage: this.layout.rowsPerPage,
      pageBytes: this.pageBytes,
      residual: this.residual,
      rotate: this.shape.rotate,
      keys: (layer) => arrays[checkLayer(layer)]!,
      values: (layer) => arrays[checkLayer(layer) + 1]!,
    };
    return this.contiguous;
  }

  close(): void {
    this.native.close();
    this.contiguous = undefined;
  }
}

interface SlotHolders {
  runs: PageRun[];
  cachedPages: number;
}

/** Cached blocks as cache-owned page groups: the same pool pages mapped into every slot that uses them. */
class VirtualCachedBlocks implements CachedBlocks {
  readonly blockTokens: number;
  readonly blockPages: number;
  private live = 0;

  constructor(
    private readonly native: NativeVirtualKV,
    layout: NativeLayout,
    ranges: number,
    private readonly residual: ResidualRing | undefined,
    /** Told before every call that changes a page's references or mappings. */
    private readonly changing: () => void,
  ) {
    this.blockTokens = layout.blockTokens;
    this.blockPages = layout.blockPages * ranges;
  }

  retain(slot: number, index: number): number {
    this.changing();
    const group = this.native.retainGroup(slot, index);
    this.live++;
    return group;
  }

  attach(slot: number, blocks: readonly number[]): GrowResult {
    this.changing();
    const result = this.native.mapGroups(slot, Uint32Array.from(blocks));
    if (result.ok) this.residual?.reset(slot, blocks.length * this.blockTokens);
    return result;
  }

  release(block: number): number {
    this.changing();
    const freed = this.native.releaseGroup(block);
    this.live--;
    return freed;
  }

  held(): number {
    return this.live;
  }
}

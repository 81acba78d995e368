// The static baseline (HF / FasterTransformer style): every slot is backed for maxContext tokens up
// front, in plain anonymous memory, laid out exactly like the virtual manager's ranges.
import { alignedBytes } from '../backend/aligned-array.js';
import type { ContiguousKV } from '../backend/backend.js';
import { checkKeep, flattenKeep, toSeqLensArray } from './arguments.js';
import type { CachedBlocks } from './cached-blocks.js';
import { moveKeptRows } from './compaction.js';
import { KVError } from './errors.js';
import type { GrowResult, KeepPositions, KVCacheManager, SeqLens } from './manager.js';
import { groupTokens, headSlices, rangeCount, resolveShape, tokenBytes, type KVShape, type ResolvedKVShape } from './shape.js';
import { residualRingFor, refuseCompaction, type ResidualRing } from './residual-ring.js';
import { SlotTable } from './slot-table.js';
import { SlotEvictions } from './slot-evictions.js';
import { buildStats, type KVStats, type SlotStats } from './stats.js';

export interface StaticKVOptions extends KVShape {
  /** Touch every page at construction so the memory is really backed (default true). */
  prefault?: boolean;
}

const NOTHING_NEEDED: GrowResult = { ok: true, pagesNeeded: 0, pagesAvailable: 0, pagesMapped: 0 };
/** Tokens per cached block: vLLM's default block, since static slots have no pages of their own to share. */
const STATIC_BLOCK_TOKENS = 16;

export class StaticKVManager implements KVCacheManager {
  readonly kind = 'static' as const;
  readonly shape: ResolvedKVShape;
  /** A page is one slot's whole (layer, K/V) range: maxContext tokens. */
  readonly pageBytes: number;
  private readonly slots: SlotTable;
  private readonly arrays: Uint8Array[];
  private readonly rowBytes: number;
  private readonly slotBytes: number;
  private readonly ranges: number;
  private readonly scratch: Int32Array;
  private readonly contiguous: ContiguousKV;
  readonly blocks: CachedBlocks;
  /** The f16 window of the newest tokens, for formats that need one. */
  readonly residual: ResidualRing | undefined;
  /** Tokens per cached block (a whole group of the formats). */
  private readonly blockTokens: number;
  private readonly evictions: SlotEvictions;

  constructor(options: StaticKVOptions) {
    this.shape = resolveShape(options);
    this.ranges = rangeCount(this.shape);
    this.blockTokens = Math.max(STATIC_BLOCK_TOKENS, groupTokens(this.shape));
    this.residual = residualRingFor(this.shape);
    this.rowBytes = tokenBytes(this.shape);
    this.slotBytes = this.shape.maxContext * this.rowBytes;
    this.pageBytes = this.slotBytes;
    this.arrays = Array.from({ length: this.ranges }, () => {
      const a = alignedBytes(this.shape.maxSlots * this.slotBytes);
      if (options.prefault ?? true) a.fill(0);
      return a;
    });
    this.slots = new SlotTable(this.shape.maxSlots, this.shape.maxContext);
    this.scratch = new Int32Array(this.shape.maxSlots);
    this.evictions = new SlotEvictions(this.shape.maxSlots);
    this.contiguous = {
      layout: 'contiguous',
      maxSlots: this.shape.maxSlots,
      maxContext: this.shape.maxContext,
      kvHeads: this.shape.kvHeads,
      headDim: this.shape.headDim,
      keyFormat: this.shape.keyFormat,
      valueFormat: this.shape.valueFormat,
      rowBytes: this.rowBytes,
      rowsPerPage: this.shape.maxContext,
      pageBytes: this.slotBytes,
      residual: this.residual,
      rotate: this.shape.rotate,
      keys: (layer) => this.arrays[layer * 2]!,
      values: (layer) => this.arrays[layer * 2 + 1]!,
    };
    this.blocks = this.copiedBlocks();
  }

  /** The baseline prefix cache: a cached block is a copy of its rows, copied back into each slot that uses it. */
  private copiedBlocks(): CachedBlocks {
    const blockBytes = this.blockTokens * this.rowBytes;
    const store = new Map<number, { rows: Uint8Array[]; refs: number }>();
    let nextId = 0;
    return {
      blockTokens: this.blockTokens,
      blockPages: 0,
      retain: (slot, index) => {
        this.slots.requireActive(slot, 'retain');
        if ((index + 1) * this.blockTokens > this.slots.tokens[slot]!) {
          throw new KVError('ERR_KV_INVALID_ARGUMENT', `retain: block ${index} of slot ${slot} is not full (${this.slots.tokens[slot]} tokens)`);
        }
        const from = slot * this.slotBytes + index * blockBytes;
        store.set(nextId, { rows: this.arrays.map((a) => a.slice(from, from + blockBytes)), refs: 1 });
        return nextId++;
      },
      attach: (slot, ids) => {
        this.slots.requireActive(slot, 'attach');
        if (this.slots.tokens[slot] !== 0) throw new KVError('ERR_KV_INVALID_ARGUMENT', `attach: slot ${slot} already holds tokens`);
        this.slots.checkStepTarget(slot, ids.length * this.blockTokens);
        ids.forEach((id, i) => {
          const block = store.get(id);
          if (!block) throw new KVError('ERR_KV_INVALID_ARGUMENT', `attach: block ${id} is not held`);
          block.rows.forEach((rows, range) => this.arrays[range]!.set(rows, slot * this.slotBytes + i * blockBytes));
        });
        this.slots.tokens[slot] = ids.length * this.blockTokens;
        this.residual?.reset(slot, ids.length * this.blockTokens);
        return NOTHING_NEEDED;
      },
      release: (id) => {
        const block = store.get(id);
        if (!block) throw new KVError('ERR_KV_INVALID_ARGUMENT', `release: block ${id} is not held`);
        if (--block.refs === 0) store.delete(id);
        return 0;
      },
      held: () => store.size,
    };
  }

  allocSlot(): number | null {
    const slot = this.slots.alloc();
    if (slot === null) return null;
    this.residual?.reset(slot);
    this.evictions.reset(slot);
    return slot;
  }

  freeSlot(slot: number): void {
    this.slots.free(slot);
    this.residual?.reset(slot);
    this.evictions.reset(slot);
  }

  step(seqLens: SeqLens): GrowResult {
    const lens = toSeqLensArray(seqLens, this.shape.maxSlots, this.scratch);
    for (let s = 0; s < lens.length; s++) if (lens[s]! > 0) this.slots.checkStepTarget(s, lens[s]!);
    for (let s = 0; s < lens.length; s++) if (lens[s]! > 0) this.slots.tokens[s] = lens[s]!;
    return NOTHING_NEEDED;
  }

  stepAsync(seqLens: SeqLens): GrowResult {
    return this.step(seqLens);
  }

  wait(): void {}

  sharePrefix(src: number, dst: number, tokens: number): GrowResult {
    this.slots.checkShare(src, dst, tokens);
    for (const a of this.arrays) {
      a.copyWithin(dst * this.slotBytes, src * this.slotBytes, src * this.slotBytes + tokens * this.rowBytes);
    }
    this.slots.tokens[dst] = tokens;
    this.residual?.share(src, dst, tokens);
    this.evictions.copy(src, dst);
    return NOTHING_NEEDED;
  }

  compact(slot: number, keep: KeepPositions): GrowResult {
    refuseCompaction(this.residual);
    this.slots.requireActive(slot, 'compact');
    const flat = flattenKeep(keep, this.shape);
    const slices = flat.per === 'head' ? headSlices(this.shape) : { key: 0, value: 0 };
    checkKeep(flat, this.shape.kvHeads, slot, this.slots.tokens[slot]!);
    const base = slot * this.slotBytes;
    const rowOffset = (position: number) => base + position * this.rowBytes;
    for (let layer = 0; layer < this.shape.layers; layer++) {
      moveKeptRows(this.arrays[layer * 2]!, rowOffset, flat, layer, this.shape.kvHeads, this.rowBytes, slices.key);
      moveKeptRows(this.arrays[layer * 2 + 1]!, rowOffset, flat, layer, this.shape.kvHeads, this.rowBytes, slices.value);
    }
    this.evictions.compacted(slot, this.slots.tokens[slot]!, flat.kept);
    this.slots.tokens[slot] = flat.kept;
    return NOTHING_NEEDED;
  }

  tokens(slot: number): number {
    this.slots.requireActive(slot, 'tokens');
    return this.slots.tokens[slot]!;
  }

  pagesNeeded(): number {
    return 0;
  }

  canGrow(slot: number, tokens: number): boolean {
    return this.slots.isActive(slot) && tokens <= this.shape.maxContext;
  }

  /** A new sequence needs a whole slot, whatever its length. */
  pagesForTokens(): number {
    return this.ranges;
  }

  freePages(): number {
    return (this.shape.maxSlots - this.slots.activeCount()) * this.ranges;
  }

  availablePages(): number {
    return this.freePages();
  }

  trim(): number {
    return 0;
  }

  stats(): KVStats {
    const slots: SlotStats[] = [];
    for (let slot = 0; slot < this.shape.maxSlots; slot++) {
      if (this.slots.isActive(slot)) {
        slots.push({
          slot,
          state: 'active',
          tokens: this.slots.tokens[slot]!,
          pages: this.ranges,
          sharedPages: 0,
          cachedPages: 0,
          bytes: this.ranges * this.pageBytes,
          // One page per range, all of the slot's own: cached blocks are copies kept outside the slots.
          pageRuns: [{ pages: 1, shared: false, cached: false }],
          evictedRows: this.evictions.evictedRows(slot),
          compactions: this.evictions.compactions(slot),
        });
      }
    }
    const totalPages = this.shape.maxSlots * this.ranges;
    const counts = {
      kind: this.kind,
      pageBytes: this.pageBytes,
      rowsPerPage: this.shape.maxContext,
      rangePages: 1,
      totalPages,
      freePages: this.freePages(),
      usedPages: slots.length * this.ranges,
      residentBytes: totalPages * this.pageBytes,
    };
    return buildStats(counts, slots, this.shape, this.residual?.bytes ?? 0);
  }

  view(): ContiguousKV {
    return this.contiguous;
  }

  close(): void {}
}

// vLLM-style paged KV cache: memory is a pool of blocks of `blockSize` tokens; each slot has a block
// table. Here only the memory manager (allocation, sharing, compaction, accounting); the attention kernel
// that walks the block tables is separate. One block id covers all layers, so in page units (one layer's
// K or V) a block is layers x 2 pages.
import { alignedBytes } from '../backend/aligned-array.js';
import { checkKeep, flattenKeep, toSeqLensArray } from './arguments.js';
import { BlockAllocator } from './block-allocator.js';
import type { CachedBlocks } from './cached-blocks.js';
import { moveKeptRows, writtenRows } from './compaction.js';
import { KVError } from './errors.js';
import type { GrowResult, KeepPositions, KVCacheManager, SeqLens } from './manager.js';
import type { PagedKVView } from './paged-view.js';
import { groupTokens, headSlices, rangeCount, resolveShape, tokenBytes, type KVShape, type ResolvedKVShape } from './shape.js';
import { residualRingFor, refuseCompaction, type ResidualRing } from './residual-ring.js';
import { SlotTable } from './slot-table.js';
import { pageRuns, slotPageFlags } from './page-runs.js';
import { SlotEvictions } from './slot-evictions.js';
import { buildStats, type KVStats, type SlotStats } from './stats.js';

export interface PagedKVOptions extends KVShape {
  budgetBytes: number;
  /** Tokens per block, 16..256 (default 16, vLLM's). */
  blockSize?: number;
}

export class PagedKVManager implements KVCacheManager {
  readonly kind = 'paged' as const;
  readonly shape: ResolvedKVShape;
  readonly pageBytes: number;
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly maxBlocksPerSlot: number;
  readonly blocks: CachedBlocks;
  private readonly pool: BlockAllocator;
  private readonly slots: SlotTable;
  private readonly tables: Int32Array;
  private readonly blockCounts: Int32Array;
  private readonly arrays: Uint8Array[];
  private readonly rowBytes: number;
  private readonly ranges: number;
  private readonly scratch: Int32Array;
  /** The f16 window of the newest tokens, for formats that need one. */
  readonly residual: ResidualRing | undefined;
  private readonly evictions: SlotEvictions;

  constructor(options: PagedKVOptions) {
    this.shape = resolveShape(options);
    const group = groupTokens(this.shape);
    this.blockSize = options.blockSize ?? Math.max(16, group);
    if (!Number.isInteger(this.blockSize) || this.blockSize < 16 || this.blockSize > 256) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT', `blockSize must be an integer from 16 to 256, got ${this.blockSize}`);
    }
    if (this.blockSize % group !== 0) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT', `blockSize must be a multiple of ${group} with the ${this.shape.type.k}/${this.shape.type.v} formats, which encode ${group} tokens together; got ${this.blockSize}`);
    }
    this.ranges = rangeCount(this.shape);
    this.pageBytes = this.blockSize * tokenBytes(this.shape);
    this.numBlocks = Math.floor(options.budgetBytes / (this.pageBytes * this.ranges));
    if (this.numBlocks < 1) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT', `budget of ${options.budgetBytes} bytes is smaller than one block (${this.pageBytes * this.ranges} bytes)`);
    }
    this.maxBlocksPerSlot = Math.ceil(this.shape.maxContext / this.blockSize);
    this.pool = new BlockAllocator(this.numBlocks);
    this.slots = new SlotTable(this.shape.maxSlots, this.shape.maxContext);
    this.tables = new Int32Array(this.shape.maxSlots * this.maxBlocksPerSlot).fill(-1);
    this.blockCounts = new Int32Array(this.shape.maxSlots);
    this.rowBytes = tokenBytes(this.shape);
    // Untouched pages of these arrays stay unbacked (zero pages) until a block is written.
    this.arrays = Array.from({ length: this.ranges }, () => alignedBytes(this.numBlocks * this.blockSize * this.rowBytes));
    this.scratch = new Int32Array(this.shape.maxSlots);
    this.residual = residualRingFor(this.shape);
    this.evictions = new SlotEvictions(this.shape.maxSlots);
    this.blocks = this.cachedBlocks();
  }

  /** Cached blocks are pool blocks with a reference of their own; a slot using one points its table at it. */
  private cachedBlocks(): CachedBlocks {
    let live = 0;
    return {
      blockTokens: this.blockSize,
      blockPages: this.ranges,
      retain: (slot, index) => {
        this.slots.requireActive(slot, 'retain');
        if ((index + 1) * this.blockSize > this.slots.tokens[slot]!) {
          throw new KVError('ERR_KV_INVALID_ARGUMENT', `retain: block ${index} of slot ${slot} is not full (${this.slots.tokens[slot]} tokens)`);
        }
        const id = this.tables[slot * this.maxBlocksPerSlot + index]!;
        this.pool.retain(id);
        live++;
        return id;
      },
      attach: (slot, ids) => {
        this.slots.requireActive(slot, 'attach');
        if (this.slots.tokens[slot] !== 0) throw new KVError('ERR_KV_INVALID_ARGUMENT', `attach: slot ${slot} already holds tokens`);
        this.slots.checkStepTarget(slot, ids.length * this.blockSize);
        this.truncateBlocks(slot, 0);
        for (const id of ids) {
          this.pool.retain(id);
          this.appendBlock(slot, id);
        }
        this.slots.tokens[slot] = ids.length * this.blockSize;
        this.residual?.reset(slot, ids.length * this.blockSize);
        return this.result(true, 0, ids.length);
      },
      release: (id) => {
        live--;
        return this.pool.release(id) ? this.ranges : 0;
      },
      held: () => live,
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
    this.truncateBlocks(slot, 0);
  }

  private blocksFor(tokens: number): number {
    return Math.ceil(tokens / this.blockSize);
  }

  private truncateBlocks(slot: number, keep: number): void {
    const base = slot * this.maxBlocksPerSlot;
    for (let i = keep; i < this.blockCounts[slot]!; i++) {
      this.pool.release(this.tables[base + i]!);
      this.tables[base + i] = -1;
    }
    this.blockCounts[slot] = Math.min(this.blockCounts[slot]!, keep);
  }

  private appendBlock(slot: number, id: number): void {
    this.tables[slot * this.maxBlocksPerSlot + this.blockCounts[slot]!] = id;
    this.blockCounts[slot]!++;
  }

  private result(ok: boolean, blocksNeeded: number, blocksMapped: number): GrowResult {
    return {
      ok,
      ...(ok ? {} : { limit: 'pages' as const }),
      pagesNeeded: blocksNeeded * this.ranges,
      pagesAvailable: this.pool.freeCount * this.ranges,
      pagesMapped: blocksMapped * this.ranges,
    };
  }

  step(seqLens: SeqLens): GrowResult {
    const lens = toSeqLensArray(seqLens, this.shape.maxSlots, this.scratch);
    let need = 0;
    for (let s = 0; s < lens.length; s++) {
      if (lens[s]! <= 0) continue;
      this.slots.checkStepTarget(s, lens[s]!);
      need += Math.max(0, this.blocksFor(lens[s]!) - this.blockCounts[s]!);
    }
    if (need > this.pool.freeCount) return this.result(false, need, 0);
    for (let s = 0; s < lens.length; s++) {
      if (lens[s]! <= 0) continue;
      while (this.blockCounts[s]! < this.blocksFor(lens[s]!)) this.appendBlock(s, this.pool.take());
      this.slots.tokens[s] = lens[s]!;
    }
    return this.result(true, need, need);
  }

  /** Nothing to map ahead of time: block tables change synchronously. */
  stepAsync(seqLens: SeqLens): GrowResult {
    return this.step(seqLens);
  }

  wait(): void {}

  private rowOffset(slot: number, position: number): number {
    const block = this.tables[slot * this.maxBlocksPerSlot + Math.floor(position / this.blockSize)]!;
    return (block * this.blockSize + (position % this.blockSize)) * this.rowBytes;
  }

  private copyBlock(from: number, to: number): void {
    const bytes = this.blockSize * this.rowBytes;
    for (const a of this.arrays) a.copyWithin(to * bytes, from * bytes, (from + 1) * bytes);
  }

  sharePrefix(src: number, dst: number, tokens: number): GrowResult {
    this.slots.checkShare(src, dst, tokens);
    const full = Math.floor(tokens / this.blockSize);
    const partialRows = tokens % this.blockSize;
    const need = partialRows > 0 ? 1 : 0;
    this.truncateBlocks(dst, 0);
    if (need > this.pool.freeCount) return this.result(false, need, 0);
    const srcBase = src * this.maxBlocksPerSlot;
    for (let i = 0; i < full; i++) {
      this.pool.retain(this.tables[srcBase + i]!);
      this.appendBlock(dst, this.tables[srcBase + i]!);
    }
    if (partialRows > 0) {
      const copy = this.pool.take();
      this.copyBlock(this.tables[srcBase + full]!, copy);
      this.appendBlock(dst, copy);
    }
    this.slots.tokens[dst] = tokens;
    this.residual?.share(src, dst, tokens);
    this.evictions.copy(src, dst);
    return this.result(true, need, full + need);
  }

  compact(slot: number, keep: KeepPositions): GrowResult {
    refuseCompaction(this.residual);
    this.slots.requireActive(slot, 'compact');
    const flat = flattenKeep(keep, this.shape);
    const slices = flat.per === 'head' ? headSlices(this.shape) : { key: 0, value: 0 };
    checkKeep(flat, this.shape.kvHeads, slot, this.slots.tokens[slot]!);
    // Blocks that rows are written into must not be shared: copy those first. Blocks whose rows all
    // stay put keep being shared.
    const written = writtenRows(flat);
    const keepBlocks = this.blocksFor(flat.kept);
    const base = slot * this.maxBlocksPerSlot;
    const copies: number[] = [];
    for (let b = 0; b < keepBlocks; b++) {
      if (this.pool.refCount(this.tables[base + b]!) <= 1) continue;
      const end = Math.min(flat.kept, (b + 1) * this.blockSize);
      for (let i = b * this.blockSize; i < end; i++) {
        if (written[i]) {
          copies.push(b);
          break;
        }
      }
    }
    if (copies.length > this.pool.freeCount) return this.result(false, copies.length, 0);
    for (const b of copies) {
      const copy = this.pool.take();
      this.copyBlock(this.tables[base + b]!, copy);
      this.pool.release(this.tables[base + b]!);
      this.tables[base + b] = copy;
    }
    // Every layer's K and V share the block table: look each position up once (after the copies).
    const offsets = new Float64Array(this.slots.tokens[slot]!);
    for (let p = 0; p < offsets.length; p++) offsets[p] = this.rowOffset(slot, p);
    const rowOffset = (position: number) => offsets[position]!;
    for (let layer = 0; layer < this.shape.layers; layer++) {
      moveKeptRows(this.arrays[layer * 2]!, rowOffset, flat, layer, this.shape.kvHeads, this.rowBytes, slices.key);
      moveKeptRows(this.arrays[layer * 2 + 1]!, rowOffset, flat, layer, this.shape.kvHeads, this.rowBytes, slices.value);
    }
    // Whole blocks past the kept rows go back to the pool now.
    this.truncateBlocks(slot, keepBlocks);
    this.evictions.compacted(slot, this.slots.tokens[slot]!, flat.kept);
    this.slots.tokens[slot] = flat.kept;
    return this.result(true, copies.length, copies.length);
  }

  tokens(slot: number): number {
    this.slots.requireActive(slot, 'tokens');
    return this.slots.tokens[slot]!;
  }

  pagesNeeded(slot: number, tokens: number): number {
    return Math.max(0, this.blocksFor(tokens) - this.blockCounts[slot]!) * this.ranges;
  }

  canGrow(slot: number, tokens: number): boolean {
    return tokens <= this.shape.maxContext && this.pagesNeeded(slot, tokens) <= this.availablePages();
  }

  pagesForTokens(tokens: number): number {
    return this.blocksFor(tokens) * this.ranges;
  }

  freePages(): number {
    return this.pool.freeCount * this.ranges;
  }

  availablePages(): number {
    return this.freePages();
  }

  /** The block arrays are allocated once; nothing is returned to the OS. */
  trim(): number {
    return 0;
  }

  /** Block ids of slot, in position order. */
  blockTable(slot: number): Int32Array {
    const base = slot * this.maxBlocksPerSlot;
    return this.tables.slice(base, base + this.blockCounts[slot]!);
  }

  blockRefCount(block: number): number {
    return this.pool.refCount(block);
  }

  stats(): KVStats {
    // How many block tables point at each block: shared means more than one (the prefix cache's own
    // reference on a block is not a table's).
    const tablesUsing = new Uint16Array(this.numBlocks);
    const tables = Array.from({ length: this.shape.maxSlots }, (_, slot) => this.tables.subarray(slot * this.maxBlocksPerSlot, slot * this.maxBlocksPerSlot + this.blockCounts[slot]!));
    for (const table of tables) for (const b of table) tablesUsing[b]!++;
    // A block's references beyond the tables pointing at it are the prefix cache's.
    const refs = this.pool.refCounts();
    const slots: SlotStats[] = [];
    for (let slot = 0; slot < this.shape.maxSlots; slot++) {
      if (!this.slots.isActive(slot)) continue;
      const table = tables[slot]!;
      const pages = table.length * this.ranges;
      const sharedBlocks = table.reduce((n, b) => n + (tablesUsing[b]! > 1 ? 1 : 0), 0);
      const { flags, cached } = slotPageFlags([table], tablesUsing, refs);
      slots.push({
        slot,
        state: 'active',
        tokens: this.slots.tokens[slot]!,
        pages,
        sharedPages: sharedBlocks * this.ranges,
        cachedPages: cached * this.ranges,
        bytes: pages * this.pageBytes,
        pageRuns: pageRuns(flags),
        evictedRows: this.evictions.evictedRows(slot),
        compactions: this.evictions.compactions(slot),
      });
    }
    const usedPages = (this.numBlocks - this.pool.freeCount) * this.ranges;
    const counts = {
      kind: this.kind,
      pageBytes: this.pageBytes,
      rowsPerPage: this.blockSize,
      rangePages: this.maxBlocksPerSlot,
      totalPages: this.numBlocks * this.ranges,
      freePages: this.freePages(),
      usedPages,
      sharedPages: tablesUsing.reduce((n, t) => n + (t > 1 ? 1 : 0), 0) * this.ranges,
      residentBytes: usedPages * this.pageBytes,
    };
    return buildStats(counts, slots, this.shape, this.residual?.bytes ?? 0);
  }

  view(): PagedKVView {
    return {
      layout: 'paged',
      maxSlots: this.shape.maxSlots,
      kvHeads: this.shape.kvHeads,
      headDim: this.shape.headDim,
      blockSize: this.blockSize,
      numBlocks: this.numBlocks,
      maxBlocksPerSlot: this.maxBlocksPerSlot,
      keyFormat: this.shape.keyFormat,
      valueFormat: this.shape.valueFormat,
      rowBytes: this.rowBytes,
      keys: (layer) => this.arrays[layer * 2]!,
      values: (layer) => this.arrays[layer * 2 + 1]!,
      blockTables: this.tables,
      seqLens: this.slots.tokens,
      residual: this.residual,
      rotate: this.shape.rotate,
    };
  }

  close(): void {}
}

// The paged cache as a paged attention kernel reads it (vLLM's PagedAttention layout).

export interface PagedKVView {
  readonly layout: 'paged';
  readonly maxSlots: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Tokens per block. */
  readonly blockSize: number;
  readonly numBlocks: number;
  /** Columns of blockTables: ceil(maxContext / blockSize). */
  readonly maxBlocksPerSlot: number;
  /** Layer's K as [block][offsetInBlock][kvHead][headDim]; a block id is the same in every layer. */
  keys(layer: number): Float32Array;
  values(layer: number): Float32Array;
  /**
   * blockTables[slot * maxBlocksPerSlot + i] = block holding the slot's positions i*blockSize ..
   * (i+1)*blockSize - 1, or -1. Live: it changes in place as slots grow.
   */
  readonly blockTables: Int32Array;
  /** Tokens per slot. Live. */
  readonly seqLens: Int32Array;
}

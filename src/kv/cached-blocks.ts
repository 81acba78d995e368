// What a KV manager offers the prefix cache: blocks of a slot's tokens that stay alive after the slot is
// freed, and that can become the first blocks of another slot. Each manager does it its own way: the
// virtual one maps the same pool pages into the new slot's range (zero-copy, still contiguous), the paged
// one points the block table at the same blocks (vLLM), the static one copies rows (the baseline).
import type { GrowResult } from './manager.js';

export interface CachedBlocks {
  /** Tokens in one block: the unit of sharing. */
  readonly blockTokens: number;
  /** Pool pages one block holds while cached (0 where the cache lives outside the pool). */
  readonly blockPages: number;
  /** Takes a new reference on block `index` of `slot` (it must lie below the slot's tokens); returns its id. */
  retain(slot: number, index: number): number;
  /**
   * Makes cached blocks, in order, the first blocks of `slot` (allocated, holding no tokens); the slot then
   * holds blocks.length x blockTokens tokens. Not ok (nothing changed) when the memory or mappings for it
   * are not there.
   */
  attach(slot: number, blocks: readonly number[]): GrowResult;
  /** Drops a reference taken by retain(); returns the pool pages that became free. */
  release(block: number): number;
  /** Blocks referenced by the cache now. */
  held(): number;
}

// The one interface of the KV-cache managers (virtual = vAttention, paged = vLLM-style block tables,
// static = every slot backed for maxContext). The scheduler asks it capacity questions before it admits
// or grows a sequence, and calls step/stepAsync before the model writes a step's K/V.
//
// Units: a "page" is `pageBytes` bytes of one (layer, K/V) of one slot, in every manager, so page counts
// can be compared across managers; a request for T tokens needs pagesForTokens(T) pages in all.
import type { KVView } from '../backend/backend.js';
import type { CachedBlocks } from './cached-blocks.js';
import type { ResidualRing } from './residual-ring.js';
import type { ResolvedKVShape } from './shape.js';
import type { KVStats } from './stats.js';

export type KVManagerKind = 'virtual' | 'paged' | 'static';

/**
 * Outcome of a call that may need pages. `ok: false`: nothing changed, and the caller waits for memory or
 * preempts a sequence (which frees pages and mappings alike). (Programming errors throw instead, see errors.ts.)
 */
export interface GrowResult {
  ok: boolean;
  /**
   * When not ok, what ran out: 'pages' (the pool) or 'mappings' (the virtual manager would take the
   * process past vm.max_map_count, even after idle slots gave up theirs; `reason` says what to change).
   */
  limit?: 'pages' | 'mappings';
  reason?: string;
  /** Pages the call needed beyond what the slots already held. */
  pagesNeeded: number;
  /** Pages that were free or reclaimable when it was asked. */
  pagesAvailable: number;
  /** Pages newly mapped (or placed in block tables) by the call, shared ones included. */
  pagesMapped: number;
}

/** Per-slot token targets for step(): seqLens[slot] = tokens the slot holds after the step; <= 0 = unchanged. */
export type SeqLens = ArrayLike<number>;

/**
 * Keep lists for compact(): one list for every layer, one per layer, or one per layer and KV head
 * (keep[layer][head]). Every list has the same length (the tokens kept). Row i of a list's rows gets row
 * keep[i]; entries are distinct, below the slot's tokens, and keep[i] >= i (a row stays or moves toward
 * the front; ascending lists qualify, and so do lists that move a few tail rows into the holes). One
 * exception to distinct: an entry may leave its own row in place (keep[i] = i) after an earlier entry
 * copied that row forward - a list whose rows from some index on are don't-care (a layer that keeps fewer
 * rows than the others, see engine/kv-eviction.ts) pads itself so.
 */
export type KeepPositions = Int32Array | readonly Int32Array[] | readonly (readonly Int32Array[])[];

export interface KVCacheManager {
  readonly kind: KVManagerKind;
  readonly shape: ResolvedKVShape;
  readonly pageBytes: number;
  /** Blocks the prefix cache keeps alive beyond their slot's life (see cached-blocks.ts). */
  readonly blocks: CachedBlocks;
  /** The f16 window of the newest tokens, where the formats need one (KIVI). */
  readonly residual: ResidualRing | undefined;

  /** Takes a slot for a new sequence, or returns null when all are in use. */
  allocSlot(): number | null;
  /** Gives a slot back. Throws ERR_KV_DOUBLE_FREE / ERR_KV_UNKNOWN_SLOT on misuse. */
  freeSlot(slot: number): void;
  /** Makes every slot able to hold seqLens[slot] tokens before the model writes them. */
  step(seqLens: SeqLens): GrowResult;
  /**
   * Like step(), but the memory work runs in the background; the result (pool exhaustion included) is
   * known at once. The next call into the manager, or wait(), joins it: call wait() (or the next
   * stepAsync) before the model writes the tokens this call made room for.
   */
  stepAsync(seqLens: SeqLens): GrowResult;
  /** Joins the background work of the last stepAsync (throws its error, if any). */
  wait(): void;
  /** dst (allocated, empty) gets src's first `tokens` tokens; full pages are shared, not copied, where possible. */
  sharePrefix(src: number, dst: number, tokens: number): GrowResult;
  /**
   * Keeps only the given positions, each list's rows (or head slices) moved to the front in list order,
   * and releases the pages past them in the same call. Shared pages written into are copied first.
   */
  compact(slot: number, keep: KeepPositions): GrowResult;

  /** Tokens slot holds now. */
  tokens(slot: number): number;
  /** Pages slot must still get to hold `tokens` tokens (0 if it can already). */
  pagesNeeded(slot: number, tokens: number): number;
  /** Whether slot can grow to `tokens` now (within maxContext, and enough free or reclaimable pages). */
  canGrow(slot: number, tokens: number): boolean;
  /** Pages a new sequence of `tokens` tokens needs: the admission question. */
  pagesForTokens(tokens: number): number;
  freePages(): number;
  /** Free pages plus pages that can be reclaimed from idle slots and slots' unused tails. */
  availablePages(): number;
  /** Returns unused memory to the OS where the manager can; returns the bytes released. */
  trim(): number;
  stats(): KVStats;
  /** The cache as the attention op reads it. */
  view(): KVView;
  close(): void;
}

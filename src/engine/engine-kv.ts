// What the engine needs of a KV-cache manager, whichever kind it is: slots to hold sequences, pool pages
// that back a slot as it grows, and a KV view (contiguous or paged) for the model. The scheduler plans every step
// against this interface; managed-kv.ts implements it over the managers in src/kv.
import type { KVView } from '../backend/backend.js';
import type { KVManagerKind, KVStats } from '../kv/index.js';

export type { KVManagerKind, KVStats };

export interface EngineKV {
  readonly kind: KVManagerKind;
  /** The cache as the model reads and writes it. */
  readonly view: KVView;
  readonly maxSlots: number;
  /** Most tokens one sequence may hold. */
  readonly maxContext: number;
  /** A free slot (holding no tokens), or undefined when every slot is in use. */
  allocSlot(): number | undefined;
  /** Pages a fresh slot needs for `tokens` tokens (admission checks). */
  pagesFor(tokens: number): number;
  /** Pages the pool can still hand out (free, or reclaimable from idle slots). */
  freePages(): number;
  /**
   * Backs `slot` for `tokens` tokens before this step writes them; false (and no change) when the pool is
   * too small, or when the mappings would pass the process's limit (see lastRefusal).
   */
  grow(slot: number, tokens: number): boolean;
  /** Why the last grow() that returned false did, in words for a client. */
  readonly lastRefusal: string | undefined;
  /** Records the planned step with the manager, once per step, before the model runs it. */
  commit(): void;
  /** Returns every page of the slot to the pool and the slot to the free list. */
  freeSlot(slot: number): void;
  stats(): KVStats;
  close(): void;
}

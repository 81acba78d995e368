// What the engine needs of a KV-cache manager, whichever kind it is: admission of a sequence into a slot
// (with whatever prefix of it is cached), pool pages that back a slot as it grows, publishing computed
// blocks to the prefix cache, and a KV view (contiguous or paged) for the model. The scheduler plans every
// step against this interface; managed-kv.ts implements it over the managers in src/kv.
import type { KVView } from '../backend/backend.js';
import type { KVManagerKind, KVStats } from '../kv/index.js';
import type { PrefixCacheStats, PrefixIndex } from '../kv/prefix-index.js';
import type { TierStoreStats } from '../kv/tiers/tiered-store.js';
import type { KVEviction } from './kv-eviction.js';
import type { Sequence } from './sequence.js';
import type { ChunkPlacement, SlotPlacement } from './chunk-placement.js';

export type { KVManagerKind, KVStats, PrefixCacheStats, TierStoreStats };

/** The answer to "can this sequence start now?". */
export type Admission =
  | {
      ok: true;
      slot: number;
      /** Tokens found in the prefix cache or loaded from a tier: the sequence's KV already holds them. */
      cached: number;
      /** Tokens this step computes for it (after the cached ones). */
      count: number;
    }
  | {
      ok: false;
      /**
       * 'prefix': another running sequence is computing the blocks it would share (it waits for them);
       * 'slots' / 'memory': no slot, or not enough free pages above the reserve;
       * 'loading': its next blocks are being looked up in the KV tiers (it is admitted once that resolves);
       * 'chunks': some of its documents are not in the chunk store yet (chunk jobs are computing them);
       * 'refused': the pages were there but could not be mapped (`reason` says why).
       */
      wait: 'prefix' | 'slots' | 'memory' | 'loading' | 'chunks' | 'refused';
      reason?: string;
    };

/**
 * The KV side of one step's plan: every slot the step writes and how many tokens it holds afterwards
 * (pages for them are mapped while planning, so that refusals are known then), and the admissions with
 * what the prefix cache held for each. apply() records it with the manager before the model runs.
 */
export interface KVPlan {
  readonly targets: Map<number, number>;
  readonly admitted: { seq: Sequence; cached: number }[];
  /** Documents copied into admitted blended sequences' slots once the targets are backed (engine/blend.ts). */
  readonly placements: (SlotPlacement & { seq: Sequence })[];
}

export function emptyKVPlan(): KVPlan {
  return { targets: new Map(), admitted: [], placements: [] };
}

/** Whether a slot could be backed for more tokens; when not, why, in words for a client. */
export type GrowOutcome = { ok: true } | { ok: false; reason: string };

export interface AdmitOptions {
  /** Most tokens to compute this step. */
  budget: number;
  /** Admit only if every pending token fits the budget (prefill-first and static policies). */
  whole: boolean;
  /** Free pages to leave for running sequences (the watermark). */
  reservePages: number;
}

export interface EngineKV {
  readonly kind: KVManagerKind;
  /** The cache as the model reads and writes it. */
  readonly view: KVView;
  readonly maxSlots: number;
  /** Most tokens one sequence may hold. */
  readonly maxContext: number;
  /** Eviction of sequences that run with a KV policy (absent: this cache cannot evict). */
  readonly eviction?: KVEviction;
  /** The prefix cache's index, for whoever mirrors its blocks (absent: no prefix cache). */
  readonly prefix?: PrefixIndex | undefined;
  /** Tokens the prefix cache holds for the start of `seq` now (0 without a prefix cache). */
  cachedPrefix(seq: Sequence): number;
  /** Gives `seq` a slot holding its cached prefix, backed for `count` more tokens (added to `plan`); or says why not now. */
  admit(seq: Sequence, opts: AdmitOptions, plan: KVPlan): Admission;
  /** Pages the pool can still hand out (free, reclaimable from idle slots, or held only by the cache). */
  freePages(): number;
  /**
   * Backs `slot` for `tokens` tokens before this step writes them, and adds it to `plan`; not ok (and no
   * change) when the pool is too small, or when the mappings would pass the process's limit.
   */
  grow(slot: number, tokens: number, plan: KVPlan): GrowOutcome;
  /** Records the plan with the manager, once per step, before the model runs it. */
  apply(plan: KVPlan): void;
  /** After a step: caches the blocks of `seq` that are now fully computed. */
  publish(seq: Sequence): void;
  /**
   * Starts `child` (not yet admitted) from `parent`'s KV as it stands: a slot sharing the parent's full
   * pages and a copy of its partial last page. False (nothing changed) when no slot or page is free.
   */
  fork(parent: Sequence, child: Sequence): boolean;
  /** Takes `seq` out of its slot (and out of `plan`): its cache pins and claims go, and every page it alone held goes back. */
  release(seq: Sequence, plan?: KVPlan): void;
  /** Tier lookups in flight (sequences waiting on them are not runnable until they resolve). */
  loadsInFlight?(): number;
  /** Set by the engine core: called when a tier lookup resolves, so that waiting sequences get a step. */
  onLoaded?: () => void;
  /** CacheBlend's chunk store and placements (absent: this cache cannot blend documents). */
  readonly blend?: ChunkPlacement | undefined;
  /** After a chunk job computed its prompt: stores its document's KV in the chunk store. */
  storeChunk?(seq: Sequence): void;
  /** Gives back every cached block no sequence uses; returns the pool pages freed. */
  clearPrefixCache(): number;
  stats(): KVStats;
  prefixStats(): PrefixCacheStats | undefined;
  tierStats?(): TierStoreStats | undefined;
  /** Frees the cache; what the tiers still have queued is written first (bounded wait). */
  close(): void | Promise<void>;
}

// What the playground's KV map draws, taken from the engine's stats: the pool's totals, the cache's
// format and page geometry, the prefix cache's hit rate, blending and eviction totals, and per slot its
// pages as runs (stats.ts PageRun). Only these fields go out, several times a second, so the feed stays
// small however much else the engine reports.
import type { EngineStats } from '../engine/engine-types.js';
import type { KVType } from '../kv/format.js';
import type { SlotStats } from '../kv/stats.js';

/** A slot as the map draws it: the slot's stats (stats.ts SlotStats) without the byte counts. */
export type KvSlotView = Pick<SlotStats, 'slot' | 'state' | 'tokens' | 'pages' | 'sharedPages' | 'cachedPages' | 'pageRuns' | 'evictedRows' | 'compactions'>;

export interface KvSnapshot {
  /** Milliseconds since the epoch. */
  t: number;
  running: number;
  waiting: number;
  kind: string;
  kvType: KVType;
  bytesPerToken: number;
  pageBytes: number;
  /** Geometry of a slot's range: rows a page holds, pages at full context, (layer, K/V) ranges. */
  rowsPerPage: number;
  rangePages: number;
  ranges: number;
  maxSlots: number;
  maxContext: number;
  totalPages: number;
  usedPages: number;
  freePages: number;
  sharedPages: number;
  /** Of usedPages: pages of running sequences, pages only the prefix cache holds, pages idle slots keep. */
  runningPages: number;
  cachedPages: number;
  idlePages: number;
  storedTokens: number;
  steps: number;
  preemptions: number;
  /** The prefix cache's blocks and prompt tokens found in it (null when it is off). */
  prefixCache: { entries: number; blockTokens: number; queryTokens: number; hitTokens: number; hitRate: number } | null;
  /** Documents placed from the chunk store (null when the cache cannot blend). */
  blend: { documentsReused: number; tokensReused: number; tokensRecomputed: number } | null;
  /** Tokens evicted since the start (null when the cache cannot evict). */
  eviction: { compactions: number; evictedTokens: number; freedPages: number } | null;
  /** Slots that are not free, by slot number. */
  slots: KvSlotView[];
}

export function snapshotOf(s: EngineStats, maxContext: number, t = Date.now()): KvSnapshot {
  const kv = s.kv;
  const p = s.prefixCache;
  return {
    t,
    running: s.running,
    waiting: s.waiting,
    kind: kv.kind,
    kvType: kv.kvType,
    bytesPerToken: kv.bytesPerToken,
    pageBytes: kv.pageBytes,
    rowsPerPage: kv.rowsPerPage,
    rangePages: kv.rangePages,
    ranges: kv.ranges,
    maxSlots: kv.maxSlots,
    maxContext,
    totalPages: kv.totalPages,
    usedPages: kv.usedPages,
    freePages: kv.freePages,
    sharedPages: kv.sharedPages,
    runningPages: kv.runningPages,
    cachedPages: kv.cachedPages,
    idlePages: kv.idlePages,
    storedTokens: kv.storedTokens,
    steps: s.step.steps,
    preemptions: s.step.preemptions,
    prefixCache: p ? { entries: p.entries, blockTokens: p.blockTokens, queryTokens: p.queryTokens, hitTokens: p.hitTokens, hitRate: p.hitRate } : null,
    blend: s.blend ? { documentsReused: s.blend.documentsReused, tokensReused: s.blend.tokensReused, tokensRecomputed: s.blend.tokensRecomputed } : null,
    eviction: s.eviction ? { compactions: s.eviction.compactions, evictedTokens: s.eviction.evictedTokens, freedPages: s.eviction.freedPages } : null,
    slots: kv.slots.map((x) => ({
      slot: x.slot,
      state: x.state,
      tokens: x.tokens,
      pages: x.pages,
      sharedPages: x.sharedPages,
      cachedPages: x.cachedPages,
      pageRuns: x.pageRuns,
      evictedRows: x.evictedRows,
      compactions: x.compactions,
    })),
  };
}

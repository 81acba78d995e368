// What every KV manager reports about its memory, in one shape so the three can be compared.
import type { KVType } from './format.js';
import { bytesPerToken, rangeCount, type ResolvedKVShape } from './shape.js';

export type SlotState = 'free' | 'active' | 'idle';

/**
 * Consecutive page indices of a slot's range that are alike in who else holds them. Page index i covers
 * the slot's rows i x rowsPerPage onwards in every (layer, K/V) range; a flag is set when it holds in at
 * least one of them.
 */
export interface PageRun {
  pages: number;
  /** Another slot maps these pool pages too: stored once, seen in both ranges. */
  shared: boolean;
  /** The prefix cache holds them: they outlive the slot, for later requests with the same start. */
  cached: boolean;
}

export interface SlotStats {
  slot: number;
  /** 'idle': freed, but still holding its pages for the next request (deferred reclamation). */
  state: SlotState;
  tokens: number;
  /** Pages this slot maps, summed over layers and K/V (a shared page counts in every slot). */
  pages: number;
  /** Of those, pages also mapped into another slot (prefix sharing). */
  sharedPages: number;
  /** Of those, pages the prefix cache holds too (they outlive the slot). */
  cachedPages: number;
  bytes: number;
  /** The mapped page indices from the start of the range, in order (the rest of the range is unmapped). */
  pageRuns: PageRun[];
  /** Rows compaction dropped from the slot since it was taken (tokens an eviction policy removed). */
  evictedRows: number;
  /** Compactions of the slot since it was taken. */
  compactions: number;
}

export interface KVStats {
  kind: 'virtual' | 'paged' | 'static';
  /** The formats K and V are stored in. */
  kvType: KVType;
  /** Bytes one token's K and V take in every layer, in those formats (the capacity per token). */
  bytesPerToken: number;
  /** Bytes of the residual windows' f16 rings (KIVI), outside the pages: every slot's newest tokens. */
  residualBytes: number;
  /** Bytes of one page: the unit of every page count below. */
  pageBytes: number;
  /** Rows (tokens) one page of a (layer, K/V) range holds. */
  rowsPerPage: number;
  /** Pages one slot's (layer, K/V) range spans at maxContext: what it maps plus its unmapped reserve. */
  rangePages: number;
  /** (layer, K/V) ranges of a slot: a page index of a slot stands for this many pages. */
  ranges: number;
  /** Slots the manager has (the per-slot list below names only those not free). */
  maxSlots: number;
  totalPages: number;
  freePages: number;
  /** Pages holding data of some slot (each counted once, however many slots share it). */
  usedPages: number;
  /** Pages mapped into more than one slot. */
  sharedPages: number;
  /** Pages kept by idle slots. */
  idlePages: number;
  /** Pages held only by the prefix cache (given back at once when the pool needs them). */
  cachedPages: number;
  /** Pages used by running sequences: usedPages less those kept by idle slots or only by the cache. */
  runningPages: number;
  /** Pages that can be taken back when the pool runs dry (idle slots, pages beyond a slot's tokens). */
  reclaimablePages: number;
  activeSlots: number;
  idleSlots: number;
  storedTokens: number;
  /** Bytes of K and V the active slots' tokens occupy. */
  storedBytes: number;
  /** Bytes of pages held by active slots (a shared page counted in each). */
  activeBytes: number;
  /** Share of active slots' page bytes not filled by tokens: 1 - storedBytes / activeBytes. */
  fragmentation: number;
  /** Physical memory the manager holds now, as the OS accounts it where it can tell. */
  residentBytes: number;
  mapCalls: number;
  mapNs: number;
  unmapCalls: number;
  unmapNs: number;
  /** Slots that are not free. */
  slots: SlotStats[];
}

export function fragmentation(storedBytes: number, activeBytes: number): number {
  return activeBytes === 0 ? 0 : 1 - storedBytes / activeBytes;
}

/** Fills in the derived fields from the per-slot list. */
export function summarizeSlots(
  slots: SlotStats[],
  storedBytesPerToken: number,
): Pick<KVStats, 'activeSlots' | 'idleSlots' | 'storedTokens' | 'storedBytes' | 'activeBytes' | 'fragmentation'> {
  let activeSlots = 0;
  let idleSlots = 0;
  let storedTokens = 0;
  let activeBytes = 0;
  for (const s of slots) {
    if (s.state === 'active') {
      activeSlots++;
      storedTokens += s.tokens;
      activeBytes += s.bytes;
    } else if (s.state === 'idle') {
      idleSlots++;
    }
  }
  const storedBytes = storedTokens * storedBytesPerToken;
  return { activeSlots, idleSlots, storedTokens, storedBytes, activeBytes, fragmentation: fragmentation(storedBytes, activeBytes) };
}

/** The page counts a manager knows itself; the rest of KVStats is derived or defaults to 0. */
export type KVPageCounts = Pick<KVStats, 'kind' | 'pageBytes' | 'rowsPerPage' | 'rangePages' | 'totalPages' | 'freePages' | 'usedPages' | 'residentBytes'> &
  Partial<Pick<KVStats, 'sharedPages' | 'idlePages' | 'reclaimablePages' | 'mapCalls' | 'mapNs' | 'unmapCalls' | 'unmapNs'>>;

export function buildStats(counts: KVPageCounts, slots: SlotStats[], shape: ResolvedKVShape, residualBytes = 0): KVStats {
  const perToken = bytesPerToken(shape);
  return {
    kvType: shape.type,
    ranges: rangeCount(shape),
    maxSlots: shape.maxSlots,
    bytesPerToken: perToken,
    residualBytes,
    sharedPages: 0,
    idlePages: 0,
    reclaimablePages: 0,
    mapCalls: 0,
    mapNs: 0,
    unmapCalls: 0,
    unmapNs: 0,
    ...counts,
    cachedPages: 0,
    runningPages: counts.usedPages - (counts.idlePages ?? 0),
    ...summarizeSlots(slots, perToken),
    slots,
  };
}

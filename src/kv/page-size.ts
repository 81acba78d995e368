// Choice of the virtual manager's page size. Every mapped page can cost up to two VMAs (itself and the
// PROT_NONE gap after it), and vm.max_map_count (65530 by default) caps a process's VMAs, so the pool
// must not have more pages than the limit allows. Measured under continuous serving with a full pool,
// ranges growing side by side take about 0.75 VMAs per page; reaching the limit anyway is a refusal the
// scheduler handles (preemption), not a crash.
import { readFileSync } from 'node:fs';

export const MIN_PAGE_SIZE = 4 * 1024;
export const MAX_PAGE_SIZE = 2 * 1024 * 1024;
export const DEFAULT_PAGE_SIZE = 64 * 1024;
/** Mappings left to the rest of the process (the JS heap, the model file, thread stacks, libraries). */
const MAPPINGS_FOR_THE_REST = 8192;
const LINUX_DEFAULT_MAX_MAP_COUNT = 65530;

/** vm.max_map_count of this machine (Linux's default where it cannot be read). */
export function maxMapCount(): number {
  try {
    const limit = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim());
    return Number.isFinite(limit) && limit > 0 ? limit : LINUX_DEFAULT_MAX_MAP_COUNT;
  } catch {
    return LINUX_DEFAULT_MAX_MAP_COUNT;
  }
}

/** Most pool pages whose mappings fit under `limit` in the worst case (two VMAs each). */
export function maxPoolPages(limit: number): number {
  return Math.max(1024, Math.floor((limit - MAPPINGS_FOR_THE_REST) / 2));
}

/** A page is the prefix cache's unit of sharing: past this many tokens a page shares too coarsely. */
export const MAX_TOKENS_PER_PAGE = 32;

/**
 * The default page size for a pool of `budgetBytes`: 64 KiB, doubled until the pool has at most
 * maxPoolPages(limit) pages (up to 2 MiB), and halved (down to 4 KiB) while the pool stays small and
 * either one slot's range (`slotRangeBytes` = maxContext x tokenBytes) would fill less than half a page
 * or a page would hold more than MAX_TOKENS_PER_PAGE tokens of `tokenBytes` (when given).
 */
export function defaultPageSize(budgetBytes: number, slotRangeBytes: number, limit = maxMapCount(), tokenBytes = 0): number {
  const most = maxPoolPages(limit);
  let page = DEFAULT_PAGE_SIZE;
  while (page < MAX_PAGE_SIZE && budgetBytes / page > most) page *= 2;
  const tooCoarse = (p: number) => slotRangeBytes <= p / 2 || (tokenBytes > 0 && p / tokenBytes > MAX_TOKENS_PER_PAGE);
  while (page > MIN_PAGE_SIZE && tooCoarse(page) && budgetBytes / (page / 2) <= most) page /= 2;
  return page;
}

// Choice of the virtual manager's page size. Every mapped page can cost up to two VMAs (itself and the
// PROT_NONE gap after it), and vm.max_map_count defaults to 65530, so the pool is kept far below that.

export const MIN_PAGE_SIZE = 4 * 1024;
export const MAX_PAGE_SIZE = 2 * 1024 * 1024;
export const DEFAULT_PAGE_SIZE = 64 * 1024;
/** Pool pages the default page size aims to stay under (8x below the default map-count limit). */
export const TARGET_MAX_POOL_PAGES = 8192;

/**
 * The default page size for a pool of `budgetBytes`: 64 KiB, doubled until the pool has at most
 * TARGET_MAX_POOL_PAGES pages (up to 2 MiB), and halved (down to 4 KiB) while one slot's range
 * (`slotRangeBytes` = maxContext x tokenBytes) would fill less than half a page and the pool stays small.
 */
export function defaultPageSize(budgetBytes: number, slotRangeBytes: number): number {
  let page = DEFAULT_PAGE_SIZE;
  while (page < MAX_PAGE_SIZE && budgetBytes / page > TARGET_MAX_POOL_PAGES) page *= 2;
  while (page > MIN_PAGE_SIZE && slotRangeBytes <= page / 2 && budgetBytes / (page / 2) <= TARGET_MAX_POOL_PAGES) {
    page /= 2;
  }
  return page;
}

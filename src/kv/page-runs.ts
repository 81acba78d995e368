// Who holds a slot's pages besides the slot, as stats report it (stats.ts PageRun): the virtual and the
// paged manager both know each pool page's references and which slots map it, so both derive the runs
// here the same way.
import type { PageRun } from './stats.js';

/** Flag bits of one page index of a slot. */
const SHARED = 1;
const CACHED = 2;

/**
 * Flags of a slot's page indices, and how many of the pages behind them the prefix cache holds.
 * `ranges`: the pool page at each index, one list per range the index spans (the virtual manager's
 * (layer, K/V) ranges; the paged manager's one block table, whose blocks span them all). `mappedBy[p]`:
 * how many of all slots' ranges map pool page p; `refs[p]`: its references, which are those mappings
 * plus the prefix cache's.
 */
export function slotPageFlags(ranges: readonly ArrayLike<number>[], mappedBy: ArrayLike<number>, refs: ArrayLike<number>): { flags: Uint8Array; cached: number } {
  const flags = new Uint8Array(ranges.reduce((n, r) => Math.max(n, r.length), 0));
  let cached = 0;
  for (const pages of ranges) {
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i]!;
      if (mappedBy[p]! > 1) flags[i]! |= SHARED;
      if (refs[p]! > mappedBy[p]!) {
        flags[i]! |= CACHED;
        cached++;
      }
    }
  }
  return { flags, cached };
}

/** The flags as runs of equal neighbours, in page order. */
export function pageRuns(flags: ArrayLike<number>): PageRun[] {
  const runs: PageRun[] = [];
  for (let i = 0; i < flags.length; ) {
    const f = flags[i]!;
    let end = i + 1;
    while (end < flags.length && flags[end] === f) end++;
    runs.push({ pages: end - i, shared: (f & SHARED) !== 0, cached: (f & CACHED) !== 0 });
    i = end;
  }
  return runs;
}

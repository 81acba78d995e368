// Selection helpers the policies share: a top-k quickselect over row indices (O(n), no per-row allocation),
// ordering rows by position through one native typed-array sort, and keep-set builders.
import type { KeepSets } from './policy.js';
import { evictionArgumentError } from './policy.js';

type Keys = Float64Array | Float32Array | Int32Array;

/** Rows 0..n-1. */
export function allRows(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/** The same set for every (layer, head). */
export function uniformSets(layers: number, heads: number, set: Int32Array): KeepSets {
  return Array.from({ length: layers }, () => new Array<Int32Array>(heads).fill(set));
}

/** cand[lo, lo + k) as a fresh ascending keep set. */
export function ascendingSet(cand: Int32Array, lo: number, k: number): Int32Array {
  return cand.slice(lo, lo + k).sort();
}

/** NaN scores rank last, so the order stays total (the quickselect's scans rely on it). */
export function finite(x: number): number {
  return x === x ? x : -Infinity;
}

/**
 * Reorders cand[lo, hi) so that its k best rows come first, in no order: higher key first, ties to the larger
 * `tie` (the newer position). Wirth's quickselect with a median-of-three pivot: O(hi - lo) expected.
 */
export function selectBest(cand: Int32Array, lo: number, hi: number, k: number, key: Keys, tie: Int32Array): void {
  if (k <= 0 || k >= hi - lo) return;
  const better = (a: number, b: number): boolean => {
    const ka = key[a]!;
    const kb = key[b]!;
    return ka > kb || (ka === kb && tie[a]! > tie[b]!);
  };
  const t = lo + k - 1; // the k-th best ends here, everything before it at least as good
  let l = lo;
  let r = hi - 1;
  while (l < r) {
    const m = (l + r) >>> 1;
    let a = cand[l]!, b = cand[m]!, c = cand[r]!;
    // median of three keeps sorted or reversed inputs linear
    if (better(b, a)) [a, b] = [b, a];
    if (better(c, b)) {
      b = c;
      if (better(b, a)) b = a;
    }
    const x = b;
    let i = l;
    let j = r;
    do {
      while (better(cand[i]!, x)) i++;
      while (better(x, cand[j]!)) j--;
      if (i <= j) {
        const s = cand[i]!;
        cand[i] = cand[j]!;
        cand[j] = s;
        i++;
        j--;
      }
    } while (i <= j);
    if (j < t) l = i;
    if (t < i) r = j;
  }
}

/** Largest row count the packed position sort takes (position * rows + row stays an exact double). */
const MAX_SORT_ROWS = 1 << 22;

/**
 * Writes rows 0..rows-1 into `out` in ascending position order. Rows still in position order (no eviction
 * yet) cost one pass; otherwise one native Float64Array sort of position * rows + row keys (positions distinct).
 */
export function orderByPosition(pos: Int32Array, rows: number, out: Int32Array, packed: Float64Array): void {
  let sorted = true;
  for (let r = 1; r < rows && sorted; r++) sorted = pos[r]! > pos[r - 1]!;
  if (sorted) {
    for (let r = 0; r < rows; r++) out[r] = r;
    return;
  }
  if (rows > MAX_SORT_ROWS) throw evictionArgumentError(`eviction: at most ${MAX_SORT_ROWS} rows, got ${rows}`);
  const keys = packed.subarray(0, rows);
  for (let r = 0; r < rows; r++) keys[r] = pos[r]! * rows + r;
  keys.sort();
  for (let i = 0; i < rows; i++) out[i] = ((keys[i]! % rows) + rows) % rows;
}

// Selection helpers the policies share, each O(rows) per (layer, head) with no per-row allocation: a top-k
// quickselect over row indices, rows in position order by a radix sort, and keep-set builders.
import type { KeepSets } from './policy.js';
import { evictionArgumentError } from './policy.js';

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

let marks = new Uint8Array(0); // scratch; the functions here are synchronous

/**
 * The rows src[a, b) and src[c, d) as a fresh ascending keep set: marked, then collected by one scan of the
 * rows, cheaper than sorting them (V8's typed-array sort costs ~100 ns an element).
 */
export function ascendingSet(rows: number, src: Int32Array, a: number, b: number, c = 0, d = 0): Int32Array {
  if (marks.length < rows) marks = new Uint8Array(rows);
  for (let i = a; i < b; i++) marks[src[i]!] = 1;
  for (let i = c; i < d; i++) marks[src[i]!] = 1;
  const out = new Int32Array(b - a + d - c);
  let j = 0;
  for (let r = 0; r < rows; r++) {
    if (marks[r]) {
      marks[r] = 0;
      out[j++] = r;
    }
  }
  return out;
}

/** NaN scores rank last, so the order stays total (the quickselect's scans rely on it). */
export function finite(x: number): number {
  return x === x ? x : -Infinity;
}

/**
 * Reorders cand[lo, hi) so that its k best rows come first, in no order: higher key first, ties to the larger
 * `tie` (the newer position). Wirth's quickselect with a median-of-three pivot: O(hi - lo) expected. Keys are
 * always a Float64Array so the scans stay monomorphic (positions as keys: see positionKeys).
 */
export function selectBest(cand: Int32Array, lo: number, hi: number, k: number, key: Float64Array, tie: Int32Array): void {
  if (k <= 0 || k >= hi - lo) return;
  const t = lo + k - 1; // the k-th best ends here, everything before it at least as good
  let l = lo;
  let r = hi - 1;
  while (l < r) {
    const x = medianOfThree(cand[l]!, cand[(l + r) >>> 1]!, cand[r]!, key, tie);
    const kx = key[x]!;
    const tx = tie[x]!;
    let i = l;
    let j = r;
    do {
      for (;;) {
        const ki = key[cand[i]!]!;
        if (ki > kx || (ki === kx && tie[cand[i]!]! > tx)) i++;
        else break;
      }
      for (;;) {
        const kj = key[cand[j]!]!;
        if (kx > kj || (kx === kj && tx > tie[cand[j]!]!)) j--;
        else break;
      }
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

function better(a: number, b: number, key: Float64Array, tie: Int32Array): boolean {
  return key[a]! > key[b]! || (key[a] === key[b] && tie[a]! > tie[b]!);
}

/** The middle of three rows by rank; keeps sorted or reversed inputs linear. */
function medianOfThree(a: number, b: number, c: number, key: Float64Array, tie: Int32Array): number {
  if (better(b, a, key, tie)) [a, b] = [b, a];
  if (!better(c, b, key, tie)) return b;
  return better(c, a, key, tie) ? a : c;
}

/** Positions as selection keys into `out`: sign 1 ranks the newest first, -1 the oldest. */
export function positionKeys(pos: Int32Array, rows: number, out: Float64Array, sign = 1): Float64Array {
  for (let r = 0; r < rows; r++) out[r] = sign * pos[r]!;
  return out;
}

/** Radix digits of 11 bits: two passes cover a span of 4M positions. */
const DIGIT_BITS = 11;
const digitCounts = new Int32Array(1 << DIGIT_BITS); // scratch; the functions here are synchronous

/**
 * Writes rows 0..rows-1 into `out` in ascending position order (positions distinct). Rows still in position
 * order (no eviction yet) cost one pass; otherwise an LSD radix sort on position - min, 11 bits a pass, with
 * `tmp` (>= rows entries) as the second buffer: O(rows) where a comparison sort would cost O(rows log rows).
 */
export function orderByPosition(pos: Int32Array, rows: number, out: Int32Array, tmp: Int32Array): void {
  let sorted = true;
  let min = rows > 0 ? pos[0]! : 0;
  let max = min;
  for (let r = 1; r < rows; r++) {
    const p = pos[r]!;
    if (p <= pos[r - 1]!) sorted = false;
    if (p < min) min = p;
    else if (p > max) max = p;
  }
  for (let r = 0; r < rows; r++) out[r] = r;
  if (sorted) return;
  const bits = 32 - Math.clz32(max - min);
  const mask = (1 << DIGIT_BITS) - 1;
  let src = out;
  let dst = tmp;
  for (let shift = 0; shift < bits; shift += DIGIT_BITS) {
    digitCounts.fill(0);
    for (let i = 0; i < rows; i++) digitCounts[((pos[src[i]!]! - min) >>> shift) & mask]++;
    let sum = 0;
    for (let d = 0; d <= mask; d++) {
      const c = digitCounts[d]!;
      digitCounts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < rows; i++) {
      const row = src[i]!;
      dst[digitCounts[((pos[row]! - min) >>> shift) & mask]++] = row;
    }
    [src, dst] = [dst, src];
  }
  if (src !== out) out.set(src.subarray(0, rows));
}

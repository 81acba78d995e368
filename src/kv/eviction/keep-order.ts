// From a keep set to the compaction list the KV managers take. Kept rows already below the new length stay
// put; only the kept rows beyond it move, into the holes the dropped rows leave, so a compaction copies
// O(dropped) rows rather than rewriting the cache.
import { evictionArgumentError } from './policy.js';

/**
 * Entry i is the row that ends at row i (i < keepSet.length). Rows of the set below keepSet.length stay
 * (entry i = i); the set's rows at or beyond it fill the holes in ascending order. So list[i] >= i, and
 * applying the moves in ascending i never reads a row already overwritten.
 */
export function moveList(keepSet: Int32Array, rows: number): Int32Array {
  const k = keepSet.length;
  for (let i = 0; i < k; i++) {
    const r = keepSet[i]!;
    if (r < 0 || r >= rows || (i > 0 && r <= keepSet[i - 1]!)) {
      throw evictionArgumentError(`eviction: a keep set holds distinct ascending rows below ${rows}; entry ${i} is ${r}`);
    }
  }
  const list = new Int32Array(k);
  let tail = 0; // first entry of the set at or beyond k
  while (tail < k && keepSet[tail]! < k) tail++;
  let p = 0; // next entry of the set below k
  for (let i = 0; i < k; i++) {
    if (p < tail && keepSet[p] === i) {
      list[i] = i;
      p++;
    } else {
      list[i] = keepSet[tail++]!;
    }
  }
  return list;
}

/**
 * Applies a move list in place to per-row data `width` values wide (positions and scores move with their
 * rows); the first list.length rows then hold the kept rows.
 */
export function applyMoves(list: Int32Array, data: Int32Array | Float32Array | Float64Array, width = 1): void {
  for (let i = 0; i < list.length; i++) {
    const from = list[i]!;
    if (from === i) continue;
    data.copyWithin(i * width, from * width, (from + 1) * width);
  }
}

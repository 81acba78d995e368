// H2O: a few tokens ("heavy hitters") collect most of the attention over the whole sequence; keep them and a
// recent window. Scores are each row's attention summed over every query so far, per KV head, so heads differ.
import { checkInput, rowPositions, rowScores, type EvictionInput, type KeepSets } from './policy.js';
import { allRows, ascendingSet, finite, positionKeys, selectBest, uniformSets } from './select.js';

/**
 * Per (layer, head): the floor(keep / 2) newest rows, then the keep - floor(keep / 2) highest accumulated
 * scores among the rest (the paper's equal heavy and recent budgets, 10% + 10%). Ties go to the newer row.
 */
export function selectH2O(input: EvictionInput): KeepSets {
  checkInput(input);
  const { layers, kvHeads, rows, keep } = input;
  if (keep >= rows) return uniformSets(layers, kvHeads, allRows(rows));
  const recent = keep >> 1;
  const cand = new Int32Array(rows);
  const key = new Float64Array(rows);
  const newest = new Float64Array(rows);
  const out: KeepSets = [];
  for (let l = 0; l < layers; l++) {
    const sets: Int32Array[] = [];
    for (let h = 0; h < kvHeads; h++) {
      const pos = rowPositions(input, l, h);
      const s = rowScores(input, l, h);
      for (let r = 0; r < rows; r++) {
        cand[r] = r;
        key[r] = finite(s[r]!);
      }
      selectBest(cand, 0, rows, recent, positionKeys(pos, rows, newest), pos);
      selectBest(cand, recent, rows, keep - recent, key, pos);
      sets.push(ascendingSet(rows, cand, 0, keep));
    }
    out.push(sets);
  }
  return out;
}

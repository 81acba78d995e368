// TOVA: at each step drop the token the current query attends to least, the attention averaged over the
// layer's heads, so every head of a layer keeps the same rows. Scores are the last query's attention only.
import { checkInput, rowPositions, rowScores, type EvictionInput, type KeepSets } from './policy.js';
import { allRows, ascendingSet, finite, selectBest, uniformSets } from './select.js';

/**
 * Per layer: the `keep` rows with the highest sum of the layer's KV-head scores (the mean up to a constant),
 * i.e. evicting E rows drops the E lowest; ties go to the newer row. Row positions are read from head 0
 * (all heads of a layer hold the same rows under this policy).
 */
export function selectTOVA(input: EvictionInput): KeepSets {
  checkInput(input);
  const { layers, kvHeads, rows, keep } = input;
  if (keep >= rows) return uniformSets(layers, kvHeads, allRows(rows));
  const cand = new Int32Array(rows);
  const sum = new Float64Array(rows);
  const out: KeepSets = [];
  for (let l = 0; l < layers; l++) {
    sum.fill(0);
    for (let h = 0; h < kvHeads; h++) {
      const s = rowScores(input, l, h);
      for (let r = 0; r < rows; r++) sum[r] += s[r]!;
    }
    for (let r = 0; r < rows; r++) {
      cand[r] = r;
      sum[r] = finite(sum[r]!);
    }
    selectBest(cand, 0, rows, keep, sum, rowPositions(input, l, 0));
    out.push(new Array<Int32Array>(kvHeads).fill(ascendingSet(rows, cand, 0, keep)));
  }
  return out;
}

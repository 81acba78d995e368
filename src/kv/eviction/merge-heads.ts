// Where a cache's rows cannot be split by KV head (a block format whose blocks span heads, as q8_0 with
// heads of 8 values), every head must keep the same rows: the policy then sees one head per layer whose
// scores are the sum of the layer's heads, and its choice applies to all of them.
import type { EvictionInput, KeepSets } from './policy.js';

export function mergeHeads(input: EvictionInput): EvictionInput {
  const merged = Array.from({ length: input.layers }, () => new Float32Array(input.rows));
  for (let layer = 0; layer < input.layers; layer++) {
    const sum = merged[layer]!;
    for (let h = 0; h < input.kvHeads; h++) {
      const s = input.scores(layer, h);
      for (let r = 0; r < input.rows; r++) sum[r]! += s[r]!;
    }
  }
  // Rows of every head hold the same positions, since they have always moved together.
  return { ...input, kvHeads: 1, positions: (layer) => input.positions(layer, 0), scores: (layer) => merged[layer]! };
}

/** A merged choice, one set per layer, given to each of the layer's heads. */
export function spreadHeads(sets: KeepSets, kvHeads: number): KeepSets {
  return sets.map((layer) => Array.from({ length: kvHeads }, () => layer[0]!));
}

// TOVA: the rows with the highest current-query attention summed over the layer's heads; the same rows for
// every head of a layer; evicting E rows drops the E lowest.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectTOVA } from '../../../src/kv/eviction/tova.js';
import { checkShape, grid, input, inOrder, makeRng, randomScores, rankRows, scattered, sortedRows } from './helpers.js';

test('tova: the heads average decides, not any one head', () => {
  const rows = 6;
  // head 0 alone would drop row 1 (0.0), head 1 alone row 2; summed, row 3 is lowest (0.3 + 0.1)
  const s0 = Float32Array.of(0.9, 0.0, 0.9, 0.3, 0.9, 0.9);
  const s1 = Float32Array.of(0.9, 0.9, 0.0, 0.1, 0.9, 0.9);
  const sets = selectTOVA(input({ layers: 1, kvHeads: 2, rows, keep: 5, positions: [[inOrder(rows), inOrder(rows)]], scores: [[s0, s1]] }));
  checkShape(sets, 1, 2, rows, 5);
  assert.deepEqual(Array.from(sets[0]![0]!), [0, 1, 2, 4, 5]);
  assert.deepEqual(sets[0]![1], sets[0]![0]);
  // evicting 3 at once drops the 3 lowest sums: rows 3 (0.4), then 1 and 2 (0.9 each)
  const three = selectTOVA(input({ layers: 1, kvHeads: 2, rows, keep: 3, positions: [[inOrder(rows), inOrder(rows)]], scores: [[s0, s1]] }));
  assert.deepEqual(Array.from(three[0]![0]!), [0, 4, 5]);
});

test('tova: random layers against a sort of the summed scores; layers choose apart, heads together', () => {
  const rng = makeRng(8);
  for (let trial = 0; trial < 40; trial++) {
    const layers = 1 + rng.int(3);
    const heads = 1 + rng.int(4);
    const rows = 2 + rng.int(300);
    const evict = rng.int(Math.min(rows, 8));
    const keep = rows - evict;
    const positions = grid(layers, heads, (l) => (l === 0 ? scattered(rng, rows) : inOrder(rows)));
    // heads of a layer hold the same rows under TOVA
    for (let l = 0; l < layers; l++) for (let h = 1; h < heads; h++) positions[l]![h] = positions[l]![0]!;
    const scores = grid(layers, heads, () => randomScores(rng, rows));
    const sets = selectTOVA(input({ layers, kvHeads: heads, rows, keep, positions, scores }));
    checkShape(sets, layers, heads, rows, keep);
    for (let l = 0; l < layers; l++) {
      const sum = (r: number) => scores[l]!.reduce((a, s) => a + s[r]!, 0);
      const all = Array.from({ length: rows }, (_, r) => r);
      const dropped = rankRows(all, sum, positions[l]![0]!).slice(keep);
      assert.deepEqual(Array.from(sets[l]![0]!), sortedRows(all.filter((r) => !dropped.includes(r))));
      for (let h = 1; h < heads; h++) assert.deepEqual(sets[l]![h], sets[l]![0]);
    }
  }
});

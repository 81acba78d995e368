// H2O: the keep/2 newest rows plus the heaviest accumulated scores among the rest, per KV head.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectH2O } from '../../../src/kv/eviction/h2o.js';
import { byPosition, checkShape, grid, input, inOrder, makeRng, randomScores, rankRows, scattered, sortedRows } from './helpers.js';

test('h2o: each head keeps its own heavy hitters plus the recent half', () => {
  const rows = 16;
  const heavy = [
    [1, 4, 6],
    [0, 9, 2],
  ];
  const scores = heavy.map((rowsOfHead) => {
    const s = new Float32Array(rows).fill(0.01);
    rowsOfHead.forEach((r, i) => (s[r] = 5 - i));
    s[15] = 9; // a recent row: kept anyway, its score spends no heavy slot
    return s;
  });
  const sets = selectH2O(input({ layers: 1, kvHeads: 2, rows, keep: 6, positions: [[inOrder(rows), inOrder(rows)]], scores: [scores] }));
  checkShape(sets, 1, 2, rows, 6);
  assert.deepEqual(Array.from(sets[0]![0]!), [1, 4, 6, 13, 14, 15]);
  assert.deepEqual(Array.from(sets[0]![1]!), [0, 2, 9, 13, 14, 15]);
});

test('h2o: odd keep gives the extra row to the heavy hitters', () => {
  const rows = 10;
  const s = Float32Array.of(0, 0, 0, 0.5, 0.9, 0.7, 0, 0, 0, 0);
  const sets = selectH2O(input({ layers: 1, kvHeads: 1, rows, keep: 5, positions: [[inOrder(rows)]], scores: [[s]] }));
  // recent: 2 newest (8, 9); heavy: 3 best of the rest (4, 5, 3)
  assert.deepEqual(Array.from(sets[0]![0]!), [3, 4, 5, 8, 9]);
});

test('h2o: random scattered positions per head against a sort', () => {
  const rng = makeRng(21);
  for (let trial = 0; trial < 40; trial++) {
    const layers = 1 + rng.int(3);
    const heads = 1 + rng.int(4);
    const rows = 2 + rng.int(300);
    const keep = rng.int(rows + 2);
    const positions = grid(layers, heads, () => scattered(rng, rows));
    const scores = grid(layers, heads, () => randomScores(rng, rows));
    const sets = selectH2O(input({ layers, kvHeads: heads, rows, keep, positions, scores }));
    checkShape(sets, layers, heads, rows, Math.min(keep, rows));
    for (let l = 0; l < layers; l++) {
      for (let h = 0; h < heads; h++) {
        const pos = positions[l]![h]!;
        const s = scores[l]![h]!;
        let want: number[];
        if (keep >= rows) want = Array.from(inOrder(rows));
        else {
          const order = byPosition(pos, rows);
          const recent = order.slice(rows - (keep >> 1));
          const rest = order.slice(0, rows - (keep >> 1));
          want = [...recent, ...rankRows(rest, (r) => s[r]!, pos).slice(0, keep - (keep >> 1))];
        }
        assert.deepEqual(Array.from(sets[l]![h]!), sortedRows(want));
      }
    }
  }
});

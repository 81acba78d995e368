// StreamingLLM sinks: the 4 oldest positions plus the newest keep - 4, the same rows for every layer and head,
// whatever order the rows hold their positions in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectSinks } from '../../../src/kv/eviction/sinks.js';
import { byPosition, checkShape, grid, input, makeRng, scattered, sortedRows } from './helpers.js';

function sinksInput(positions: Int32Array, keep: number, layers = 3, heads = 2) {
  const rows = positions.length;
  return input({
    layers,
    kvHeads: heads,
    rows,
    keep,
    positions: grid(layers, heads, () => positions),
    scores: grid(layers, heads, () => new Float32Array(rows)),
  });
}

test('sinks: first 4 positions plus the most recent, rows out of position order', () => {
  // rows hold positions out of order, with gaps (earlier evictions)
  const positions = Int32Array.of(40, 0, 17, 3, 41, 1, 2, 30, 45, 38, 5, 44);
  const sets = selectSinks(sinksInput(positions, 7));
  checkShape(sets, 3, 2, 12, 7);
  // positions 0,1,2,3 (rows 1,5,6,3) and the 3 newest 45,44,41 (rows 8,11,4)
  assert.deepEqual(Array.from(sets[0]![0]!), [1, 3, 4, 5, 6, 8, 11]);
  for (const layer of sets) for (const s of layer) assert.deepEqual(s, sets[0]![0]!);
});

test('sinks: random scattered positions against a sort', () => {
  const rng = makeRng(3);
  for (let trial = 0; trial < 50; trial++) {
    const rows = 5 + rng.int(200);
    const keep = rng.int(rows + 3);
    const positions = scattered(rng, rows);
    const sets = selectSinks(sinksInput(positions, keep, 2, 2));
    const order = byPosition(positions, rows);
    const want = keep >= rows ? order : [...order.slice(0, Math.min(4, keep)), ...order.slice(rows - Math.max(0, keep - 4))];
    checkShape(sets, 2, 2, rows, Math.min(keep, rows));
    assert.deepEqual(Array.from(sets[1]![1]!), sortedRows(new Set(want)));
  }
});

test('sinks: fewer than 4 to keep keeps the oldest; sinks: 0 is a plain window', () => {
  const positions = Int32Array.of(9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  assert.deepEqual(Array.from(selectSinks(sinksInput(positions, 3))[0]![0]!), [7, 8, 9]);
  assert.deepEqual(Array.from(selectSinks(sinksInput(positions, 3), { sinks: 0 })[0]![0]!), [0, 1, 2]);
  assert.deepEqual(Array.from(selectSinks(sinksInput(positions, 20))[2]![1]!), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

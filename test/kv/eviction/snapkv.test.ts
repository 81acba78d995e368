// SnapKV: the observation window (newest `window` rows) always stays; the window's votes for the other rows are
// max-pooled (kernel 7) along position order, so a voted token keeps its neighbours; top-k per KV head.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectSnapKV } from '../../../src/kv/eviction/snapkv.js';
import { checkShape, grid, input, inOrder, makeRng, randomScores, refSnapHead, scattered, shuffle, sortedRows } from './helpers.js';

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

test('snapkv: a spike keeps its pooled neighbours, and the window stays', () => {
  const rows = 64;
  const window = 8;
  const s = new Float32Array(rows).fill(0.001);
  s[20] = 1; // one voted token
  for (let r = rows - window; r < rows; r++) s[r] = 0; // the window's own votes do not matter
  const sets = selectSnapKV(input({ layers: 1, kvHeads: 1, rows, keep: window + 7, window, positions: [[inOrder(rows)]], scores: [[s]] }));
  checkShape(sets, 1, 1, rows, window + 7);
  // kernel 7: positions 17..23 share the spike's pooled vote
  assert.deepEqual(Array.from(sets[0]![0]!), [...range(17, 24), ...range(56, 64)]);
});

test('snapkv: the window votes are not pooled onto older rows, and pooling stops at the first row', () => {
  const rows = 40;
  const window = 10;
  const s = new Float32Array(rows);
  s[30] = 5; // a window row: kept anyway, and its vote must not spill onto rows 27..29
  s[0] = 0.5; // the oldest row: only newer neighbours (1..3) share it
  s[10] = 0.4; // shared by 7..13; ties go to the newer rows
  const sets = selectSnapKV(input({ layers: 1, kvHeads: 1, rows, keep: window + 7, window, positions: [[inOrder(rows)]], scores: [[s]] }));
  assert.deepEqual(Array.from(sets[0]![0]!), [0, 1, 2, 3, 11, 12, 13, ...range(30, 40)]);
});

test('snapkv: rows out of position order select the same positions as in order', () => {
  const rng = makeRng(4);
  for (let trial = 0; trial < 20; trial++) {
    const rows = 30 + rng.int(200);
    const window = rng.int(20);
    const keep = window + rng.int(rows - window);
    // one head's tokens in position order, and the same tokens held by shuffled rows
    const pos = inOrder(rows);
    const s = randomScores(rng, rows);
    const perm = Int32Array.from(shuffle(rng, Array.from(pos)));
    const posShuffled = Int32Array.from(perm, (r) => pos[r]!);
    const sShuffled = Float32Array.from(perm, (r) => s[r]!);
    const a = selectSnapKV(input({ layers: 1, kvHeads: 1, rows, keep, window, positions: [[pos]], scores: [[s]] }))[0]![0]!;
    const b = selectSnapKV(input({ layers: 1, kvHeads: 1, rows, keep, window, positions: [[posShuffled]], scores: [[sShuffled]] }))[0]![0]!;
    assert.deepEqual(sortedRows(Array.from(b, (r) => posShuffled[r]!)), sortedRows(Array.from(a, (r) => pos[r]!)));
  }
});

test('snapkv: random heads with scattered positions against a reference, max and avg pooling', () => {
  const rng = makeRng(9);
  for (const pooling of ['max', 'avg'] as const) {
    for (let trial = 0; trial < 25; trial++) {
      const layers = 1 + rng.int(2);
      const heads = 1 + rng.int(4);
      const rows = 2 + rng.int(300);
      const window = rng.int(40);
      const keep = rng.int(rows + 5);
      const kernel = [1, 3, 5, 7][rng.int(4)]!;
      const positions = grid(layers, heads, () => scattered(rng, rows));
      const scores = grid(layers, heads, () => randomScores(rng, rows));
      const sets = selectSnapKV(input({ layers, kvHeads: heads, rows, keep, window, positions, scores }), { pooling, kernel });
      checkShape(sets, layers, heads, rows, Math.min(keep, rows));
      for (let l = 0; l < layers; l++) {
        for (let h = 0; h < heads; h++) {
          const want = refSnapHead(positions[l]![h]!, scores[l]![h]!, rows, keep, window, kernel, pooling);
          assert.deepEqual(Array.from(sets[l]![h]!), want, `${pooling} k${kernel} rows ${rows} keep ${keep} window ${window}`);
        }
      }
    }
  }
});

test('snapkv: heads choose apart; a window wider than keep keeps the newest', () => {
  const rows = 50;
  const s0 = new Float32Array(rows);
  const s1 = new Float32Array(rows);
  s0[5] = 1;
  s1[30] = 1;
  const positions = [[inOrder(rows), inOrder(rows)]];
  const sets = selectSnapKV(input({ layers: 1, kvHeads: 2, rows, keep: 4 + 1, window: 4, positions, scores: [[s0, s1]] }), { kernel: 1 });
  assert.deepEqual(Array.from(sets[0]![0]!), [5, 46, 47, 48, 49]);
  assert.deepEqual(Array.from(sets[0]![1]!), [30, 46, 47, 48, 49]);
  const narrow = selectSnapKV(input({ layers: 1, kvHeads: 1, rows, keep: 3, window: 8, positions: [[inOrder(rows)]], scores: [[s0]] }));
  assert.deepEqual(Array.from(narrow[0]![0]!), [47, 48, 49]);
});

test('snapkv: options are checked', () => {
  const one = input({ layers: 1, kvHeads: 1, rows: 4, keep: 2, window: 1, positions: [[inOrder(4)]], scores: [[new Float32Array(4)]] });
  assert.throws(() => selectSnapKV(one, { kernel: 4 }), /odd/);
  assert.throws(() => selectSnapKV(one, { pooling: 'median' as 'max' }), /pooling/);
});

// PyramidKV: per-layer budgets fall linearly with depth (beta 20), sum to exactly layers * keep, the top layer
// near b / 20 beyond the window; each layer selects as SnapKV does with its own budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pyramidBudgets, selectPyramidKV } from '../../../src/kv/eviction/pyramidkv.js';
import { checkShape, grid, input, makeRng, randomScores, refSnapHead, scattered } from './helpers.js';

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

test('pyramidBudgets: falls with depth, sums exactly, top near b / beta, bottom near 2b - b / beta', () => {
  const layers = 22;
  const keep = 1024;
  const window = 32;
  const b = keep - window;
  const budgets = pyramidBudgets(layers, keep, window);
  assert.equal(budgets.length, layers);
  assert.equal(sum(budgets), layers * keep);
  for (let l = 1; l < layers; l++) assert.ok(budgets[l]! <= budgets[l - 1]!, 'never rises with depth');
  assert.ok(budgets[0]! > keep && budgets[layers - 1]! < keep);
  assert.ok(Math.abs(budgets[layers - 1]! - window - b / 20) <= 1, `top ${budgets[layers - 1]}`);
  assert.ok(Math.abs(budgets[0]! - window - (2 * b - b / 20)) <= 1, `bottom ${budgets[0]}`);
  // linear: steps between layers differ by rounding only
  const steps = budgets.slice(1).map((v, l) => budgets[l]! - v);
  assert.ok(Math.max(...steps) - Math.min(...steps) <= 2, `steps ${steps}`);
});

test('pyramidBudgets: exact and monotone over many shapes; beta; the rows cap', () => {
  const rng = makeRng(2);
  for (let trial = 0; trial < 2000; trial++) {
    const layers = 1 + rng.int(40);
    const window = rng.int(64);
    const keep = rng.int(3000);
    const beta = [1, 2, 5, 20, 100][rng.int(5)]!;
    const rows = rng.next() < 0.5 ? Infinity : keep + 1 + rng.int(3000);
    const budgets = pyramidBudgets(layers, keep, window, beta, rows);
    assert.equal(sum(budgets), layers * keep, `layers ${layers} keep ${keep} window ${window} beta ${beta}`);
    for (let l = 0; l < layers; l++) {
      assert.ok(Number.isInteger(budgets[l]));
      assert.ok(budgets[l]! >= Math.min(window, keep), 'the window always fits');
      assert.ok(budgets[l]! <= rows, 'never more than the rows');
      if (l > 0) assert.ok(budgets[l]! <= budgets[l - 1]!);
    }
  }
  assert.deepEqual(pyramidBudgets(1, 100, 8), [100]);
  assert.deepEqual(pyramidBudgets(3, 8, 8), [8, 8, 8]);
  assert.deepEqual(pyramidBudgets(3, 20, 8, 1), [20, 20, 20]); // beta 1: flat
  // a short prompt: layer 0 capped at the rows, the top raised to keep the mean
  assert.deepEqual(pyramidBudgets(3, 60, 10, 20, 80), [80, 60, 40]);
  assert.throws(() => pyramidBudgets(2, -1, 0), /keep/);
});

test('pyramidkv: each layer keeps its budget, chosen as SnapKV would, per head', () => {
  const rng = makeRng(14);
  for (let trial = 0; trial < 15; trial++) {
    const layers = 2 + rng.int(6);
    const heads = 1 + rng.int(3);
    const rows = 40 + rng.int(300);
    const window = rng.int(16);
    const keep = window + 1 + rng.int(rows - window - 1);
    const positions = grid(layers, heads, () => scattered(rng, rows));
    const scores = grid(layers, heads, () => randomScores(rng, rows));
    const sets = selectPyramidKV(input({ layers, kvHeads: heads, rows, keep, window, positions, scores }));
    const budgets = pyramidBudgets(layers, keep, window, 20, rows);
    checkShape(sets, layers, heads, rows, budgets);
    assert.equal(sum(sets.map((s) => s[0]!.length)), layers * keep, 'mean over layers == keep');
    for (let l = 0; l < layers; l++) {
      for (let h = 0; h < heads; h++) {
        assert.deepEqual(Array.from(sets[l]![h]!), refSnapHead(positions[l]![h]!, scores[l]![h]!, rows, budgets[l]!, window));
      }
    }
  }
});

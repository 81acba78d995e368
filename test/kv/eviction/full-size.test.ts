// Every policy at the engine's largest shape (22 layers x 8 KV heads x 8192 rows), rows in position order and
// shuffled: exact counts, and the time each takes (reported, not asserted: CI machines vary).
import { test } from 'node:test';
import { EVICTION_POLICIES, EVICTION_POLICY_NAMES, pyramidBudgets } from '../../../src/kv/eviction/index.js';
import { checkShape, inOrder, input, makeRng, randomScores, shuffle } from './helpers.js';

test('every policy at 22 x 8 x 8192 rows', (t) => {
  const layers = 22;
  const heads = 8;
  const rows = 8192;
  const keep = 2048;
  const window = 32;
  const rng = makeRng(99);
  const scores = Array.from({ length: layers }, () => Array.from({ length: heads }, () => randomScores(rng, rows)));
  const shuffled = Int32Array.from(shuffle(rng, Array.from(inOrder(rows))));
  for (const [label, pos] of [['in order', inOrder(rows)], ['shuffled', shuffled]] as const) {
    const positions = Array.from({ length: layers }, () => new Array<Int32Array>(heads).fill(pos));
    const shape = input({ layers, kvHeads: heads, rows, keep, window, positions, scores });
    for (const name of EVICTION_POLICY_NAMES) {
      const start = performance.now();
      const sets = EVICTION_POLICIES[name].select(shape);
      const ms = performance.now() - start;
      checkShape(sets, layers, heads, rows, name === 'pyramidkv' ? pyramidBudgets(layers, keep, window, 20, rows) : keep);
      t.diagnostic(`${name} (${label}): ${ms.toFixed(1)} ms`);
    }
  }
});

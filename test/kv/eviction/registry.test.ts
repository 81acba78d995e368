// The policy registry and what holds for every policy: exact counts, never more than the rows, everything
// kept when keep >= rows, the window kept by the window policies, and bad arguments refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EVICTION_POLICIES, EVICTION_POLICY_NAMES, parseEvictionPolicy, pyramidBudgets } from '../../../src/kv/eviction/index.js';
import { isKVError } from '../../../src/kv/errors.js';
import { byPosition, checkShape, grid, input, makeRng, randomScores, scattered } from './helpers.js';

test('registry: names, timing and the scores each policy needs', () => {
  assert.deepEqual([...EVICTION_POLICY_NAMES].sort(), ['chunkkv', 'h2o', 'pyramidkv', 'sinks', 'snapkv', 'tova']);
  const table = Object.fromEntries(EVICTION_POLICY_NAMES.map((n) => [n, [EVICTION_POLICIES[n].when, EVICTION_POLICIES[n].scores]]));
  assert.deepEqual(table, {
    sinks: ['decode', 'none'],
    h2o: ['decode', 'accumulate'],
    tova: ['decode', 'last'],
    snapkv: ['prompt', 'window'],
    chunkkv: ['prompt', 'window'],
    pyramidkv: ['prompt', 'window'],
  });
  for (const name of EVICTION_POLICY_NAMES) assert.equal(parseEvictionPolicy(name).name, name);
});

test('parseEvictionPolicy: an unknown name lists the valid ones', () => {
  for (const bad of ['h2', 'SnapKV', '', 'toString', '__proto__']) {
    assert.throws(
      () => parseEvictionPolicy(bad),
      (e: unknown) => isKVError(e, 'ERR_KV_INVALID_ARGUMENT') && /sinks, h2o, tova, snapkv, chunkkv, pyramidkv/.test((e as Error).message),
    );
  }
});

test('every policy: exact counts on random inputs, keep >= rows keeps all, the window policies keep the window', () => {
  const rng = makeRng(77);
  for (const name of EVICTION_POLICY_NAMES) {
    const policy = EVICTION_POLICIES[name];
    for (let trial = 0; trial < 30; trial++) {
      const layers = 1 + rng.int(4);
      const heads = 1 + rng.int(3);
      const rows = rng.int(150);
      const keep = rng.int(rows + 10);
      const window = rng.int(30);
      // head-shared policies see the same positions in every head of a layer (and sinks in every layer)
      const shared = scattered(rng, rows);
      const perLayer = Array.from({ length: layers }, () => scattered(rng, rows));
      const perHead = name === 'h2o' || name === 'snapkv' || name === 'pyramidkv';
      const positions = grid(layers, heads, (l) => (name === 'sinks' ? shared : perHead ? scattered(rng, rows) : perLayer[l]!));
      const scores = grid(layers, heads, () => randomScores(rng, rows));
      const sets = policy.select(input({ layers, kvHeads: heads, rows, keep, window, positions, scores }));
      const counts = name === 'pyramidkv' && keep < rows ? pyramidBudgets(layers, keep, window, 20, rows) : Math.min(keep, rows);
      checkShape(sets, layers, heads, rows, counts);
      if (policy.scores === 'window') {
        for (let l = 0; l < layers; l++) {
          for (let h = 0; h < heads; h++) {
            const count = sets[l]![h]!.length;
            const newest = byPosition(positions[l]![h]!, rows).slice(rows - Math.min(window, count));
            const kept = new Set(sets[l]![h]!);
            for (const r of newest) assert.ok(kept.has(r), `${name}: window row ${r} kept`);
          }
        }
      }
    }
  }
});

test('every policy: bad counts and short arrays are refused', () => {
  const positions = [[Int32Array.from({ length: 8 }, (_, i) => i)]];
  const good = { layers: 1, kvHeads: 1, rows: 8, keep: 4, window: 2, positions, scores: [[new Float32Array(8)]] };
  for (const name of EVICTION_POLICY_NAMES) {
    const { select } = EVICTION_POLICIES[name];
    assert.throws(() => select(input({ ...good, keep: -1 })), /keep/);
    assert.throws(() => select(input({ ...good, keep: 2.5 })), /keep/);
    assert.throws(() => select(input({ ...good, rows: NaN })), /rows/);
    assert.throws(() => select(input({ ...good, rows: 9 })), /fewer than 9 rows/);
  }
});

// The KV quality harness end to end on the bundled model, at a tiny size: a text generated with the f32
// cache, read again by two separate runs of the same f32 configuration on the same thread count, must give
// identical distributions (KL exactly 0, every top-1 the same). Not a tautology: the two runs are separate
// KV caches and forward passes, so nondeterminism anywhere in them would show.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measureKVQuality } from '../../bench/kv-quality.js';
import { bundledModel } from '../paths.js';

test('kv-quality: f32 against f32 gives KL 0 and full top-1 agreement; the noise floors and KV formats give finite numbers', async () => {
  const r = await measureKVQuality({
    model: bundledModel,
    continuations: 1,
    tokens: 64,
    seed: 3,
    floors: { otherThreads: 1, rechunk: 17, otherBackend: true },
    formats: ['f16', 'q8_0/q4_0'],
  });
  assert.equal(r.texts.length, 1);
  assert.equal(r.texts[0]!.length, 64);
  assert.equal(r.texts[0]![0], 1, 'the text starts with BOS');
  const f32 = r.configs.find((c) => c.name === 'f32');
  assert.ok(f32, `configs: ${r.configs.map((c) => c.name).join(', ')}`);
  assert.equal(f32.pooled.positions, 63);
  assert.equal(f32.pooled.meanKL, 0);
  assert.equal(f32.pooled.maxKL, 0);
  assert.equal(f32.pooled.top1Agreement, 1);
  assert.equal(f32.pooled.pplRatio, 1);
  assert.equal(f32.texts[0]!.firstDivergence, null);
  assert.equal(f32.medianFirstDivergence, null);
  assert.ok(f32.pooled.refPpl > 1 && f32.pooled.refPpl < 100, `perplexity of the model's own text ${f32.pooled.refPpl}`);
  for (const name of ['f32, 1 thread', 'f32, chunks of 17', 'f32, reference backend', 'f16', 'q8_0/q4_0']) {
    const c = r.configs.find((x) => x.name === name);
    assert.ok(c, `${name} is measured`);
    assert.equal(c.pooled.positions, 63);
    assert.ok(Number.isFinite(c.pooled.meanKL) && Number.isFinite(c.pooled.pplRatio), name);
  }
});

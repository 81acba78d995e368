// The eviction configurations of the KV quality harness on the bundled model, at a tiny size: a policy
// whose budget holds every token reads the text as the full f32 cache does (KL 0 over the prompt, read in
// the same chunks; at the f32 rounding floor after it, where it reads one token a step: the engine's
// eviction path - votes, row book, compaction lists - changes nothing it should not), and one that keeps
// a quarter of the prompt does change the predictions after the prompt.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evictionConfig } from '../../bench/evict-quality-run.js';
import { measureEvictionQuality } from '../../bench/evict-quality.js';
import { qualityConfigs } from '../../bench/kv-quality-configs.js';
import { scoreText } from '../../bench/kv-quality-score.js';
import { generateText } from '../../bench/kv-quality-text.js';
import { loadModel } from '../../src/model/load.js';
import { bundledModel } from '../paths.js';

test('evict quality: a budget that holds everything gives KL 0; a quarter of the prompt does not', async () => {
  const { model } = loadModel(bundledModel, { backend: 'native' });
  try {
    const [reference] = qualityConfigs(model, {}, []);
    const text = await generateText(reference!, { bos: 1, tokens: 120, vocabSize: model.config.vocabSize, temperature: 0.8, seed: 5, banned: [] });
    const spec = { promptTokens: 96, prefillChunk: 32 };
    const configs = [
      reference!,
      ...(['h2o', 'snapkv', 'pyramidkv'] as const).map((policy) => evictionConfig(model, { ...spec, name: `${policy} all`, policy, budget: 512 })),
      ...(['sinks', 'tova', 'chunkkv'] as const).map((policy) => evictionConfig(model, { ...spec, name: `${policy} quarter`, policy, budget: 24 })),
    ];
    const scores = await scoreText(text, configs, 32, model.config.vocabSize);
    for (const policy of ['h2o', 'snapkv', 'pyramidkv']) {
      const s = scores.get(`${policy} all`)!;
      assert.ok(s.slice(0, 95).every((x) => x.kl === 0), `${policy} with room for everything: the prompt`);
      assert.ok(s.every((x) => x.kl < 1e-9 && x.sameTop1), `${policy} with room for everything: max KL ${Math.max(...s.map((x) => x.kl))}`);
    }
    // A prompt-time policy compresses after the prompt; a decode-time one as soon as it holds 24 rows.
    for (const [policy, first] of [['sinks', 24], ['tova', 24], ['chunkkv', 96]] as const) {
      const s = scores.get(`${policy} quarter`)!;
      assert.ok(s.slice(0, first - 1).every((x) => x.kl < 1e-9), `${policy}: predictions before the first eviction`);
      assert.ok(s.slice(first).some((x) => x.kl > 1e-6), `${policy}: keeping 24 rows changes what follows`);
    }
  } finally {
    model.backend.close();
    model.close();
  }
});

test('evict quality: the report measures every policy, the floors read 0, and the baselines are at the same rows', async () => {
  const r = await measureEvictionQuality({
    model: bundledModel, texts: 1, promptTokens: 64, questionTokens: 8, continuationTokens: 16, budgets: [0.5],
    policies: ['sinks', 'h2o', 'snapkv'], q8: true, seed: 2, temperature: 0.8, prefillChunk: 512, log: () => {},
  });
  assert.equal(r.scoredPositions, 15);
  const row = (name: string) => r.rows.find((x) => x.name === name) ?? assert.fail(`${name} in ${r.rows.map((x) => x.name).join(', ')}`);
  assert.equal(row('f32').summary.meanKL, 0);
  for (const name of ['sinks 50%', 'sinks, once after the prompt 50%', 'h2o 50%', 'snapkv 50%', 'snapkv (window on the question) 50%', 'snapkv 50% q8_0']) {
    assert.equal(row(name).summary.positions, 15, name);
  }
  // 32 prompt rows plus the 8 question tokens when the continuation starts, whatever the policy.
  for (const name of ['sinks 50%', 'sinks, once after the prompt 50%', 'h2o 50%', 'snapkv 50%', 'snapkv (window on the question) 50%']) {
    assert.equal(row(name).budgetTokens, 32 + (name === 'sinks, once after the prompt 50%' || name === 'snapkv 50%' ? 0 : 8), name);
  }
});

// The sampler-cost measurement of `bench single`, apart from its timings: every setting is timed on the
// given rows, and the top-p 0.9 token count describes how peaked those rows are.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measureSamplerCost, SAMPLER_SETTINGS } from '../../bench/single/sampler-cost.js';

test('every sampler setting gets a finite time per token; top-p 0.9 counts the tokens holding 90%', () => {
  const vocab = 1000;
  // One token with e^6 / (e^6 + 999) of the mass and the rest equal; the flat row spreads it evenly.
  const peaked = new Float32Array(vocab);
  peaked[7] = 6;
  const flat = new Float32Array(vocab);
  const m = measureSamplerCost([peaked, flat]);
  assert.equal(m.rows, 2);
  assert.equal(m.vocab, vocab);
  assert.deepEqual(m.costs.map((c) => c.setting), SAMPLER_SETTINGS.map((s) => s.name));
  for (const c of m.costs) {
    assert.ok(Number.isFinite(c.msPerToken) && c.msPerToken > 0, `${c.setting}: ${c.msPerToken}`);
    assert.ok(c.calls >= 2);
  }
  const top = Math.exp(6) / (Math.exp(6) + vocab - 1);
  const peakedCount = 1 + Math.ceil((0.9 - top) / ((1 - top) / (vocab - 1)));
  // The median of the two rows' counts: the flat row needs 900 tokens.
  assert.ok(Math.abs(m.topP90Tokens - Math.round((peakedCount + 900) / 2)) <= 1, `${m.topP90Tokens}`);
});

test('no rows is an error, not a zero cost', () => {
  assert.throws(() => measureSamplerCost([]), /no logits rows/);
});

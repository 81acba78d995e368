import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sampler, SamplingError, logSoftmax } from '../../src/engine/sampler.js';
import { InternalEngineError } from '../../src/engine/error-kind.js';

const logits = Float32Array.from([1, 3, 2, 0.5, 2.9]);

function draws(params: ConstructorParameters<typeof Sampler>[0], n = 2000, l = logits): Map<number, number> {
  const s = new Sampler(params);
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const t = s.sample(l).token;
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  return counts;
}

test('temperature 0 is greedy and ignores the seed', () => {
  for (const seed of [1, 2, 3]) assert.equal(new Sampler({ temperature: 0, seed }).sample(logits).token, 1);
});

test('the same seed reproduces the same sequence; another seed differs', () => {
  const seq = (seed: number) => {
    const s = new Sampler({ temperature: 1, seed });
    return Array.from({ length: 50 }, () => s.sample(logits).token);
  };
  assert.deepEqual(seq(42), seq(42));
  assert.notDeepEqual(seq(42), seq(43));
});

test('sampling at temperature 1 follows the softmax distribution', () => {
  const n = 20000;
  const counts = draws({ temperature: 1, seed: 7 }, n);
  const probs = Array.from(logSoftmax(logits), Math.exp);
  probs.forEach((p, i) => {
    const freq = (counts.get(i) ?? 0) / n;
    assert.ok(Math.abs(freq - p) < 0.015, `token ${i}: frequency ${freq} vs probability ${p}`);
  });
});

test('top-k, top-p and min-p restrict the candidates', () => {
  assert.deepEqual([...draws({ temperature: 1, topK: 2, seed: 1 }).keys()].sort(), [1, 4]);
  // probabilities sorted: 1 (~0.38), 4 (~0.34), 2 (~0.14)... top-p 0.5 keeps the first two
  assert.deepEqual([...draws({ temperature: 1, topP: 0.5, seed: 1 }).keys()].sort(), [1, 4]);
  // min-p 0.3 keeps tokens with p >= 0.3 * p(best): e^-1 ≈ 0.37 → 1, 4, 2 (e^{-1}=0.368 ≥ 0.3)
  assert.deepEqual([...draws({ temperature: 1, minP: 0.3, seed: 1 }).keys()].sort(), [1, 2, 4]);
  assert.deepEqual([...draws({ temperature: 1, minP: 0.9, seed: 1 }).keys()].sort(), [1, 4]);
});

test('penalties push repeated tokens down', () => {
  // Without penalties token 1 wins greedily; with token 1 in the history and a penalty, 4 wins.
  assert.equal(new Sampler({ temperature: 0, repetitionPenalty: 1.2 }).sample(logits, [1]).token, 4);
  assert.equal(new Sampler({ temperature: 0, presencePenalty: 0.2 }).sample(logits, [1]).token, 4);
  assert.equal(new Sampler({ temperature: 0, frequencyPenalty: 0.05 }).sample(logits, [1, 1, 1]).token, 4);
  assert.equal(new Sampler({ temperature: 0, frequencyPenalty: 0.05 }).sample(logits, [1]).token, 1);
  // The window: a token outside the last N is not penalised.
  assert.equal(new Sampler({ temperature: 0, presencePenalty: 0.2, penaltyLastN: 1 }).sample(logits, [1, 0]).token, 1);
});

test('logprobs are those of the unpenalised distribution, with the top alternatives', () => {
  const r = new Sampler({ temperature: 0, topLogprobs: 3 }).sample(logits);
  const lp = logSoftmax(logits);
  assert.equal(r.logprob, lp[1]);
  assert.deepEqual(r.top.map((t) => t.token), [1, 4, 2]);
  assert.ok(Math.abs(r.top.reduce((a, t) => a + Math.exp(t.logprob), 0) - (Math.exp(lp[1]!) + Math.exp(lp[4]!) + Math.exp(lp[2]!))) < 1e-12);
});

test('invalid parameters are rejected with the field named', () => {
  assert.throws(() => new Sampler({ temperature: -1 }), (e: unknown) => e instanceof SamplingError && /temperature/.test((e as Error).message));
  assert.throws(() => new Sampler({ topP: 0 }), /top_p/);
  assert.throws(() => new Sampler({ topK: 1.5 }), /top_k/);
  assert.throws(() => new Sampler({ minP: 2 }), /min_p/);
  assert.throws(() => new Sampler({ seed: Number.NaN }), /seed/);
  assert.throws(() => new Sampler({ topLogprobs: 50 }), /top_logprobs/);
});

test('non-finite logits are an internal error naming the token; -Infinity (a masked token) is not', () => {
  const logits = new Float32Array([1, -Infinity, 2, 0.5]);
  assert.doesNotThrow(() => new Sampler({ temperature: 0 }).sample(logits));
  for (const bad of [NaN, Infinity]) {
    const l = logits.slice();
    l[3] = bad;
    for (const temperature of [0, 1]) {
      assert.throws(
        () => new Sampler({ temperature, seed: 1 }).sample(l),
        (e: unknown) => e instanceof InternalEngineError && e.kind === 'internal' && e.code === 'non_finite_logits' && new RegExp(`${bad} for token 3`).test(e.message),
      );
    }
  }
});

// The KV quality metrics against values computed by hand from their definitions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  argmax, firstDivergence, klDivergence, logSoftmax, lowerMedian, percentile, scorePosition, summarize, type PositionScore,
} from '../../bench/kv-quality-metrics.js';

const close = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) < 1e-12, `${what}: ${got} != ${want}`);

test('logSoftmax gives the log of softmax in float64', () => {
  const [a, b] = logSoftmax(Float32Array.of(0, 0));
  close(a!, -Math.LN2, 'uniform');
  close(b!, -Math.LN2, 'uniform');
  // logits (0, ln 3) are probabilities (1/4, 3/4), shifted or not.
  for (const shift of [0, 1000, -1000]) {
    const lp = logSoftmax([shift, shift + Math.log(3)]);
    close(lp[0]!, Math.log(0.25), `p0 at shift ${shift}`);
    close(lp[1]!, Math.log(0.75), `p1 at shift ${shift}`);
  }
});

test('KL(p || q) over the vocabulary', () => {
  // p = (1/2, 1/2), q = (1/4, 3/4): 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3).
  close(klDivergence([Math.log(0.5), Math.log(0.5)], [Math.log(0.25), Math.log(0.75)]), 0.5 * Math.log(4 / 3), 'KL');
  // Reversed: 1/4 ln(1/2) + 3/4 ln(3/2).
  close(klDivergence([Math.log(0.25), Math.log(0.75)], [Math.log(0.5), Math.log(0.5)]), 0.25 * Math.log(0.5) + 0.75 * Math.log(1.5), 'reversed');
  // A token p gives no mass to adds nothing, whatever q says of it.
  close(klDivergence([-Infinity, 0], [Math.log(0.5), Math.log(0.5)]), Math.LN2, 'zero mass');
  const row = logSoftmax([0.3, -1.7, 2.2, 0.01]);
  assert.equal(klDivergence(row, Float64Array.from(row)), 0, 'equal rows give exactly 0');
});

test('argmax takes the lowest index among equal maxima', () => {
  assert.equal(argmax([1, 3, 3, 2]), 1);
  assert.equal(argmax([5]), 0);
  assert.equal(argmax([-2, -1, -3]), 1);
});

test('percentile is the nearest rank', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 .. 1, unsorted on purpose
  assert.equal(percentile(hundred, 0.99), 99);
  assert.equal(percentile(hundred, 1), 100);
  assert.equal(percentile(Array.from({ length: 10 }, (_, i) => i + 1), 0.99), 10); // ceil(9.9) = 10th
  assert.equal(percentile([7], 0.99), 7);
  assert.ok(Number.isNaN(percentile([], 0.99)));
});

test('lowerMedian is a rank that accepts texts that never diverged (Infinity)', () => {
  assert.equal(lowerMedian([3, 1, 2]), 2);
  assert.equal(lowerMedian([4, 1, 3, 2]), 2);
  assert.equal(lowerMedian([Infinity, 1]), 1);
  assert.equal(lowerMedian([Infinity, 5, Infinity]), Infinity);
});

const pos = (kl: number, sameTop1: boolean, ref: number, cfg: number): PositionScore => ({ kl, sameTop1, refLogprob: Math.log(ref), cfgLogprob: Math.log(cfg) });

test('firstDivergence is the index of the first top-1 disagreement', () => {
  assert.equal(firstDivergence([pos(0, true, 1, 1), pos(0, true, 1, 1), pos(0, false, 1, 1), pos(0, false, 1, 1)]), 2);
  assert.equal(firstDivergence([pos(0, false, 1, 1)]), 0);
  assert.equal(firstDivergence([pos(0, true, 1, 1)]), null);
});

test('scorePosition compares two logits rows at one position of the text', () => {
  // ref: (1/2, 1/2), argmax 0 by the tie rule; cfg: (1/4, 3/4), argmax 1; the text's next token is 1.
  const s = scorePosition(logSoftmax([0, 0]), logSoftmax([0, Math.log(3)]), 1);
  close(s.kl, 0.5 * Math.log(4 / 3), 'kl');
  assert.equal(s.sameTop1, false);
  close(s.refLogprob, Math.log(0.5), 'ref logprob');
  close(s.cfgLogprob, Math.log(0.75), 'cfg logprob');
});

test('summarize: mean and p99 KL, top-1 agreement and the perplexity ratio', () => {
  // p(next) = 1/2 then 4/5 under the reference, 1/4 then 2/5 under the configuration.
  const s = summarize([pos(0.1, true, 0.5, 0.25), pos(0.3, false, 0.8, 0.4)]);
  assert.equal(s.positions, 2);
  close(s.meanKL, 0.2, 'mean KL');
  assert.equal(s.p99KL, 0.3);
  assert.equal(s.maxKL, 0.3);
  assert.equal(s.top1Agreement, 0.5);
  close(s.refPpl, 1 / Math.sqrt(0.5 * 0.8), 'ref ppl'); // geometric mean of 1/p
  close(s.cfgPpl, 1 / Math.sqrt(0.25 * 0.4), 'cfg ppl');
  close(s.pplRatio, 2, 'ratio'); // every p halved
  const same = summarize([pos(0, true, 0.3, 0.3), pos(0, true, 0.6, 0.6)]);
  assert.equal(same.pplRatio, 1, 'equal logprobs give exactly 1');
  assert.equal(same.meanKL, 0);
});

// Every architecture against llama.cpp on the same generated file (bench/arch-models.ts): the fixtures
// are llama.cpp's greedy tokens and first-step logits, recorded by `npm run bench -- arch-parity
// --record` with node-llama-cpp. With f32 weights both engines compute in f32 and must agree token for
// token. With f16 weights llama.cpp rounds the activations to f16 for each matmul (vserve keeps f32),
// which moves logits by about 0.02, so where the random model has a near-tie the greedy paths may part:
// there vserve is fed llama.cpp's tokens and each must be within the logit tolerance of vserve's top.
// With quantized weights both engines round each matmul's activations to int8 by the same formulas
// (llama.cpp's Q8_0 / Q8_1 / Q8_K, test/native/activation-quant.test.ts), but the f32 values they round
// already differ in their last bits (the f32 fixtures' logits are about 0.01 apart), so some values
// round the other way; on these random models that moves the logits by a few percent and changes a
// greedy token after a few to 50 steps (between vserve's own ISAs too: it is not a property of one
// engine). So the checks are: both engines' first logits are within 8% (RMS) of the exact result (the
// reference backend, f32 activations), where a misread architecture is off by the logits' scale. On
// dense models both also pick the exact top token, or one within 3% of the logits' RMS of it (a
// near-tie, far below the quantization noise allowed), and vserve fed llama.cpp's 64 tokens ranks each
// within QUANTIZED_GAP of its own top: the size of the quantization noise in these logits, far below a
// wrong layer's effect. On mixture-of-experts models the noise also flips which experts a token goes
// to (already within the prompt), after which the two paths differ by whole logits, so there only the
// first logits' distance from the exact ones is checked.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ARCH_GENERATOR_VERSION, ARCH_SPECS, SMALL_SHAPE, writeArchModel } from '../../bench/arch-models.js';
import { FIXTURE_DIR, type ParityFixture, vserveRun } from '../../bench/arch-parity.js';
import { GGMLType } from '../../src/model/gguf/types.js';

const fixtures: ParityFixture[] = readdirSync(FIXTURE_DIR).filter((f) => f.endsWith('.json')).sort()
  .map((f) => JSON.parse(readFileSync(join(FIXTURE_DIR, f), 'utf8')) as ParityFixture);

/** How far below vserve's top logit llama.cpp's pick may be at a step on a quantized dense model. */
const QUANTIZED_GAP = 1;

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

const relativeRms = (a: ArrayLike<number>, exact: ArrayLike<number>) => {
  let d = 0, e = 0;
  for (let i = 0; i < exact.length; i++) {
    d += (a[i]! - exact[i]!) ** 2;
    e += exact[i]! ** 2;
  }
  return Math.sqrt(d / e);
};

test('every architecture spec has llama.cpp fixtures from the current generator', () => {
  for (const spec of ARCH_SPECS) assert.ok(fixtures.some((f) => f.spec === spec.name && f.weightType === 'F32'), `no f32 fixture for ${spec.name}`);
  for (const f of fixtures) assert.equal(f.generatorVersion, ARCH_GENERATOR_VERSION, `${f.spec} ${f.weightType}: recorded from generator ${f.generatorVersion}; re-record`);
});

for (const f of fixtures) {
  test(`${f.spec} ${f.weightType}: vserve agrees with llama.cpp on the same file`, () => {
    const spec = ARCH_SPECS.find((s) => s.name === f.spec);
    assert.ok(spec, `fixture for unknown spec ${f.spec}`);
    const dir = mkdtempSync(join(tmpdir(), 'vserve-parity-'));
    try {
      const path = writeArchModel(join(dir, 'model.gguf'), spec, GGMLType[f.weightType as keyof typeof GGMLType]);
      const native = vserveRun(path, f.prompt, 'native');
      if (f.weightType === 'F32' || f.weightType === 'F16') {
        assert.equal(native.greedy[0], f.greedy[0], 'top-1 after the prompt');
        if (f.weightType === 'F32') assert.deepEqual(native.greedy, f.greedy, 'native greedy tokens');
        else {
          const { gaps } = vserveRun(path, f.prompt, 'native', f.greedy.length, f.greedy);
          gaps.forEach((gap, i) => assert.ok(gap < 0.05, `step ${i}: llama.cpp's token ${f.greedy[i]} is ${gap} below vserve's top logit`));
        }
        assert.ok(maxAbsDiff(native.firstLogits, f.firstLogits) < 0.05, `native logits differ by ${maxAbsDiff(native.firstLogits, f.firstLogits)}`);
        const reference = vserveRun(path, f.prompt, 'reference', 8, f.greedy);
        if (f.weightType === 'F32') assert.deepEqual(reference.greedy, f.greedy.slice(0, 8), 'reference greedy tokens');
        reference.gaps.forEach((gap, i) => assert.ok(gap < 0.05, `reference step ${i}: llama.cpp's token ${f.greedy[i]} is ${gap} below the top logit`));
      } else {
        const exact = vserveRun(path, f.prompt, 'reference', 1).firstLogits;
        for (const [who, logits] of [['llama.cpp', f.firstLogits], ['vserve native', native.firstLogits]] as const) {
          const rel = relativeRms(logits, exact);
          assert.ok(rel < 0.08, `${who}'s logits are ${(rel * 100).toFixed(1)}% (RMS) from the exact ones`);
        }
        const routed = spec.tensors(spec.shape ?? SMALL_SHAPE).some((t) => t.role === 'router');
        if (!routed) {
          const top = Math.max(...exact);
          const tie = 0.03 * Math.sqrt(exact.reduce((a, v) => a + v * v, 0) / exact.length);
          for (const [who, pick] of [['llama.cpp', f.greedy[0]!], ['vserve native', native.greedy[0]!]] as const) {
            assert.ok(exact[pick]! >= top - tie, `${who}'s top-1 ${pick} is ${top - exact[pick]!} below the exact top-1 ${exact.indexOf(top)} (a near-tie allows ${tie})`);
          }
          const { gaps } = vserveRun(path, f.prompt, 'native', f.greedy.length, f.greedy);
          gaps.forEach((gap, i) => assert.ok(gap < QUANTIZED_GAP, `step ${i}: llama.cpp's token ${f.greedy[i]} is ${gap} below vserve's top logit`));
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

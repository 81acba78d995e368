// Every architecture against llama.cpp on the same generated file (bench/arch-models.ts): the fixtures
// are llama.cpp's greedy tokens and first-step logits, recorded by `npm run bench -- arch-parity
// --record` with node-llama-cpp. With f32 and f16 weights both engines compute in f32 and must agree token for
// token. With quantized weights each engine rounds the activations to int8 its own way (llama.cpp in
// 256-value blocks for K-quants, vserve in 32-value blocks), which on a random-weight model moves the
// logits by a few percent and soon changes a greedy token; there the check is that both engines'
// first logits are within 8% (RMS) of the exact result (the reference backend, f32
// activations) and pick the same top token, where a misread architecture is off by the logits' scale.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ARCH_GENERATOR_VERSION, ARCH_SPECS, writeArchModel } from '../../bench/arch-models.js';
import { FIXTURE_DIR, type ParityFixture, vserveRun } from '../../bench/arch-parity.js';
import { GGMLType } from '../../src/model/gguf/types.js';

const fixtures: ParityFixture[] = readdirSync(FIXTURE_DIR).filter((f) => f.endsWith('.json')).sort()
  .map((f) => JSON.parse(readFileSync(join(FIXTURE_DIR, f), 'utf8')) as ParityFixture);

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
      assert.equal(native.greedy[0], f.greedy[0], 'top-1 after the prompt');
      if (f.weightType === 'F32' || f.weightType === 'F16') {
        assert.deepEqual(native.greedy, f.greedy, 'native greedy tokens');
        assert.ok(maxAbsDiff(native.firstLogits, f.firstLogits) < 0.05, `native logits differ by ${maxAbsDiff(native.firstLogits, f.firstLogits)}`);
        const reference = vserveRun(path, f.prompt, 'reference', 8);
        assert.deepEqual(reference.greedy, f.greedy.slice(0, 8), 'reference greedy tokens');
      } else {
        const exact = vserveRun(path, f.prompt, 'reference', 1).firstLogits;
        assert.equal(exact.indexOf(Math.max(...exact)), f.greedy[0], 'exact top-1');
        for (const [who, logits] of [['llama.cpp', f.firstLogits], ['vserve native', native.firstLogits]] as const) {
          const rel = relativeRms(logits, exact);
          assert.ok(rel < 0.08, `${who}'s logits are ${(rel * 100).toFixed(1)}% (RMS) from the exact ones`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

// Llama 4's attention temperature (Mistral 3): the multiplier per position against values worked out
// by hand (ln 2 = 0.693147180559945, ln 3 = 1.098612288668110), its reading from a generated mistral3
// file, and YaRN's magnitude under yarn_log_multiplier.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ARCH_SPECS, type ArchSpec } from '../../bench/arch-models.js';
import { withArchFile } from './arch-file.js';
import { applyQueryTemperature, queryTemperatureAt } from '../../src/model/attention-temperature.js';
import { readModelConfig } from '../../src/model/architectures/index.js';
import type { Mistral3Config } from '../../src/model/architectures/mistral3.js';
import { ModelConfigError } from '../../src/model/model-config.js';
import { type RopeScaling, yarnMagnitude } from '../../src/model/rope-scaling.js';

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);

test('the query multiplier is 1 within the first span and 1 + beta ln(k + 1) in the k-th span after it', () => {
  const t = { scale: 0.1, span: 8 };
  for (const pos of [0, 1, 7]) assert.equal(queryTemperatureAt(t, pos), 1);
  near(queryTemperatureAt(t, 8), 1.0693147180559945, 'pos 8 (1 + 0.1 ln 2)');
  near(queryTemperatureAt(t, 15), 1.0693147180559945, 'pos 15 (1 + 0.1 ln 2)');
  near(queryTemperatureAt(t, 16), 1.109861228866811, 'pos 16 (1 + 0.1 ln 3)');
  near(queryTemperatureAt(t, 63), 1.2079441541679836, 'pos 63 (1 + 0.3 ln 2)');
  // Ministral 3's own values: beta 0.1 over an original context of 16384, at the end of its 256K context.
  const real = { scale: 0.1, span: 16384 };
  assert.equal(queryTemperatureAt(real, 16383), 1);
  near(queryTemperatureAt(real, 262143), 1.2772588722239782, 'pos 262143 (1 + 0.4 ln 2)');
});

test('each token\'s query rows are scaled by its own position\'s multiplier', () => {
  const qDim = 3;
  const q = Float32Array.from([1, 2, 3, 1, 2, 3, -4, 5, 6]);
  applyQueryTemperature(q, Int32Array.of(7, 8, 16), 3, qDim, { scale: 0.1, span: 8 });
  const expected = [1, 2, 3, ...[1, 2, 3].map((x) => x * 1.0693147180559945), ...[-4, 5, 6].map((x) => x * 1.109861228866811)];
  expected.forEach((e, i) => assert.ok(Math.abs(q[i]! - e) < 1e-6, `q[${i}] = ${q[i]} != ${e}`));
});

const spec = ARCH_SPECS.find((s) => s.name === 'mistral3')!;

const variant = (name: string, set: (w: Parameters<NonNullable<ArchSpec['metadata']>>[0]) => void): ArchSpec => ({ ...spec, name, metadata: (w, s) => { spec.metadata!(w, s); set(w); } });

test('a mistral3 file: adjacent-pair RoPE, wide heads, YaRN with its log multiplier, and the temperature over the original context', () => {
  withArchFile(spec, (file) => {
    const c = readModelConfig(file) as Mistral3Config;
    assert.equal(c.ropeMode, 'normal');
    assert.equal(c.headDim, 128);
    assert.equal(c.ropeScaling.type, 'yarn');
    assert.equal(c.ropeScaling.yarnLogMultiplier, 1);
    assert.deepEqual(c.queryTemperature, { scale: 0.10000000149011612, span: 8 });
  });
  withArchFile(variant('mistral3-no-temperature', (w) => w.setFloat32('mistral3.attention.temperature_scale', 0)), (file) => {
    assert.equal((readModelConfig(file) as Mistral3Config).queryTemperature, undefined);
  });
  withArchFile(variant('mistral3-experts', (w) => w.setUint32('mistral3.expert_count', 4)), (file) => {
    assert.throws(() => readModelConfig(file), (e: unknown) => e instanceof ModelConfigError && /mixture-of-experts mistral3/.test((e as Error).message));
  });
});

test('YaRN\'s magnitude is mscale(1), or mscale(1) / mscale(yarn_log_multiplier) when the file gives one', () => {
  const s = (factor: number, yarnLogMultiplier: number): RopeScaling => ({ type: 'yarn', factor, originalContext: 8, attnFactor: 1, yarnBetaFast: 32, yarnBetaSlow: 1, yarnLogMultiplier });
  near(yarnMagnitude(s(32, 0)), 1.3465735902799727, 'no multiplier (1 + 0.5 ln 2)');
  assert.equal(yarnMagnitude(s(32, 1)), 1);
  near(yarnMagnitude(s(32, 0.5)), 1.1476934674947155, 'multiplier 0.5 ((1 + 0.5 ln 2) / (1 + 0.25 ln 2))');
  assert.equal(yarnMagnitude(s(1, 0)), 1);
  assert.equal(yarnMagnitude(s(1, 0.5)), 1);
});

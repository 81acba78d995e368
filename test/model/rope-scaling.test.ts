// How RoPE scaling metadata and factor tensors resolve into the RoPE a model runs, on generated files
// (bench/arch-models.ts): LongRoPE's factors chosen by the context size, rope_freqs taken as they
// are, and scaling variants vserve does not run refused by name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ARCH_SPECS, type ArchSpec } from '../../bench/arch-models.js';
import { withArchFile } from './arch-file.js';
import { ReferenceBackend } from '../../src/backend/reference/reference-backend.js';
import { readModelConfig } from '../../src/model/architectures/index.js';
import { ModelConfigError } from '../../src/model/model-config.js';
import { loadRopeOptions } from '../../src/model/rope-scaling.js';
import { TransformerModel } from '../../src/model/transformer.js';
import { WeightLoader } from '../../src/model/weight-loader.js';

const spec = (name: string) => ARCH_SPECS.find((s) => s.name === name)!;

test('LongRoPE uses the short factors up to the original context and the long ones above it', () => {
  withArchFile(spec('phi3'), (file) => {
    const c = readModelConfig(file);
    assert.equal(c.ropeScaling.originalContext, 128);
    const w = new WeightLoader(file, new ReferenceBackend(), 'phi3');
    const long = w.vector('rope_factors_long.weight', 24), short = w.vector('rope_factors_short.weight', 24);
    assert.notDeepEqual(long, short);
    assert.deepEqual(loadRopeOptions(w, c, 128).ropeFreqFactors, short);
    assert.deepEqual(loadRopeOptions(w, c, 129).ropeFreqFactors, long);
    assert.ok(Math.abs(loadRopeOptions(w, c, 256).ropeAttnFactor! - Math.sqrt(1 + Math.log(2) / Math.log(128))) < 1e-6);
  });
});

test('rope_freqs (Llama 3.1+) are the frequency factors at any context; YaRN resolves into factors', () => {
  withArchFile(spec('llama3-rope'), (file) => {
    const c = readModelConfig(file);
    const w = new WeightLoader(file, new ReferenceBackend(), 'llama');
    const o = loadRopeOptions(w, c, 64);
    assert.deepEqual(o.ropeFreqFactors, w.vector('rope_freqs.weight', 32));
    assert.equal(o.ropeFreqScale, 1);
  });
  withArchFile(spec('qwen2-yarn'), (file) => {
    const c = readModelConfig(file);
    const o = loadRopeOptions(new WeightLoader(file, new ReferenceBackend(), 'qwen2'), c, 256);
    const f = o.ropeFreqFactors!;
    // The fastest-turning pairs keep their frequency, the slowest are scaled by the full factor 4.
    assert.equal(f[0], 1);
    assert.ok(Math.abs(f[31]! - 4) < 1e-6);
    assert.ok(Math.abs(o.ropeAttnFactor! - (1 + 0.1 * Math.log(4))) < 1e-6);
  });
});

test('scaling types and YaRN settings vserve does not run are refused by name', () => {
  const variant = (key: string, set: (w: Parameters<NonNullable<ArchSpec['metadata']>>[0]) => void): ArchSpec => ({ ...spec('qwen2-yarn'), name: `qwen2-${key}`, metadata: (w, s) => { spec('qwen2-yarn').metadata!(w, s); set(w); } });
  const refused = (s: ArchSpec, message: RegExp) => withArchFile(s, (file) => assert.throws(() => TransformerModel.load(file, new ReferenceBackend()), (e: unknown) => e instanceof ModelConfigError && message.test((e as Error).message)));
  refused(variant('dynamic', (w) => w.setString('qwen2.rope.scaling.type', 'dynamic')), /rope.scaling.type "dynamic" is not supported/);
  refused(variant('logmul', (w) => w.setFloat32('qwen2.rope.scaling.yarn_log_multiplier', 0.1)), /yarn_log_multiplier = 0.1\d* is not supported/);
  refused(variant('ext', (w) => w.setFloat32('qwen2.rope.scaling.yarn_ext_factor', 0.5)), /yarn_ext_factor = 0.5 is not supported/);
});

test('phi3 refuses a head layout whose attention width is not the embedding length', () => {
  const bad: ArchSpec = { ...spec('phi3'), name: 'phi3-wide', shape: { dim: 256, ffn: 512, layers: 1, heads: 4, kvHeads: 2, headDim: 128, context: 256 } };
  withArchFile(bad, (file) => assert.throws(() => readModelConfig(file), /phi3 needs heads x head size = embedding length/));
});

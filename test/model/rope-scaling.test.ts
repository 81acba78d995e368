// How RoPE scaling metadata and factor tensors resolve into the RoPE a model runs, on generated files
// (bench/arch-models.ts): LongRoPE's factors chosen by the context size, rope_freqs taken as they
// are, and scaling variants vserve does not run refused by name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ARCH_SPECS, type ArchSpec } from '../../bench/arch-models.js';
import { withArchFile } from './arch-file.js';
import { ArrayKV } from '../../src/backend/array-kv.js';
import { NativeBackend } from '../../src/backend/native/native-backend.js';
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

test('rope_freqs (Llama 3.1+) are the frequency factors at any context; YaRN resolves into its ramp', () => {
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
    const r = o.ropeYarnRamp!;
    // The fastest-turning pairs keep their frequency (ramp 1), the slowest are scaled by the full factor
    // 4 (ramp 0), and the ramp falls steadily between.
    assert.equal(o.ropeFreqScale, 0.25);
    assert.equal(o.ropeFreqFactors, undefined);
    assert.equal(r[0], 1);
    assert.equal(r[31], 0);
    for (let i = 1; i < r.length; i++) assert.ok(r[i]! <= r[i - 1]!, `ramp rises at pair ${i}`);
    assert.ok(r.some((v) => v > 0 && v < 1), 'some pairs blend');
    assert.ok(Math.abs(o.ropeAttnFactor! - (1 + 0.1 * Math.log(4))) < 1e-6);
  });
});

test('YaRN\'s blended angles: the native rope is the reference\'s, and shifting a key turns it as rope at the new position does', () => {
  const ramp = Float32Array.from({ length: 16 }, (_, i) => Math.fround(Math.min(1, Math.max(0, 1 - (i - 3) / 8))));
  const p = { nHeads: 2, headDim: 32, ropeDim: 32, freqBase: 10000, freqScale: 0.25, mode: 'neox' as const, attnFactor: 1.1386, yarnRamp: ramp };
  const native = new NativeBackend({ threads: 1 });
  const reference = new ReferenceBackend();
  try {
    const positions = Int32Array.of(0, 5, 17, 300, 4000);
    const x = Float32Array.from({ length: positions.length * 64 }, (_, i) => Math.sin(i * 0.37) * 2);
    const a = x.slice(), b = x.slice();
    native.rope(a, positions, p);
    reference.rope(b, positions, p);
    // The angles are the same f32 values; cos and sin of them (libm's cosf against Math.cos rounded) may
    // differ in a last bit.
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-5, `[${i}] ${v} vs ${b[i]}`));
    // With no blend (a ramp of zeros) YaRN's formula is the plain scaled angle, to the bit.
    const plain = x.slice(), zero = x.slice();
    native.rope(plain, positions, { ...p, yarnRamp: undefined });
    native.rope(zero, positions, { ...p, yarnRamp: new Float32Array(16) });
    assert.deepEqual(zero, plain);
    // A key roped at position 5, then shifted by 12, is the key roped at 17.
    const kv = new ArrayKV(1, 1, 32, 2, 32, { k: 'f32', v: 'f32' });
    const k = x.slice(0, 64), at5 = k.slice(), at17 = k.slice();
    const kp = { ...p, attnFactor: 1 };
    native.rope(at5, Int32Array.of(5), kp);
    native.rope(at17, Int32Array.of(17), kp);
    native.kvStore(kv, 0, at5, new Float32Array(64), Int32Array.of(0), Int32Array.of(5));
    native.shiftKeys(kv, 0, 0, 5, 1, 12, kp);
    const shifted = new Float32Array(kv.keys(0).buffer, kv.keys(0).byteOffset + 5 * 64 * 4, 64);
    shifted.forEach((v, i) => assert.ok(Math.abs(v - at17[i]!) < 1e-4, `[${i}] shifted ${v} vs roped at 17 ${at17[i]}`));
  } finally {
    native.close();
  }
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

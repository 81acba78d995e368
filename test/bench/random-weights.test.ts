// Random benchmark weights must dequantize (with the reference dequantizer) to small, zero-mean values
// of about the requested spread, in every block type the model generator writes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fillRandomBlocks, halfBits, Xorshift128 } from '../../bench/random-weights.js';
import { dequantize, f16ToF32 } from '../../src/model/gguf/dequant.js';
import { GGMLType, typeName, typeTraits } from '../../src/model/gguf/types.js';

test('halfBits encodes normal numbers as IEEE halves', () => {
  for (const v of [1, -2, 0.5, 0.000244140625, 65504]) assert.equal(f16ToF32(halfBits(v)), v);
});

for (const type of [
  GGMLType.F32, GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K,
  GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q5_K, GGMLType.IQ4_XS, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL,
]) {
  test(`random ${typeName(type)} blocks dequantize to zero-mean values of about the requested std`, () => {
    const { blockSize, typeSize } = typeTraits(type)!;
    const nBlocks = 4096 / blockSize * 16;
    const words = new Uint32Array(Math.ceil((nBlocks * typeSize) / 4));
    const bytes = new Uint8Array(words.buffer, 0, nBlocks * typeSize);
    fillRandomBlocks(type, bytes, words, new Xorshift128(7), 0.02);
    const x = dequantize(type, bytes, nBlocks * blockSize);
    let sum = 0;
    let sq = 0;
    for (const v of x) {
      assert.ok(Number.isFinite(v) && Math.abs(v) < 0.2);
      sum += v;
      sq += v * v;
    }
    const mean = sum / x.length;
    const std = Math.sqrt(sq / x.length - mean * mean);
    assert.ok(Math.abs(mean) < 0.0005, `mean ${mean}`);
    assert.ok(std > 0.01 && std < 0.04, `std ${std}`);
  });
}

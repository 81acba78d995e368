// End to end: tiny random-weight Llama models in the Q2_K, Q3_K_M, Q5_K_M and IQ4_XS mixes (bench/models.ts:
// between them every one of Q2_K, Q3_K, Q5_K and IQ4_XS, next to Q4_K and Q6_K) follow the reference
// backend (f32 activations, plain-TS dequantization) on the native backend (int8 activations, SIMD
// kernels): fed the reference's greedy tokens, at every step the reference's pick is native's top token
// or within 0.05 of it. Native's int8 activations (llama.cpp's Q8_K, one scale per 256 values) move these
// logits (RMS about 0.3) by about 0.02, so a near-tie may go the other way; a wrong kernel moves them by
// their whole scale.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeBenchModel, type BenchDType, type ModelShape } from '../../bench/models.js';
import { vserveRun } from '../../bench/arch-parity.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { createTokenizer } from '../../src/model/tokenizer/index.js';

const tiny: ModelShape = { dim: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 1, vocab: 32000, context: 128, ropeBase: 10000 };

test('tiny Q2_K / Q3_K_M / Q5_K_M / IQ4_XS models: native follows the reference backend\'s greedy tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-superblock-model-'));
  try {
    const seen = new Set<GGMLType>();
    for (const dtype of ['q2_K', 'q3_K_M', 'q5_K_M', 'iq4_xs'] as BenchDType[]) {
      const path = join(dir, `${dtype}.gguf`);
      writeBenchModel(path, tiny, dtype, 'tiny', false);
      const file = GGUFFile.open(path);
      for (const t of file.tensors) seen.add(t.type);
      const prompt = createTokenizer(file).encode('Once upon a time');
      file.close();
      const reference = vserveRun(path, prompt, 'reference', 12);
      const native = vserveRun(path, prompt, 'native', 12, reference.greedy);
      assert.equal(native.greedy[0], reference.greedy[0], `${dtype}: top-1 after the prompt`);
      native.gaps.forEach((gap, i) => assert.ok(gap < 0.05, `${dtype} step ${i}: the reference's token ${reference.greedy[i]} is ${gap} below native's top logit`));
    }
    for (const type of [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q5_K, GGMLType.IQ4_XS]) assert.ok(seen.has(type), `no ${GGMLType[type]} tensor`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

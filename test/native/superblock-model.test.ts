// End to end: tiny random-weight Llama models in the Q2_K, Q3_K_M, Q5_K_M and IQ4_XS mixes (bench/models.ts:
// between them every one of Q2_K, Q3_K, Q5_K and IQ4_XS, next to Q4_K and Q6_K) give the same greedy
// tokens on the native backend (int8 activations, SIMD kernels) as on the reference backend (f32
// activations, plain-TS dequantization).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeBenchModel, type BenchDType, type ModelShape } from '../../bench/models.js';
import { generate } from '../../src/engine/generate.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { loadModel, type BackendKind } from '../../src/model/load.js';

const tiny: ModelShape = { dim: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 1, vocab: 32000, context: 128, ropeBase: 10000 };

function greedyTokens(path: string, backend: BackendKind): number[] {
  const { model, tokenizer } = loadModel(path, { backend });
  try {
    const tokens: number[] = [];
    for (const piece of generate(model, tokenizer, 'Once upon a time', { temperature: 0, maxTokens: 12 })) tokens.push(...piece.tokens);
    return tokens;
  } finally {
    model.backend.close();
    model.close();
  }
}

test('tiny Q2_K / Q3_K_M / Q5_K_M / IQ4_XS models: native greedy tokens equal the reference backend\'s', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-superblock-model-'));
  try {
    const seen = new Set<GGMLType>();
    for (const dtype of ['q2_K', 'q3_K_M', 'q5_K_M', 'iq4_xs'] as BenchDType[]) {
      const path = join(dir, `${dtype}.gguf`);
      writeBenchModel(path, tiny, dtype, 'tiny', false);
      const file = GGUFFile.open(path);
      for (const t of file.tensors) seen.add(t.type);
      file.close();
      const native = greedyTokens(path, 'native');
      assert.equal(native.length, 12, dtype);
      assert.deepEqual(native, greedyTokens(path, 'reference'), dtype);
    }
    for (const type of [GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q5_K, GGMLType.IQ4_XS]) assert.ok(seen.has(type), `no ${GGMLType[type]} tensor`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Generated benchmark models must be valid Llama GGUFs with the real tokenizer whose forward pass (on
// the reference backend) gives finite, non-degenerate logits, in every weight format.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeBenchModel, type BenchDType, type ModelShape } from '../../bench/models.js';
import { ArrayKV } from '../../src/backend/array-kv.js';
import { ReferenceBackend } from '../../src/backend/reference/reference-backend.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { TransformerModel } from '../../src/model/transformer.js';

// A small Llama shape: row lengths that are multiples of 256 so every format (Q4_K included) applies.
const tiny: ModelShape = { dim: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 2, vocab: 32000, context: 128, ropeBase: 10000 };
const dtypes: BenchDType[] = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_K', 'q4_K_M', 'q5_K_M', 'q3_K_M', 'q2_K', 'iq4_xs', 'q4_1', 'q5_0', 'q5_1', 'iq4_nl'];

for (const dtype of dtypes) {
  test(`a ${dtype} benchmark model loads and gives finite logits`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'vserve-benchmodel-'));
    const path = join(dir, 'tiny.gguf');
    try {
      writeBenchModel(path, tiny, dtype, 'tiny', false);
      const file = GGUFFile.open(path);
      assert.equal(file.get('general.architecture'), 'llama');
      assert.equal(file.get<string[]>('tokenizer.ggml.tokens')?.length, 32000);
      assert.equal(file.tensor('blk.0.attn_norm.weight')?.type, GGMLType.F32);
      if (dtype === 'q4_K') assert.equal(file.tensor('output.weight')?.type, GGMLType.Q6_K);
      if (dtype === 'q4_K_M') {
        // Of two layers only the last is a use_more_bits one (the last eighth): its attn_v / ffn_down are Q6_K.
        assert.equal(file.tensor('blk.1.attn_v.weight')?.type, GGMLType.Q6_K);
        assert.equal(file.tensor('blk.1.ffn_down.weight')?.type, GGMLType.Q6_K);
        assert.equal(file.tensor('blk.0.ffn_down.weight')?.type, GGMLType.Q4_K);
        assert.equal(file.tensor('blk.0.attn_q.weight')?.type, GGMLType.Q4_K);
      }
      if (dtype === 'q3_K_M') assert.equal(file.tensor('blk.0.attn_output.weight')?.type, GGMLType.Q4_K);
      if (dtype === 'iq4_xs') assert.equal(file.tensor('blk.1.ffn_up.weight')?.type, GGMLType.IQ4_XS);
      const model = TransformerModel.load(file, new ReferenceBackend());
      const kv = new ArrayKV(tiny.layers, 1, 16, tiny.kvHeads, tiny.dim / tiny.heads);
      const n = 4;
      const logits = model.forward({
        tokens: Int32Array.of(1, 450, 4996, 17354),
        positions: Int32Array.of(0, 1, 2, 3),
        slots: new Int32Array(n),
        logitRows: Int32Array.of(n - 1),
      }, kv);
      assert.equal(logits.length, 32000);
      let min = Infinity, max = -Infinity;
      for (const v of logits) {
        assert.ok(Number.isFinite(v));
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      assert.ok(max - min > 0.1, `logits spread ${max - min}`);
      model.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

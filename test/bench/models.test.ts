// Generated benchmark models must be valid Llama GGUFs with the real tokenizer whose forward pass (on
// the reference backend) gives finite, non-degenerate logits, in every weight format; and the
// Qwen2-shaped one (152K vocabulary, QKV biases, tied embeddings) and the Qwen3-MoE-shaped one (experts,
// QK norms, heads wider than dim / heads) must load and agree on both backends.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeTraffic } from '../../bench/decode-traffic.js';
import { SHAPES, writeBenchModel, type BenchDType, type ModelShape } from '../../bench/models.js';
import { ArrayKV } from '../../src/backend/array-kv.js';
import { ReferenceBackend } from '../../src/backend/reference/reference-backend.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { loadModel, type BackendKind } from '../../src/model/load.js';
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

// qwen2.5-0.5b's generator path at a small size: the real vocabulary and tokenizer, small layers.
const tinyQwen: ModelShape = { ...SHAPES['qwen2.5-0.5b'], dim: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 2, context: 128 };

/** The last prompt row's logits of a model file (of `shape`) on a backend. */
function promptLogits(path: string, backend: BackendKind, shape: ModelShape = tinyQwen): Float32Array {
  const { model, tokenizer } = loadModel(path, { backend });
  try {
    const ids = tokenizer.encode('The quick brown fox jumps over the lazy dog', { addSpecial: true });
    const kv = new ArrayKV(shape.layers, 1, 16, shape.kvHeads, shape.headDim ?? shape.dim / shape.heads);
    return model.forward({
      tokens: Int32Array.from(ids),
      positions: Int32Array.from(ids, (_, i) => i),
      slots: new Int32Array(ids.length),
      logitRows: Int32Array.of(ids.length - 1),
    }, kv);
  } finally {
    model.backend.close();
    model.close();
  }
}

/** The last prompt row's logits on the reference and native backends: how far apart, their spread, each one's top token. */
function backendLogits(path: string, shape: ModelShape) {
  const reference = promptLogits(path, 'reference', shape);
  const native = promptLogits(path, 'native', shape);
  assert.equal(reference.length, shape.vocab);
  let maxDiff = 0, argRef = 0, argNat = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < reference.length; i++) {
    assert.ok(Number.isFinite(reference[i]!) && Number.isFinite(native[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(reference[i]! - native[i]!));
    if (reference[i]! > reference[argRef]!) argRef = i;
    if (native[i]! > native[argNat]!) argNat = i;
    min = Math.min(min, reference[i]!);
    max = Math.max(max, reference[i]!);
  }
  return { maxDiff, spread: max - min, argRef, argNat };
}

test('a tiny qwen2.5-0.5b-shaped model: QKV biases, tied embeddings, 152K vocabulary; same logits on both backends', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-benchmodel-'));
  const path = join(dir, 'tiny-qwen.gguf');
  try {
    // q4_K_M: the 256-wide rows take K-quants; Qwen2.5-0.5B's real 896-wide ones fall back (fitRow).
    writeBenchModel(path, tinyQwen, 'q4_K_M', 'tiny-qwen', false);
    const file = GGUFFile.open(path);
    assert.equal(file.get('general.architecture'), 'qwen2');
    assert.equal(file.get('qwen2.rope.freq_base'), 1e6);
    assert.equal(file.get<string[]>('tokenizer.ggml.tokens')?.length, 151936);
    assert.equal(file.tensor('output.weight'), undefined);
    assert.equal(file.tensor('token_embd.weight')?.type, GGMLType.Q6_K); // tied: the output matrix's type
    assert.equal(file.tensor('blk.0.attn_k.bias')?.dims[0], 128);
    file.close();

    const { maxDiff, spread, argRef, argNat } = backendLogits(path, tinyQwen);
    assert.ok(spread > 0.1, `logits spread ${spread}`);
    // The native backend's int8 activations against the reference's f32: close, and the same top token.
    assert.ok(maxDiff < 0.05, `native logits differ by ${maxDiff}`);
    assert.equal(argNat, argRef);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Qwen3-30B-A3B's kind of layer at a small size: 8 experts of width 256, 2 used; heads 64 wide where
// dim / heads is 32; QK norms.
const tinyMoE: ModelShape = { ...SHAPES['qwen3-30b-a3b-4l'], dim: 256, ffn: 512, layers: 2, heads: 8, kvHeads: 2, headDim: 64, context: 128, experts: { count: 8, used: 2, width: 256 } };

test('a tiny qwen3-30b-a3b-shaped model: stacked experts, F32 router, QK norms, wide heads; same logits on both backends', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-benchmodel-'));
  const path = join(dir, 'tiny-moe.gguf');
  try {
    writeBenchModel(path, tinyMoE, 'q4_K', 'tiny-moe', false);
    const file = GGUFFile.open(path);
    assert.equal(file.get('general.architecture'), 'qwen3moe');
    assert.equal(file.get('qwen3moe.expert_count'), 8);
    assert.equal(file.get('qwen3moe.expert_used_count'), 2);
    assert.equal(file.get('qwen3moe.expert_feed_forward_length'), 256);
    assert.equal(file.get('qwen3moe.attention.key_length'), 64);
    assert.deepEqual(file.tensor('blk.0.attn_q.weight')?.dims, [256, 512]);
    assert.deepEqual(file.tensor('blk.0.attn_output.weight')?.dims, [512, 256]);
    assert.deepEqual(file.tensor('blk.1.ffn_down_exps.weight')?.dims, [256, 256, 8]);
    assert.equal(file.tensor('blk.1.ffn_gate_exps.weight')?.type, GGMLType.Q4_K);
    assert.equal(file.tensor('blk.0.ffn_gate_inp.weight')?.type, GGMLType.F32);
    assert.equal(file.tensor('blk.0.attn_k_norm.weight')?.dims[0], 64);
    assert.equal(file.tensor('blk.0.ffn_gate.weight'), undefined);
    const expertBytes = file.tensors.filter((t) => t.dims.length === 3).reduce((n, t) => n + t.nBytes, 0);
    const allBytes = file.tensors.reduce((n, t) => n + t.nBytes, 0);
    const embeddingBytes = file.tensor('token_embd.weight')!.nBytes;
    file.close();
    // A decoded token reads 2 of the 8 experts of each stacked matrix.
    assert.equal(decodeTraffic(path, 2).weightBytesPerToken, allBytes - embeddingBytes - expertBytes * (6 / 8));

    // Both backends on f32 weights (no int8 activations, whose rounding can move a token to another
    // expert): the same logits to float rounding.
    writeBenchModel(path, tinyMoE, 'f32', 'tiny-moe', false);
    const { maxDiff, spread, argRef, argNat } = backendLogits(path, tinyMoE);
    assert.ok(spread > 0.1, `logits spread ${spread}`);
    assert.ok(maxDiff < 1e-3 * spread, `native logits differ by ${maxDiff} (spread ${spread})`);
    assert.equal(argNat, argRef);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rows that are not whole K-quant blocks fall back as llama.cpp\'s do', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-benchmodel-'));
  const path = join(dir, 'odd-rows.gguf');
  try {
    // 896 wide like Qwen2.5-0.5B: Q4_K -> Q5_0, Q6_K -> Q8_0; ffn_down's 512-wide rows keep K-quants.
    writeBenchModel(path, { ...tinyQwen, dim: 896, heads: 14, kvHeads: 2, layers: 1 }, 'q4_K_M', 'odd-rows', false);
    const file = GGUFFile.open(path);
    assert.equal(file.tensor('token_embd.weight')?.type, GGMLType.Q8_0);
    assert.equal(file.tensor('blk.0.attn_q.weight')?.type, GGMLType.Q5_0);
    assert.equal(file.tensor('blk.0.attn_v.weight')?.type, GGMLType.Q8_0);
    assert.equal(file.tensor('blk.0.ffn_down.weight')?.type, GGMLType.Q6_K);
    file.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

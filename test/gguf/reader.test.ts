import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { GGUFError } from '../../src/model/gguf/errors.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { dequantize } from '../../src/model/gguf/dequant.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { bundledModel, vocabFile } from '../paths.js';

test('reads the bundled model: metadata, tensor infos, data offsets', () => {
  const f = GGUFFile.open(bundledModel);
  try {
    assert.equal(f.version, 3);
    assert.equal(f.get('general.architecture'), 'llama');
    assert.equal(f.get('llama.embedding_length'), 64);
    assert.equal(f.get('llama.block_count'), 5);
    assert.equal(f.get('llama.attention.head_count_kv'), 4);
    assert.equal(f.get<string[]>('tokenizer.ggml.tokens')!.length, 512);
    assert.ok(f.get('tokenizer.ggml.scores') instanceof Float32Array);
    assert.equal(f.tensors.length, 2 + 5 * 9);
    const emb = f.tensor('token_embd.weight')!;
    assert.deepEqual(emb.dims, [64, 512]);
    assert.equal(emb.type, GGMLType.F32);
    assert.equal(emb.nBytes, 64 * 512 * 4);
    assert.equal(f.dataOffset % f.alignment, 0);
    // Every tensor lies inside the file and they do not overlap.
    const sorted = [...f.tensors].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i - 1]!.offset + sorted[i - 1]!.nBytes <= sorted[i]!.offset);
    assert.ok(sorted.at(-1)!.fileOffset + sorted.at(-1)!.nBytes <= f.fileSize);
    // Tensor bytes read lazily match the file's bytes at the computed offset.
    const raw = readFileSync(bundledModel);
    const norm = f.tensor('output_norm.weight')!;
    assert.deepEqual(Buffer.from(f.tensorBytes(norm)), raw.subarray(norm.fileOffset, norm.fileOffset + norm.nBytes));
    const floats = dequantize(norm.type, f.tensorBytes(norm), norm.nElements);
    assert.ok(floats.every(Number.isFinite));
  } finally {
    f.close();
  }
});

test('reads every shipped vocabulary file (string arrays, merges, typed arrays)', () => {
  for (const name of ['llama-spm', 'gpt-2', 'falcon', 'starcoder', 'mpt']) {
    const f = GGUFFile.open(vocabFile(name));
    try {
      const tokens = f.get<string[]>('tokenizer.ggml.tokens');
      assert.ok(Array.isArray(tokens) && tokens.length > 30000, name);
      assert.ok(f.get('tokenizer.ggml.token_type') instanceof Int32Array, name);
      if (f.get('tokenizer.ggml.model') === 'gpt2') assert.ok(f.get<string[]>('tokenizer.ggml.merges')!.length > 40000, name);
    } finally {
      f.close();
    }
  }
});

test('opens a missing file with a specific error', () => {
  assert.throws(() => GGUFFile.open('does-not-exist.gguf'), (e: unknown) => e instanceof GGUFError && /cannot open/.test(e.message));
});

test('dequantizes the quantized block formats to known values', () => {
  const f16 = (v: number) => {
    // exact halves for the test values used below
    const table: Record<number, number> = { 0.5: 0x3800, 1: 0x3c00, 2: 0x4000, 0.25: 0x3400, [-1]: 0xbc00 };
    return table[v]!;
  };
  // Q8_0: d = 0.5, qs = -16..15
  const q8 = new Uint8Array(34);
  new DataView(q8.buffer).setUint16(0, f16(0.5), true);
  for (let i = 0; i < 32; i++) q8[2 + i] = (i - 16) & 0xff;
  assert.deepEqual(Array.from(dequantize(GGMLType.Q8_0, q8, 32)), Array.from({ length: 32 }, (_, i) => (i - 16) * 0.5));
  // Q4_0: d = 2, low nibbles j, high nibbles 15 - j  →  (j - 8) * 2 and (7 - j) * 2
  const q4 = new Uint8Array(18);
  new DataView(q4.buffer).setUint16(0, f16(2), true);
  for (let j = 0; j < 16; j++) q4[2 + j] = j | ((15 - j) << 4);
  const want4 = [...Array.from({ length: 16 }, (_, j) => (j - 8) * 2), ...Array.from({ length: 16 }, (_, j) => (7 - j) * 2)];
  assert.deepEqual(Array.from(dequantize(GGMLType.Q4_0, q4, 32)), want4);
  // Q4_1: d = 1, m = -1  →  q - 1
  const q41 = new Uint8Array(20);
  new DataView(q41.buffer).setUint16(0, f16(1), true);
  new DataView(q41.buffer).setUint16(2, f16(-1), true);
  for (let j = 0; j < 16; j++) q41[4 + j] = j | (j << 4);
  assert.deepEqual(Array.from(dequantize(GGMLType.Q4_1, q41, 32)), [...Array.from({ length: 16 }, (_, j) => j - 1), ...Array.from({ length: 16 }, (_, j) => j - 1)]);
  // Q6_K: d = 0.25, all scales 2, all quants 32 + 1 → (1) * 0.25 * 2 = 0.5 for every element
  const q6 = new Uint8Array(210);
  q6.fill(0x11, 0, 128); // low nibbles 1
  q6.fill(0xaa, 128, 192); // high 2-bit fields = 2 → +32
  q6.fill(2, 192, 208);
  new DataView(q6.buffer).setUint16(208, f16(0.25), true);
  assert.ok(Array.from(dequantize(GGMLType.Q6_K, q6, 256)).every((v) => v === 0.5));
  // Q4_K: d = 1, dmin = 0.5, every 6-bit scale 3 and min 2 → 3 * q - 1
  const q4k = new Uint8Array(144);
  new DataView(q4k.buffer).setUint16(0, f16(1), true);
  new DataView(q4k.buffer).setUint16(2, f16(0.5), true);
  // scales[0..3] = 3 (sub-blocks 0-3), scales[4..7] = 2 (mins 0-3), scales[8..11] pack sub-blocks 4-7: sc=3 | m=2<<4
  q4k.fill(3, 4, 8);
  q4k.fill(2, 8, 12);
  q4k.fill(3 | (2 << 4), 12, 16);
  for (let i = 0; i < 128; i++) q4k[16 + i] = 5 | (7 << 4);
  const got = dequantize(GGMLType.Q4_K, q4k, 256);
  for (let g = 0; g < 4; g++) {
    for (let l = 0; l < 32; l++) assert.equal(got[g * 64 + l], 3 * 5 - 1);
    for (let l = 0; l < 32; l++) assert.equal(got[g * 64 + 32 + l], 3 * 7 - 1);
  }
  assert.throws(() => dequantize(GGMLType.Q8_0, q8, 33), /whole number of blocks/);
  assert.throws(() => dequantize(GGMLType.Q8_0, q8.subarray(0, 30), 32), /too short/);
});

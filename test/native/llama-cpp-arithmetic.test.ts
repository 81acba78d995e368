// The ops between the matmuls give llama.cpp's results to the bit (llama-cpp-emulation.ts writes its
// arithmetic out): rmsnorm on every ISA; on AVX-512, SwiGLU (its vector exp), attention over an f32
// cache (its dot products and softmax), an expert router's softmax, and a decode's f32 matmul (its
// vec_dot). Any ulp these ops differ by can flip an int8 rounding of the next
// matmul's activations, after which the two engines' tokens part (test/model/arch-parity.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { AttentionShape } from '../../src/backend/backend.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { forEachIsa, isas, native, Rng } from './helpers.js';
import { attentionHead, rmsnorm, softmax, swiglu, vecDotF32 } from './llama-cpp-emulation.js';

test('rmsnorm is llama.cpp\'s: f32 squares summed in f64, the mean and scale in f32 (every ISA)', () => {
  const rng = new Rng(51);
  for (const dim of [64, 100, 2048]) {
    const n = 5;
    const x = rng.floats(n * dim).map((v, i) => v * (1 + (i % 13)));
    const weight = rng.floats(dim).map((v) => 1 + v);
    const eps = 1e-5;
    const want = new Float32Array(n * dim);
    for (let r = 0; r < n; r++) want.set(rmsnorm(x.subarray(r * dim, (r + 1) * dim), weight, eps), r * dim);
    forEachIsa((isa) => {
      const got = new Float32Array(n * dim);
      native.rmsnorm(got, x, weight, n, dim, eps);
      assert.deepEqual(got, want, `${isa} dim ${dim}`);
    });
  }
});

test('SwiGLU is llama.cpp\'s on AVX-512: its vector exp, out-of-range inputs included', (t) => {
  if (!isas.includes('avx512')) {
    t.skip('this CPU has no AVX-512');
    return;
  }
  const rng = new Rng(52);
  const len = 4096;
  // Mostly gate values in a model's range, some far out (exp(-x) overflows or underflows there).
  const gate = rng.floats(len).map((v, i) => (i % 97 === 0 ? v * 400 : v * 12));
  const up = rng.floats(len);
  const want = Float32Array.from(gate, (g, i) => swiglu(g, up[i]!));
  forEachIsa((isa) => {
    if (isa !== 'avx512') return;
    const got = new Float32Array(len);
    native.swiglu(got, gate, up, len);
    assert.deepEqual(got, want);
  });
});

test('attention over an f32 cache is llama.cpp\'s on AVX-512: scores, softmax and weighted values, windows included', (t) => {
  if (!isas.includes('avx512')) {
    t.skip('this CPU has no AVX-512');
    return;
  }
  const rng = new Rng(53);
  for (const headDim of [64, 128]) {
    const s: AttentionShape = { nHeads: 4, nKVHeads: 2, headDim, scale: 1 / Math.sqrt(headDim) };
    const width = s.nKVHeads * headDim, qWidth = s.nHeads * headDim;
    const len = 150;
    const kv = new ArrayKV(1, 1, 256, s.nKVHeads, headDim, { k: 'f32', v: 'f32' });
    const k = rng.floats(len * width, 2), v = rng.floats(len * width);
    native.kvStore(kv, 0, k, v, new Int32Array(len), Int32Array.from({ length: len }, (_, i) => i));
    // A prefill chunk's last rows and a decode, with and without a window that starts mid-tile.
    const rows = [60, 61, 149];
    const q = rng.floats(rows.length * qWidth, 2);
    for (const window of [undefined, 37]) {
      const shape = window === undefined ? s : { ...s, window };
      const want = new Float32Array(rows.length * qWidth);
      rows.forEach((row, t) => {
        const first = window === undefined ? 0 : Math.max(0, row + 1 - window);
        for (let h = 0; h < s.nHeads; h++) {
          const kvh = Math.floor(h / (s.nHeads / s.nKVHeads));
          const slice = (x: Float32Array, p: number) => x.subarray(p * width + kvh * headDim, p * width + (kvh + 1) * headDim);
          const keys = [], values = [];
          for (let p = first; p <= row; p++) { keys.push(slice(k, p)); values.push(slice(v, p)); }
          want.set(attentionHead(q.subarray(t * qWidth + h * headDim, t * qWidth + (h + 1) * headDim), keys, values, first, Math.fround(s.scale)), t * qWidth + h * headDim);
        }
      });
      forEachIsa((isa) => {
        if (isa !== 'avx512') return;
        const got = new Float32Array(rows.length * qWidth);
        native.attention(got, q, kv, 0, new Int32Array(rows.length), Int32Array.from(rows), shape);
        assert.deepEqual(got, want, `head size ${headDim}, window ${window ?? 'none'}`);
      });
    }
  }
});

test('an expert router\'s softmax is llama.cpp\'s on AVX-512: its vector exp on whole 16s, expf on the rest', (t) => {
  if (!isas.includes('avx512')) {
    t.skip('this CPU has no AVX-512');
    return;
  }
  const rng = new Rng(57);
  for (const len of [4, 8, 16, 60, 128]) {
    const n = 3;
    const x = rng.floats(n * len, 6);
    const want = new Float32Array(n * len);
    for (let r = 0; r < n; r++) want.set(softmax(x.subarray(r * len, (r + 1) * len)), r * len);
    forEachIsa((isa) => {
      if (isa !== 'avx512') return;
      const got = new Float32Array(n * len);
      native.softmax(got, x, n, len);
      // Whole 16s are exact; the tail's expf may differ from Math.exp's rounding in its last bit.
      if (len % 16 === 0) assert.deepEqual(got, want, `len ${len}`);
      else got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 2 ** -23 * Math.abs(want[i]!) * 2, `len ${len} [${i}]: ${v} vs ${want[i]}`));
    });
  }
});

test('a decode against f32 weights sums as llama.cpp\'s vec_dot does on AVX-512, the last cols % 64 included', (t) => {
  if (!isas.includes('avx512')) {
    t.skip('this CPU has no AVX-512');
    return;
  }
  const rng = new Rng(58);
  for (const cols of [64, 256, 80]) {
    const rows = 20;
    const w = rng.floats(rows * cols), x = rng.floats(cols, 3);
    const want = Float32Array.from({ length: rows }, (_, r) => vecDotF32(w.subarray(r * cols, (r + 1) * cols), x, cols));
    const weight = native.createWeight('w', GGMLType.F32, rows, cols, new Uint8Array(w.buffer.slice(0)));
    forEachIsa((isa) => {
      if (isa !== 'avx512') return;
      const got = new Float32Array(rows);
      native.matmul(got, x, 1, weight);
      assert.deepEqual(got, want, `cols ${cols}`);
    });
  }
});

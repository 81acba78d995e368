// Shared pieces of the native-core tests: seeded random activations and GGML weight bytes of every
// type the kernels support, the two backends, and an error measure with per-dtype tolerances.
import { NativeBackend } from '../../src/backend/native/native-backend.js';
import { loadNativeAddon } from '../../src/backend/native/addon.js';
import { ReferenceBackend } from '../../src/backend/reference/reference-backend.js';
import assert from 'node:assert/strict';
import type { Weight } from '../../src/backend/backend.js';
import { GGMLType, typeName, typeTraits } from '../../src/model/gguf/types.js';
import { f16ToF32 } from '../../src/model/gguf/dequant.js';
import { llamaActivations, llamaRoundedActivations } from './llama-activation-quant.js';

export const addon = loadNativeAddon();
export const native = new NativeBackend();
export const reference = new ReferenceBackend();

/** Every ISA the kernels can run with on this machine (portable, avx2, avx512, neon ...). */
export const isas = addon.supportedIsas();
const bestIsa = isas[isas.length - 1]!;

/** Runs fn once per available ISA, restoring the best one afterwards. */
export function forEachIsa(fn: (isa: string) => void): void {
  try {
    for (const isa of isas) {
      addon.selectIsa(isa);
      fn(isa);
    }
  } finally {
    addon.selectIsa(bestIsa);
  }
}

/** mulberry32: small, seedable. */
export class Rng {
  constructor(private s: number) {}
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform in [-scale, scale). */
  sym(scale = 1): number {
    return (this.next() * 2 - 1) * scale;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  floats(n: number, scale = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.sym(scale);
    return a;
  }
  bytes(n: number): Uint8Array {
    const a = new Uint8Array(n);
    for (let i = 0; i < n; i++) a[i] = this.int(256);
    return a;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of v (round toward zero; normal range only, which is all the tests need). */
export function halfBits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  return sign | (exp << 10) | ((x >>> 13) & 0x3ff);
}

export function bf16Bits(v: number): number {
  f32[0] = v;
  return u32[0]! >>> 16;
}

/** Random GGML bytes for a rows x cols weight of `type`, with sane (finite, small) block scales. */
export function randomWeightBytes(type: GGMLType, rows: number, cols: number, rng: Rng): Uint8Array {
  const t = typeTraits(type)!;
  const nBlocks = (rows * cols) / t.blockSize;
  const out = new Uint8Array(nBlocks * t.typeSize);
  const view = new DataView(out.buffer);
  const half = (at: number, v: number) => view.setUint16(at, halfBits(v), true);
  for (let b = 0; b < nBlocks; b++) {
    const o = b * t.typeSize;
    switch (type) {
      case GGMLType.F32: view.setFloat32(o, rng.sym(), true); break;
      case GGMLType.F16: half(o, rng.sym()); break;
      case GGMLType.BF16: view.setUint16(o, bf16Bits(rng.sym()), true); break;
      case GGMLType.Q8_0:
        half(o, 0.005 + 0.01 * rng.next());
        out.set(rng.bytes(32), o + 2);
        break;
      case GGMLType.Q4_0:
        half(o, 0.05 + 0.1 * rng.next());
        out.set(rng.bytes(16), o + 2);
        break;
      case GGMLType.Q4_1: // x = d * nibble + m, m about -8 d so values centre near zero
      case GGMLType.Q5_1: { // x = d * q + m, q in 0..31
        const d = type === GGMLType.Q4_1 ? 0.05 + 0.1 * rng.next() : 0.02 + 0.05 * rng.next();
        half(o, d);
        half(o + 2, -d * (type === GGMLType.Q4_1 ? 8 : 16) * (0.5 + rng.next()));
        out.set(rng.bytes(t.typeSize - 4), o + 4);
        break;
      }
      case GGMLType.Q5_0: // qh[4] and qs[16] random bits
        half(o, 0.02 + 0.05 * rng.next());
        out.set(rng.bytes(20), o + 2);
        break;
      case GGMLType.IQ4_NL: // grid values up to 127
        half(o, 0.002 + 0.004 * rng.next());
        out.set(rng.bytes(16), o + 2);
        break;
      case GGMLType.Q4_K:
        half(o, 0.002 + 0.004 * rng.next());
        half(o + 2, 0.002 + 0.004 * rng.next());
        out.set(rng.bytes(12 + 128), o + 4);
        break;
      case GGMLType.Q6_K:
        out.set(rng.bytes(128 + 64 + 16), o);
        half(o + 208, 0.0005 + 0.001 * rng.next());
        break;
      case GGMLType.Q2_K:
        out.set(rng.bytes(16 + 64), o);
        half(o + 80, 0.004 + 0.008 * rng.next());
        half(o + 82, 0.002 + 0.004 * rng.next());
        break;
      case GGMLType.Q3_K:
        out.set(rng.bytes(32 + 64 + 12), o);
        half(o + 108, 0.001 + 0.002 * rng.next());
        break;
      case GGMLType.Q5_K:
        half(o, 0.001 + 0.002 * rng.next());
        half(o + 2, 0.002 + 0.004 * rng.next());
        out.set(rng.bytes(12 + 32 + 128), o + 4);
        break;
      case GGMLType.IQ4_XS:
        half(o, 0.0002 + 0.0004 * rng.next());
        out.set(rng.bytes(2 + 4 + 128), o + 2);
        break;
      default: throw new Error(`no random generator for type ${type}`);
    }
  }
  return out;
}

/** max |got - want| / max |want|: an error relative to the output's magnitude. */
export function relativeError(got: Float32Array, want: Float32Array): number {
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < want.length; i++) {
    if (!Number.isFinite(got[i]!)) return Infinity;
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
    maxRef = Math.max(maxRef, Math.abs(want[i]!));
  }
  return maxDiff / Math.max(maxRef, 1e-30);
}

/**
 * Matmul error of each output relative to the Cauchy-Schwarz bound of its dot product:
 * max over (i, r) of |got - want| / (|x_i| * |w_r|). Unlike a plain relative error this does not blow up
 * when an output happens to cancel to near zero.
 */
export function matmulError(got: Float32Array, want: Float32Array, x: Float32Array, w: Float32Array, n: number, rows: number, cols: number): number {
  const norm = (a: Float32Array, row: number) => {
    let s = 0;
    for (let c = 0; c < cols; c++) s += a[row * cols + c]! ** 2;
    return Math.sqrt(s);
  };
  const wNorms = Array.from({ length: rows }, (_, r) => norm(w, r));
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const xNorm = norm(x, i);
    for (let r = 0; r < rows; r++) {
      const diff = Math.abs(got[i * rows + r]! - want[i * rows + r]!);
      if (!Number.isFinite(diff)) return Infinity;
      worst = Math.max(worst, diff / Math.max(xNorm * wNorms[r]!, 1e-30));
    }
  }
  return worst;
}

/**
 * The rows of a batch in rounds of at most `most` tokens of each slot, in order: what one kvStore of a
 * cache with a residual window takes (forwardInSlotChunks splits the engine's batches the same way).
 */
export function slotRounds(slots: Int32Array, most: number): number[][] {
  const seen = new Map<number, number>(), rounds: number[][] = [];
  slots.forEach((slot, i) => {
    const k = seen.get(slot) ?? 0;
    seen.set(slot, k + 1);
    (rounds[Math.floor(k / most)] ??= []).push(i);
  });
  return rounds;
}

/**
 * The bound a matmul on bf16 tiles (native/isa/amx_bf16_kernels.cc) keeps: each activation and each
 * dequantized weight is rounded to bf16 (relative error <= 2^-9 each), the products are summed in f32.
 * Returns the worst |got - exact| / ((2^-8 + cols * 2^-24) * sum_k |x_ik * w_rk|) over the outputs, exact
 * in f64 from the dequantized weights `w`: at most 1 where the kernels are right, while a wrong scale,
 * offset or row is off by about the whole sum.
 */
export function bf16MatmulError(got: Float32Array, x: Float32Array, w: Float32Array, n: number, rows: number, cols: number): number {
  const relative = 2 ** -8 + cols * 2 ** -24;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < rows; r++) {
      let exact = 0, magnitude = 0;
      for (let c = 0; c < cols; c++) {
        const p = x[i * cols + c]! * w[r * cols + c]!;
        exact += p;
        magnitude += Math.abs(p);
      }
      const diff = Math.abs(got[i * rows + r]! - exact);
      if (!Number.isFinite(diff)) return Infinity;
      worst = Math.max(worst, diff / Math.max(relative * magnitude, 1e-30));
    }
  }
  return worst;
}

/**
 * Adds to `out` (the reference on rounded activations) what llama.cpp's Q4_1 / Q5_1 dots add on top of
 * it: their min multiplies Q8_1's s (the unrounded scale times the quant sum, rounded to a half) where
 * the dequantized weights give m * d * sum(q). Other types: unchanged.
 */
function addQ8_1MinRounding(out: Float32Array, type: GGMLType, x: Float32Array, n: number, rows: number, cols: number, bytes: Uint8Array): void {
  if (type !== GGMLType.Q4_1 && type !== GGMLType.Q5_1) return;
  const { q, d, s } = llamaActivations(type, x);
  const blocks = cols / 32, blockBytes = typeTraits(type)!.typeSize;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) {
    for (let b = 0; b < blocks; b++) {
      let sum = 0;
      for (let j = 0; j < 32; j++) sum += q[(i * blocks + b) * 32 + j]!;
      const shift = s![i * blocks + b]! - d[i * blocks + b]! * sum;
      for (let r = 0; r < rows; r++) out[i * rows + r] += f16ToF32(view.getUint16((r * blocks + b) * blockBytes + 2, true)) * shift;
    }
  }
}

/**
 * Checks native.matmul on every ISA against the reference for an int8-activation weight type (the
 * tolerances and their derivation are in matmul-kquant.test.ts): within QUANTIZATION_TOLERANCE of the
 * reference on the f32 activations and within ARITHMETIC_TOLERANCE of it on the activations rounded as
 * the native quantization rounds them (and, for Q4_1 / Q5_1, with the min times llama.cpp's Q8_1 s), or,
 * where the ISA multiplies n rows on bf16 tiles, within bf16MatmulError's bound.
 * Returns the worst error against the f32 activations.
 */
export const QUANTIZATION_TOLERANCE = 1e-2;
export const ARITHMETIC_TOLERANCE = 1e-5;
export function compareIntMatmul(type: GGMLType, rows: number, cols: number, n: number, x: Float32Array, bytes: Uint8Array): number {
  const label = `${typeName(type)} n=${n} rows=${rows} cols=${cols}`;
  const wr = reference.createWeight('w', type, rows, cols, bytes);
  const wn = native.createWeight('w', type, rows, cols, bytes);
  const wf = reference.toFloat32(wr);
  const want = new Float32Array(n * rows);
  reference.matmul(want, x, n, wr);
  const wantRounded = new Float32Array(n * rows);
  reference.matmul(wantRounded, llamaRoundedActivations(type, x), n, wr);
  addQ8_1MinRounding(wantRounded, type, x, n, rows, cols, bytes);
  let worst = 0;
  forEachIsa((isa) => {
    const got = new Float32Array(n * rows);
    native.matmul(got, x, n, wn);
    const err = matmulError(got, want, x, wf, n, rows, cols);
    assert.ok(err <= QUANTIZATION_TOLERANCE, `${isa} ${label}: error ${err} against f32 activations`);
    const bf16From = addon.bf16MatmulFrom();
    if (bf16From > 0 && n >= bf16From) {
      const errBf16 = bf16MatmulError(got, x, wf, n, rows, cols);
      assert.ok(errBf16 <= 1, `${isa} ${label}: error ${errBf16} of the bf16 bound`);
    } else {
      const errRounded = matmulError(got, wantRounded, x, wf, n, rows, cols);
      assert.ok(errRounded <= ARITHMETIC_TOLERANCE, `${isa} ${label}: error ${errRounded} against int8-rounded activations`);
    }
    worst = Math.max(worst, err);
  });
  return worst;
}

/** n rows of uniform activations scaled by 10^-3 .. 10^3 each, with one all-zero block of 32 (scale 0). */
export function wideRangeActivations(rng: Rng, n: number, cols: number): Float32Array {
  const x = rng.floats(n * cols);
  for (let i = 0; i < n; i++) {
    const scale = 10 ** (rng.int(7) - 3);
    for (let c = 0; c < cols; c++) x[i * cols + c] = x[i * cols + c]! * scale;
  }
  x.fill(0, 3 * cols + 64, 3 * cols + 128);
  return x;
}

/**
 * A packed type's matmuls on whole 16-row groups (rows 16, 35, 83: one group, two or five groups plus a tail;
 * n from decode through several full 4-row activation tiles and a remainder) against
 * the reference (compareIntMatmul) and against the row kernel alone: the same weight cut into 15-row
 * matrices (fewer than a group, so never packed) gives the row kernel's result for every row. The two
 * kernels add the same products in a different order, so they agree to float rounding but not bit for bit;
 * on an ISA in `packingIsas` some output must differ, or the packed kernel did not run.
 */
export function checkPackedAgainstRowKernel(type: GGMLType, colsList: readonly number[], blockValues: number, packingIsas: ReadonlySet<string>, rng: Rng): void {
  const sliceRows = 15;
  for (const cols of colsList) {
    for (const rows of [16, 35, 83]) {
      const bytes = randomWeightBytes(type, rows, cols, rng);
      const rowBytes = (cols / blockValues) * typeTraits(type)!.typeSize;
      const slices: { r0: number; count: number; w: Weight }[] = [];
      for (let r0 = 0; r0 < rows; r0 += sliceRows) {
        const count = Math.min(sliceRows, rows - r0);
        slices.push({ r0, count, w: native.createWeight('s', type, count, cols, bytes.slice(r0 * rowBytes, (r0 + count) * rowBytes)) });
      }
      const wn = native.createWeight('w', type, rows, cols, bytes);
      const wf = reference.toFloat32(reference.createWeight('w', type, rows, cols, bytes));
      for (const n of [1, 2, 3, 4, 7, 9, 16, 33]) {
        const x = rng.floats(n * cols);
        compareIntMatmul(type, rows, cols, n, x, bytes);
        forEachIsa((isa) => {
          const got = new Float32Array(n * rows);
          native.matmul(got, x, n, wn);
          const rowKernel = new Float32Array(n * rows);
          for (const s of slices) {
            const part = new Float32Array(n * s.count);
            native.matmul(part, x, n, s.w);
            for (let i = 0; i < n; i++) rowKernel.set(part.subarray(i * s.count, (i + 1) * s.count), i * rows + s.r0);
          }
          const label = `${isa} ${typeName(type)} n=${n} rows=${rows} cols=${cols}`;
          const err = matmulError(got, rowKernel, x, wf, n, rows, cols);
          assert.ok(err <= ARITHMETIC_TOLERANCE, `${label}: error ${err} against the row kernel`);
          // A decode over one block can legitimately match to the bit: both kernels then sum its lanes as
          // llama.cpp does (decode-llama-order.test.ts).
          const oneBlockDecode = n === 1 && cols === blockValues;
          if (packingIsas.has(isa) && process.env.VSERVE_NO_PACK === undefined && !oneBlockDecode) {
            assert.ok(got.some((v, i) => v !== rowKernel[i]), `${label}: bit-identical to the row kernel (packed path not taken?)`);
          }
        });
      }
    }
  }
}

// llama.cpp's quantization of matmul activations (ggml's CPU backend on x86), written out from its
// formulas as an independent truth for the native quantizers. Every step is an f32 operation there, so
// each is rounded to f32 here with Math.fround.
// - Q8_0 (weights Q8_0, Q4_0, Q5_0, IQ4_NL) and Q8_1 (Q4_1, Q5_1; the same quants and scale): per 32
//   values, amax = max |x|, q = x * (127 / amax) rounded half to even, scale amax / 127 stored as an
//   IEEE half. Q8_1 also stores s = (amax / 127) * sum(q), the f32 product of the unrounded scale and
//   the quant sum, rounded to a half (ties to even): the min of Q4_1 / Q5_1 multiplies s, not d * sum(q).
// - Q8_K (Q2_K..Q6_K, IQ4_XS): per 256 values, m = the first value of largest magnitude, iscale =
//   -127 / m, q = iscale * x rounded half to even (at most 127), scale 1 / iscale kept in f32.
import { GGMLType } from '../../src/model/gguf/types.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function roundHalfEven(v: number): number {
  const floor = Math.floor(v);
  const frac = v - floor;
  if (frac > 0.5) return floor + 1;
  if (frac < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** v (an f32) rounded to the nearest IEEE half, ties to even, as a number. */
export function roundToHalf(v: number): number {
  const a = Math.abs(v);
  if (a === 0 || Number.isNaN(a)) return v;
  if (a >= 65520) return Math.sign(v) * Infinity;
  f32[0] = a;
  // A half keeps 10 bits after its leading one; below 2^-14 its step stays 2^-24 (subnormals).
  const exponent = Math.max(((u32[0]! >>> 23) & 0xff) - 127, -14);
  const step = 2 ** (exponent - 10);
  return Math.sign(v) * roundHalfEven(a / step) * step;
}

export type ActivationFormat = 'q8_0' | 'q8_1' | 'q8_K';

/** The activation format llama.cpp's CPU matmul uses for a weight type (its vec_dot_type). */
export function activationFormat(type: GGMLType): ActivationFormat {
  switch (type) {
    case GGMLType.Q8_0:
    case GGMLType.Q4_0:
    case GGMLType.Q5_0:
    case GGMLType.IQ4_NL:
      return 'q8_0';
    case GGMLType.Q4_1:
    case GGMLType.Q5_1:
      return 'q8_1';
    case GGMLType.Q2_K:
    case GGMLType.Q3_K:
    case GGMLType.Q4_K:
    case GGMLType.Q5_K:
    case GGMLType.Q6_K:
    case GGMLType.IQ4_XS:
      return 'q8_K';
    default:
      throw new Error(`weight type ${type} has no int8 activations`);
  }
}

/**
 * Quants, a scale per 32 values (a Q8_K scale repeated 8 times), the quant sum of every 16 values, and
 * for Q8_1 its s field per 32 values.
 */
export interface QuantizedActivations {
  q: Int8Array;
  d: Float32Array;
  sums16: Int32Array;
  s?: Float32Array;
}

function quantizeQ8_0(x: Float32Array, withSums: boolean): QuantizedActivations {
  const q = new Int8Array(x.length), d = new Float32Array(x.length / 32), s = new Float32Array(x.length / 32);
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]!));
    const scale = Math.fround(amax / 127);
    d[b / 32] = roundToHalf(scale);
    const inv = amax !== 0 ? Math.fround(127 / amax) : 0;
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += q[b + j] = roundHalfEven(Math.fround(x[b + j]! * inv));
    s[b / 32] = roundToHalf(Math.fround(scale * sum));
  }
  return withSums ? { q, d, sums16: sums16(q), s } : { q, d, sums16: sums16(q) };
}

function quantizeQ8_K(x: Float32Array): QuantizedActivations {
  const q = new Int8Array(x.length), d = new Float32Array(x.length / 32);
  for (let b = 0; b < x.length; b += 256) {
    let amax = 0, m = 0;
    for (let j = 0; j < 256; j++) {
      if (Math.abs(x[b + j]!) > amax) {
        amax = Math.abs(x[b + j]!);
        m = x[b + j]!;
      }
    }
    if (amax === 0) continue;  // quants and scale stay zero
    const iscale = Math.fround(-127 / m);
    for (let j = 0; j < 256; j++) q[b + j] = Math.min(127, roundHalfEven(Math.fround(iscale * x[b + j]!)));
    d.fill(Math.fround(1 / iscale), b / 32, b / 32 + 8);
  }
  return { q, d, sums16: sums16(q) };
}

function sums16(q: Int8Array): Int32Array {
  const out = new Int32Array(q.length / 16);
  for (let i = 0; i < q.length; i++) out[i >> 4]! += q[i]!;
  return out;
}

/** The activations llama.cpp computes with for rows of x against a weight of `type`. */
export function llamaActivations(type: GGMLType, x: Float32Array): QuantizedActivations {
  const format = activationFormat(type);
  return format === 'q8_K' ? quantizeQ8_K(x) : quantizeQ8_0(x, format === 'q8_1');
}

/** x with every value replaced by its quant times its scale: what the integer dot products see. */
export function llamaRoundedActivations(type: GGMLType, x: Float32Array): Float32Array {
  const { q, d } = llamaActivations(type, x);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = q[i]! * d[i >> 5]!;
  return out;
}

// Random but numerically sane weight data, written directly as GGML blocks (no float quantization
// step, so a 1 GB file takes seconds). Quants are uniform random bits; each block's scale is a
// constant chosen so that the dequantized values have roughly the requested standard deviation.
// Symmetric formats have one more negative level than positive (Q4_0: -8..7), so their mean would be
// -half a step; every other block's scale is negated to cancel it. Without that, the common offset
// piles up in the residual stream and every logit row gets the same input, so greedy decoding repeats
// one token. Block layouts follow ggml (ggml-common.h):
//   Q8_0  { f16 d; int8 qs[32] }                          x = d*q
//   Q4_0  { f16 d; u8 qs[16] }                            x = d*(nibble-8); low nibbles hold 0..15, high 16..31
//   Q4_1  { f16 d; f16 m; u8 qs[16] }                     x = d*nibble + m, nibbles as Q4_0
//   Q5_0  { f16 d; u8 qh[4]; u8 qs[16] }                  x = d*(q-16), q = nibble | bit j of qh << 4 (element j)
//   Q5_1  { f16 d; f16 m; u8 qh[4]; u8 qs[16] }           x = d*q + m, q as Q5_0
//   IQ4_NL { f16 d; u8 qs[16] }                           x = d*grid[nibble], a fixed non-linear grid of 16 values
// Asymmetric formats (Q4_1, Q5_1) centre their values with m = -d * (mean quant) instead; IQ4_NL's grid
// mean is negative as well, so its scales alternate sign like Q4_0's.
//   Q4_K  { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] } x = d*sc*q - dmin*m, 8 sub-blocks of 32 with 6-bit sc/m
//   Q6_K  { u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d } x = d*scale*(q-32), 16 sub-blocks of 16
//   Q5_K  { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] } Q4_K with 5-bit q
//   Q3_K  { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d } x = d*(sc-32)*q, q in -4..3, 16 sub-blocks of 16
//   Q2_K  { u8 scales[16]; u8 qs[64]; f16 d; f16 dmin }   x = d*sc*q - dmin*m, q in 0..3, 16 sub-blocks of 16
//   IQ4_XS { f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128] } x = d*(ls-32)*table[nibble], 8 sub-blocks of 32
import { IQ4_NL_VALUES } from '../src/model/gguf/dequant.js';
import { GGMLType, typeName, typeTraits } from '../src/model/gguf/types.js';

/** xorshift128: fast, seedable, plenty random for weights whose values do not matter for speed. */
export class Xorshift128 {
  private x: number;
  private y = 362436069;
  private z = 521288629;
  private w = 88675123;

  constructor(seed: number) {
    this.x = seed >>> 0 || 123456789;
    for (let i = 0; i < 16; i++) this.next(); // mix the seed in
  }

  next(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.w;
  }

  fill(out: Uint32Array): void {
    let { x, y, z, w } = this;
    for (let i = 0; i < out.length; i++) {
      const t = x ^ (x << 11);
      x = y;
      y = z;
      z = w;
      w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
      out[i] = w;
    }
    Object.assign(this, { x, y, z, w });
  }
}

const f32 = new Float32Array(1);
const f32bits = new Uint32Array(f32.buffer);

/** IEEE half bits of a normal-range number (truncating; the constants here need no rounding). */
export function halfBits(v: number): number {
  f32[0] = v;
  const b = f32bits[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign; // too small for a normal half: zero
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | ((b >>> 13) & 0x3ff);
}

function putHalf(bytes: Uint8Array, at: number, half: number): void {
  bytes[at] = half & 0xff;
  bytes[at + 1] = half >>> 8;
}

/** Standard deviation of a uniform integer distribution over `levels` consecutive values. */
const uniformStd = (levels: number) => Math.sqrt((levels * levels - 1) / 12);

/**
 * Fills `bytes` (a whole number of blocks of `type`) with random weights of about `std` standard
 * deviation. `words` must view the same memory as 32-bit words (bytes.length rounded up to 4).
 */
export function fillRandomBlocks(type: GGMLType, bytes: Uint8Array, words: Uint32Array, rng: Xorshift128, std: number): void {
  const traits = typeTraits(type);
  if (!traits || bytes.length % traits.typeSize !== 0) throw new Error(`cannot fill ${bytes.length} bytes of ${typeName(type)}`);
  rng.fill(words);
  const nBlocks = bytes.length / traits.typeSize;
  switch (type) {
    case GGMLType.F32: {
      // sign and mantissa random, exponent fixed to 2^e with 2^e*1.5 ≈ std: |x| uniform in [2^e, 2^(e+1)).
      const exp = Math.round(Math.log2(std / 1.5)) + 127;
      for (let i = 0; i < words.length; i++) words[i] = (words[i]! & 0x807fffff) | (exp << 23);
      return;
    }
    case GGMLType.F16: {
      // As for F32 with a half's 5-bit exponent, for both halves of each word.
      const exp = Math.round(Math.log2(std / 1.5)) + 15;
      const fixed = ((exp << 10) << 16) | (exp << 10);
      for (let i = 0; i < words.length; i++) words[i] = (words[i]! & 0x83ff83ff) | fixed;
      return;
    }
    case GGMLType.Q8_0: {
      // Quants in [-64, 63] (7 random bits sign-extended): never -128, which some SIMD kernels treat specially.
      for (let i = 0; i < words.length; i++) {
        const w = words[i]!;
        words[i] = (w & 0x7f7f7f7f) | ((w & 0x40404040) << 1);
      }
      const d = halfBits(std / uniformStd(128));
      for (let b = 0; b < nBlocks; b++) putHalf(bytes, b * 34, b & 1 ? d ^ 0x8000 : d);
      return;
    }
    case GGMLType.Q4_0: {
      const d = halfBits(std / uniformStd(16));
      for (let b = 0; b < nBlocks; b++) putHalf(bytes, b * 18, b & 1 ? d ^ 0x8000 : d);
      return;
    }
    case GGMLType.Q4_1:
    case GGMLType.Q5_1: {
      // Uniform quants over 16 or 32 levels; m = -d * (levels - 1) / 2 puts their mean at zero.
      const levels = type === GGMLType.Q4_1 ? 16 : 32;
      const d = std / uniformStd(levels);
      const dHalf = halfBits(d), mHalf = halfBits(-d * (levels - 1) / 2);
      for (let b = 0; b < nBlocks; b++) {
        putHalf(bytes, b * traits.typeSize, dHalf);
        putHalf(bytes, b * traits.typeSize + 2, mHalf);
      }
      return;
    }
    case GGMLType.Q5_0: {
      const d = halfBits(std / uniformStd(32));
      for (let b = 0; b < nBlocks; b++) putHalf(bytes, b * 22, b & 1 ? d ^ 0x8000 : d);
      return;
    }
    case GGMLType.IQ4_NL: {
      const mean = IQ4_NL_VALUES.reduce((a, v) => a + v, 0) / 16;
      const gridStd = Math.sqrt(IQ4_NL_VALUES.reduce((a, v) => a + (v - mean) ** 2, 0) / 16);
      const d = halfBits(std / gridStd);
      for (let b = 0; b < nBlocks; b++) putHalf(bytes, b * 18, b & 1 ? d ^ 0x8000 : d);
      return;
    }
    case GGMLType.Q4_K: {
      // Every sub-block gets scale = min = 15 (so no high bits are needed): x = 15*(d*q - dmin), and
      // dmin = 7.5*d centres the nibbles on zero.
      const d = std / (15 * uniformStd(16));
      const dHalf = halfBits(d);
      const dminHalf = halfBits(7.5 * d);
      for (let b = 0; b < nBlocks; b++) {
        const at = b * 144;
        putHalf(bytes, at, dHalf);
        putHalf(bytes, at + 2, dminHalf);
        // scales[0..3] = sub-block scales 0-3, scales[4..7] = mins 0-3 (6 bits each, top 2 bits hold the
        // high bits of sub-blocks 4-7, zero here); scales[8..11] = low nibble scale / high nibble min of 4-7.
        bytes.fill(15, at + 4, at + 12);
        bytes.fill(0xff, at + 12, at + 16);
      }
      return;
    }
    case GGMLType.Q6_K: {
      const scale = 16;
      const d = halfBits(std / (scale * uniformStd(64)));
      for (let b = 0; b < nBlocks; b++) {
        const at = b * 210;
        for (let i = 0; i < 16; i++) bytes[at + 192 + i] = i & 1 ? 256 - scale : scale; // int8 ±scale
        putHalf(bytes, at + 208, d);
      }
      return;
    }
    case GGMLType.Q5_K: {
      // As Q4_K: scale = min = 15 everywhere, and dmin = 15.5*d centres the 5-bit quants (qh random too).
      const d = std / (15 * uniformStd(32));
      const dHalf = halfBits(d);
      const dminHalf = halfBits(15.5 * d);
      for (let b = 0; b < nBlocks; b++) {
        const at = b * 176;
        putHalf(bytes, at, dHalf);
        putHalf(bytes, at + 2, dminHalf);
        bytes.fill(15, at + 4, at + 12);
        bytes.fill(0xff, at + 12, at + 16);
      }
      return;
    }
    case GGMLType.Q3_K: {
      // Quants -4..3 (mean -1/2): sub-block scales alternate +16 / -16 (stored 48 / 16: low nibbles 0, top
      // bits 3 / 1; sub-block g's top bits sit in byte 8 + g % 4, so even bytes hold even sub-blocks).
      const d = halfBits(std / (16 * uniformStd(8)));
      for (let b = 0; b < nBlocks; b++) {
        const at = b * 110;
        bytes.fill(0, at + 96, at + 104);
        bytes[at + 104] = bytes[at + 106] = 0xff;
        bytes[at + 105] = bytes[at + 107] = 0x55;
        putHalf(bytes, at + 108, d);
      }
      return;
    }
    case GGMLType.Q2_K: {
      // Scale = min = 15 in every sub-block; dmin = 1.5*d centres the 2-bit quants.
      const d = std / (15 * uniformStd(4));
      const dHalf = halfBits(d);
      const dminHalf = halfBits(1.5 * d);
      for (let b = 0; b < nBlocks; b++) {
        const at = b * 84;
        bytes.fill(0xff, at, at + 16);
        putHalf(bytes, at + 80, dHalf);
        putHalf(bytes, at + 82, dminHalf);
      }
      return;
    }
    case GGMLType.IQ4_XS: {
      // The table's values have a mean of -94/16: sub-block scales alternate +1 / -1 (ls = 33 / 31: low
      // nibbles 1 / 15, high bit pairs 2 / 1). Scale 1 keeps d (std / the table's spread) a normal half.
      const mean = IQ4_NL_VALUES.reduce((a, v) => a + v, 0) / 16;
      const tableStd = Math.sqrt(IQ4_NL_VALUES.reduce((a, v) => a + (v - mean) ** 2, 0) / 16);
      const d = halfBits(std / tableStd);
      for (let b = 0; b < nBlocks; b++) {
        const at = b * 136;
        putHalf(bytes, at, d);
        putHalf(bytes, at + 2, 0x6666);
        bytes.fill(0xf1, at + 4, at + 8);
      }
      return;
    }
    default:
      throw new Error(`random ${typeName(type)} blocks are not implemented`);
  }
}

/** Norm weights: 1 ± 5%, f32 (llama.cpp's converter keeps norms in f32). */
export function normWeights(n: number, rng: Xorshift128): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 1 + ((rng.next() / 0x100000000) - 0.5) * 0.1;
  return out;
}

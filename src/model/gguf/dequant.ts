// Dequantization of GGML tensor data to f32, written for clarity: this is the reference that the
// native kernels are tested against. Block layouts follow ggml's definitions (block sizes in types.ts).
import { GGMLType, typeName, typeTraits } from './types.js';

const F16_TABLE = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24; // subnormal
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return table;
})();

/** The types dequantize() reads (the reference backend runs exactly these). */
export const DEQUANTIZABLE_TYPES: ReadonlySet<GGMLType> = new Set([
  GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1,
  GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.IQ4_XS, GGMLType.IQ4_NL,
]);

/** The non-linear grid IQ4_NL and IQ4_XS nibbles index: x = d * IQ4_NL_VALUES[nibble] (ggml's kvalues_iq4nl). */
export const IQ4_NL_VALUES: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

export function f16ToF32(h: number): number {
  return F16_TABLE[h & 0xffff]!;
}

const bf16Scratch = new DataView(new ArrayBuffer(4));
export function bf16ToF32(h: number): number {
  bf16Scratch.setUint32(0, (h & 0xffff) << 16);
  return bf16Scratch.getFloat32(0);
}

/** Dequantizes `count` elements of `type` from `src` (which starts at a block boundary). */
export function dequantize(type: GGMLType, src: Uint8Array, count: number, out = new Float32Array(count)): Float32Array {
  const traits = typeTraits(type);
  if (!traits) throw new Error(`cannot dequantize unknown type ${type}`);
  if (count % traits.blockSize !== 0) throw new Error(`${traits.name}: ${count} elements is not a whole number of blocks`);
  const nBlocks = count / traits.blockSize;
  if (src.length < nBlocks * traits.typeSize) throw new Error(`${traits.name}: ${src.length} bytes is too short for ${count} elements`);
  if (out.length < count) throw new Error(`output holds ${out.length} elements, need ${count}`);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const f16 = (o: number) => F16_TABLE[dv.getUint16(o, true)]!;
  const bs = traits.typeSize;
  switch (type) {
    case GGMLType.F32:
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    case GGMLType.F16:
      for (let i = 0; i < count; i++) out[i] = f16(i * 2);
      return out;
    case GGMLType.BF16:
      for (let i = 0; i < count; i++) out[i] = bf16ToF32(dv.getUint16(i * 2, true));
      return out;
    case GGMLType.Q8_0:
      for (let b = 0; b < nBlocks; b++) {
        const o = b * bs, d = f16(o);
        for (let j = 0; j < 32; j++) out[b * 32 + j] = d * dv.getInt8(o + 2 + j);
      }
      return out;
    case GGMLType.Q4_0:
    case GGMLType.Q4_1: {
      const hasMin = type === GGMLType.Q4_1;
      for (let b = 0; b < nBlocks; b++) {
        const o = b * bs, d = f16(o), m = hasMin ? f16(o + 2) : 0;
        const qs = o + (hasMin ? 4 : 2);
        for (let j = 0; j < 16; j++) {
          const q = src[qs + j]!;
          out[b * 32 + j] = hasMin ? (q & 0xf) * d + m : ((q & 0xf) - 8) * d;
          out[b * 32 + j + 16] = hasMin ? (q >> 4) * d + m : ((q >> 4) - 8) * d;
        }
      }
      return out;
    }
    case GGMLType.IQ4_NL:
      for (let b = 0; b < nBlocks; b++) {
        const o = b * bs, d = f16(o);
        for (let j = 0; j < 16; j++) {
          const q = src[o + 2 + j]!;
          out[b * 32 + j] = d * IQ4_NL_VALUES[q & 0xf]!;
          out[b * 32 + j + 16] = d * IQ4_NL_VALUES[q >> 4]!;
        }
      }
      return out;
    case GGMLType.Q5_0:
    case GGMLType.Q5_1: {
      const hasMin = type === GGMLType.Q5_1;
      for (let b = 0; b < nBlocks; b++) {
        const o = b * bs, d = f16(o), m = hasMin ? f16(o + 2) : 0;
        const qhAt = o + (hasMin ? 4 : 2);
        const qh = dv.getUint32(qhAt, true);
        const qs = qhAt + 4;
        for (let j = 0; j < 16; j++) {
          const hi0 = ((qh >>> j) << 4) & 0x10;
          const hi1 = (qh >>> (j + 12)) & 0x10;
          const q0 = (src[qs + j]! & 0xf) | hi0;
          const q1 = (src[qs + j]! >> 4) | hi1;
          out[b * 32 + j] = hasMin ? q0 * d + m : (q0 - 16) * d;
          out[b * 32 + j + 16] = hasMin ? q1 * d + m : (q1 - 16) * d;
        }
      }
      return out;
    }
    case GGMLType.Q4_K:
    case GGMLType.Q5_K: {
      const is5 = type === GGMLType.Q5_K;
      for (let b = 0; b < nBlocks; b++) {
        const o = b * bs, d = f16(o), dmin = f16(o + 2);
        const scales = o + 4;
        const qh = is5 ? o + 16 : -1;
        let qs = is5 ? o + 48 : o + 16;
        let y = b * 256;
        for (let j = 0, is = 0; j < 256; j += 64, is += 2) {
          const [sc1, m1] = scaleMinK4(src, scales, is);
          const [sc2, m2] = scaleMinK4(src, scales, is + 1);
          const u1 = 1 << is, u2 = 2 << is;
          for (let l = 0; l < 32; l++) {
            const hi = is5 && src[qh + l]! & u1 ? 16 : 0;
            out[y + l] = d * sc1 * ((src[qs + l]! & 0xf) + hi) - dmin * m1;
          }
          for (let l = 0; l < 32; l++) {
            const hi = is5 && src[qh + l]! & u2 ? 16 : 0;
            out[y + 32 + l] = d * sc2 * ((src[qs + l]! >> 4) + hi) - dmin * m2;
          }
          qs += 32;
          y += 64;
        }
      }
      return out;
    }
    case GGMLType.Q6_K:
      for (let b = 0; b < nBlocks; b++) {
        const o = b * bs;
        const d = f16(o + 128 + 64 + 16);
        let ql = o, qh = o + 128, sc = o + 192, y = b * 256;
        for (let half = 0; half < 2; half++) {
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const q1 = ((src[ql + l]! & 0xf) | (((src[qh + l]! >> 0) & 3) << 4)) - 32;
            const q2 = ((src[ql + l + 32]! & 0xf) | (((src[qh + l]! >> 2) & 3) << 4)) - 32;
            const q3 = ((src[ql + l]! >> 4) | (((src[qh + l]! >> 4) & 3) << 4)) - 32;
            const q4 = ((src[ql + l + 32]! >> 4) | (((src[qh + l]! >> 6) & 3) << 4)) - 32;
            out[y + l] = d * dv.getInt8(sc + is) * q1;
            out[y + l + 32] = d * dv.getInt8(sc + is + 2) * q2;
            out[y + l + 64] = d * dv.getInt8(sc + is + 4) * q3;
            out[y + l + 96] = d * dv.getInt8(sc + is + 6) * q4;
          }
          y += 128; ql += 64; qh += 32; sc += 8;
        }
      }
      return out;
    case GGMLType.Q2_K:
      // { u8 scales[16]; u8 qs[64]; f16 d; f16 dmin }: 16 sub-blocks of 16, scale in the low nibble and
      // min in the high nibble of scales[j]; 2-bit quants, four values per byte.
      for (let b = 0; b < nBlocks; b++) {
        const o = b * bs, d = f16(o + 80), dmin = f16(o + 82);
        for (let half = 0; half < 2; half++) {
          for (let shift = 0; shift < 4; shift++) {
            for (let l = 0; l < 32; l++) {
              const sc = src[o + 8 * half + 2 * shift + (l >> 4)]!;
              const q = (src[o + 16 + 32 * half + l]! >> (2 * shift)) & 3;
              out[b * 256 + 128 * half + 32 * shift + l] = d * (sc & 0xf) * q - dmin * (sc >> 4);
            }
          }
        }
      }
      return out;
    case GGMLType.Q3_K:
      // { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d }: 16 sub-blocks of 16 with 6-bit scales (minus 32);
      // a value is its 2 low bits minus 4 unless its hmask bit is set.
      for (let b = 0; b < nBlocks; b++) {
        const o = b * bs, d = f16(o + 108);
        for (let half = 0; half < 2; half++) {
          for (let shift = 0; shift < 4; shift++) {
            for (let l = 0; l < 32; l++) {
              const sc = q3kScale(src, o + 96, 8 * half + 2 * shift + (l >> 4)) - 32;
              const low = (src[o + 32 + 32 * half + l]! >> (2 * shift)) & 3;
              const high = src[o + l]! & (1 << (4 * half + shift)) ? 0 : 4;
              out[b * 256 + 128 * half + 32 * shift + l] = d * sc * (low - high);
            }
          }
        }
      }
      return out;
    case GGMLType.IQ4_XS:
      // { f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128] }: 8 sub-blocks of 32 with 6-bit scales (minus 32),
      // 16 bytes of nibbles each (low nibbles: values 0-15, high: 16-31) indexing the IQ4_NL table.
      for (let b = 0; b < nBlocks; b++) {
        const o = b * bs, d = f16(o), scalesHigh = dv.getUint16(o + 2, true);
        for (let j = 0; j < 8; j++) {
          const ls = ((src[o + 4 + (j >> 1)]! >> (4 * (j & 1))) & 0xf) | (((scalesHigh >> (2 * j)) & 3) << 4);
          const dl = d * (ls - 32);
          for (let l = 0; l < 16; l++) {
            const q = src[o + 8 + 16 * j + l]!;
            out[b * 256 + 32 * j + l] = dl * IQ4_NL_VALUES[q & 0xf]!;
            out[b * 256 + 32 * j + 16 + l] = dl * IQ4_NL_VALUES[q >> 4]!;
          }
        }
      }
      return out;
    default:
      throw new Error(`dequantization of ${typeName(type)} is not supported`);
  }
}

/** The 6-bit scale and min of sub-block j from the 12-byte packed scales of a Q4_K/Q5_K block. */
function scaleMinK4(src: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [src[at + j]! & 63, src[at + j + 4]! & 63];
  const sc = (src[at + j + 4]! & 0xf) | ((src[at + j - 4]! >> 6) << 4);
  const m = (src[at + j + 4]! >> 4) | ((src[at + j]! >> 6) << 4);
  return [sc, m];
}

/** The 6-bit scale of sub-block j (0-15) from the 12 packed scale bytes of a Q3_K block: low nibbles in
 * bytes 0-7 (j < 8) or their high nibbles (j >= 8), top two bits in byte 8 + j % 4 at bit 2 * (j / 4). */
function q3kScale(src: Uint8Array, at: number, j: number): number {
  const low = j < 8 ? src[at + j]! & 0xf : src[at + j - 8]! >> 4;
  const high = (src[at + 8 + (j & 3)]! >> (2 * (j >> 2))) & 3;
  return low | (high << 4);
}


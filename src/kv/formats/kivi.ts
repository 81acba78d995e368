// KIVI's asymmetric low-bit formats (Liu et al., 2024): a group of 32 values is stored as an f16 minimum m,
// an f16 step s = (max - m) / (2^bits - 1) and unsigned codes q = round((x - m) / s), clamped to
// 0 .. 2^bits - 1; a value is m + q * s. Codes are packed little end first: at 2 bits, value i is bits
// 2(i % 4) of byte i / 4; at 4 bits, the low nibble of byte i / 2 for even i.
//
// - per token (`kivi2t`, `kivi4t`, KIVI's values): each row alone, in blocks of 32 channels, each block
//   [f16 step][f16 min][codes].
// - per channel (`kivi2c`, `kivi4c`, KIVI's keys): a group of 32 consecutive rows shares, per channel, a
//   step and minimum over the group's 32 values of that channel. A row is [codes of its C channels]
//   [a C/8-byte slice of the group's table of C (f16 step, f16 min) pairs]: row j of the group holds the
//   pairs of channels j*C/32 .. (j+1)*C/32 - 1. Both layouts take (4 * bits + 4) bytes per 32 values.
//
// The arithmetic is f32 step by step (Math.fround), as native/kv_format.cc does it.
import type { KVFormat, KVFormatName } from '../format.js';
import { f16ToF32, f32ToF16 } from './half.js';

const BLOCK = 32;
const GROUP = 32;
const fround = Math.fround;

function roundAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

function setHalf(dst: Uint8Array, at: number, h: number): void {
  dst[at] = h & 0xff;
  dst[at + 1] = h >>> 8;
}

function getHalf(src: Uint8Array, at: number): number {
  return f16ToF32(src[at]! | (src[at + 1]! << 8));
}

/** The f16 step and minimum of values at x[at + i * stride], i < 32 (as stored, decoded back to f32). */
function stepAndMin(x: Float32Array, at: number, stride: number, levels: number): { step: number; min: number; stepBits: number; minBits: number } {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < 32; i++) {
    const v = x[at + i * stride]!;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const minBits = f32ToF16(lo);
  const min = f16ToF32(minBits);
  const stepBits = f32ToF16(fround(fround(hi - min) / levels));
  return { step: f16ToF32(stepBits), min, stepBits, minBits };
}

function code(v: number, min: number, inv: number, levels: number): number {
  return Math.min(levels, Math.max(0, roundAway(fround(fround(v - min) * inv))));
}

function putCode(dst: Uint8Array, at: number, i: number, bits: number, q: number): void {
  const perByte = 8 / bits;
  const byte = at + Math.floor(i / perByte);
  dst[byte] = dst[byte]! | (q << ((i % perByte) * bits));
}

function getCode(src: Uint8Array, at: number, i: number, bits: number): number {
  const perByte = 8 / bits;
  return (src[at + Math.floor(i / perByte)]! >>> ((i % perByte) * bits)) & ((1 << bits) - 1);
}

export function kiviTokenFormat(name: KVFormatName, id: number, bits: number): KVFormat {
  const levels = (1 << bits) - 1;
  const blockBytes = 4 + (BLOCK * bits) / 8;
  return {
    name, id, blockValues: BLOCK, blockBytes, groupTokens: 1,
    encode(src, srcAt, n, dst, dstAt) {
      for (let b = 0; b < n / BLOCK; b++) {
        const x = srcAt + b * BLOCK, o = dstAt + b * blockBytes;
        const { step, min, stepBits, minBits } = stepAndMin(src, x, 1, levels);
        const inv = step !== 0 ? fround(1 / step) : 0;
        setHalf(dst, o, stepBits);
        setHalf(dst, o + 2, minBits);
        dst.fill(0, o + 4, o + blockBytes);
        for (let i = 0; i < BLOCK; i++) putCode(dst, o + 4, i, bits, code(src[x + i]!, min, inv, levels));
      }
    },
    decode(src, rowAt, first, n, out, outAt) {
      for (let i = 0; i < n; i++) {
        const v = first + i;
        const o = rowAt + Math.floor(v / BLOCK) * blockBytes;
        out[outAt + i] = fround(getHalf(src, o + 2) + fround(getCode(src, o + 4, v % BLOCK, bits) * getHalf(src, o)));
      }
    },
  };
}

export function kiviChannelFormat(name: KVFormatName, id: number, bits: number): KVFormat {
  const levels = (1 << bits) - 1;
  return {
    name, id, blockValues: BLOCK, blockBytes: 4 + (BLOCK * bits) / 8, groupTokens: GROUP,
    encode(src, srcAt, n, dst, dstAt, rowStride) {
      const codeBytes = (n * bits) / 8, slice = n / 8;
      for (let j = 0; j < GROUP; j++) dst.fill(0, dstAt + j * rowStride, dstAt + j * rowStride + codeBytes);
      for (let c = 0; c < n; c++) {
        const { step, min, stepBits, minBits } = stepAndMin(src, srcAt + c, n, levels);
        const inv = step !== 0 ? fround(1 / step) : 0;
        const table = dstAt + Math.floor((4 * c) / slice) * rowStride + codeBytes + ((4 * c) % slice);
        setHalf(dst, table, stepBits);
        setHalf(dst, table + 2, minBits);
        for (let j = 0; j < GROUP; j++) putCode(dst, dstAt + j * rowStride, c, bits, code(src[srcAt + j * n + c]!, min, inv, levels));
      }
    },
    decode(src, rowAt, first, n, out, outAt, rowValues, indexInGroup, rowStride) {
      const codeBytes = (rowValues * bits) / 8, slice = rowValues / 8;
      const group = rowAt - indexInGroup * rowStride;
      for (let i = 0; i < n; i++) {
        const c = first + i;
        const table = group + Math.floor((4 * c) / slice) * rowStride + codeBytes + ((4 * c) % slice);
        out[outAt + i] = fround(getHalf(src, table + 2) + fround(getCode(src, rowAt, c, bits) * getHalf(src, table)));
      }
    },
  };
}

// q8_0 as ggml defines it: blocks of 32 values, an f16 scale d = max|x| / 127 then 32 int8 q = round(x / d);
// a value is d * q. The arithmetic is f32 step by step (Math.fround) so native stores the same bits.
import type { KVFormat } from '../format.js';
import { f16ToF32, f32ToF16 } from './half.js';

const BLOCK = 32;
const BYTES = 34;
const fround = Math.fround;

/** C's roundf: halves away from zero (Math.round sends -2.5 to -2). */
function roundAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

export const q8_0Format: KVFormat = {
  name: 'q8_0',
  id: 2,
  blockValues: BLOCK,
  blockBytes: BYTES,
  groupTokens: 1,
  encode(src, srcAt, n, dst, dstAt) {
    for (let b = 0; b < n / BLOCK; b++) {
      const x = srcAt + b * BLOCK, o = dstAt + b * BYTES;
      let amax = 0;
      for (let i = 0; i < BLOCK; i++) amax = Math.max(amax, Math.abs(src[x + i]!));
      const d = fround(amax / 127);
      const id = d !== 0 ? fround(1 / d) : 0;
      const h = f32ToF16(d);
      dst[o] = h & 0xff;
      dst[o + 1] = h >>> 8;
      for (let i = 0; i < BLOCK; i++) dst[o + 2 + i] = roundAway(fround(src[x + i]! * id)) & 0xff;
    }
  },
  decode(src, rowAt, first, n, out, outAt) {
    for (let i = 0; i < n; i++) {
      const v = first + i;
      const o = rowAt + Math.floor(v / BLOCK) * BYTES;
      const d = f16ToF32(src[o]! | (src[o + 1]! << 8));
      const q = (src[o + 2 + (v % BLOCK)]! << 24) >> 24;
      out[outAt + i] = fround(d * q);
    }
  },
};

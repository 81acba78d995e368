// q4_0 as ggml defines it: blocks of 32 values, an f16 scale d = m / -8 where m is the value of largest
// magnitude, then 16 bytes of 4-bit q = min(15, trunc(x / d + 8.5)); value j < 16 is the low nibble of byte j,
// value j + 16 the high nibble; a value is d * (q - 8). Step-by-step f32 arithmetic, as native does it.
import type { KVFormat } from '../format.js';
import { f16ToF32, f32ToF16 } from './half.js';

const BLOCK = 32;
const BYTES = 18;
const fround = Math.fround;

function nibble(x: number, id: number): number {
  return Math.min(15, Math.trunc(fround(fround(x * id) + 8.5)));
}

export const q4_0Format: KVFormat = {
  name: 'q4_0',
  id: 3,
  blockValues: BLOCK,
  blockBytes: BYTES,
  groupTokens: 1,
  encode(src, srcAt, n, dst, dstAt) {
    for (let b = 0; b < n / BLOCK; b++) {
      const x = srcAt + b * BLOCK, o = dstAt + b * BYTES;
      let amax = 0, max = 0;
      for (let i = 0; i < BLOCK; i++) {
        const v = src[x + i]!;
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          max = v;
        }
      }
      const d = fround(max / -8);
      const id = d !== 0 ? fround(1 / d) : 0;
      const h = f32ToF16(d);
      dst[o] = h & 0xff;
      dst[o + 1] = h >>> 8;
      for (let j = 0; j < BLOCK / 2; j++) dst[o + 2 + j] = nibble(src[x + j]!, id) | (nibble(src[x + j + 16]!, id) << 4);
    }
  },
  decode(src, rowAt, first, n, out, outAt) {
    for (let i = 0; i < n; i++) {
      const v = first + i;
      const o = rowAt + Math.floor(v / BLOCK) * BYTES;
      const d = f16ToF32(src[o]! | (src[o + 1]! << 8));
      const j = v % BLOCK;
      const byte = src[o + 2 + (j % 16)]!;
      const q = (j < 16 ? byte & 0x0f : byte >>> 4) - 8;
      out[outAt + i] = fround(d * q);
    }
  },
};

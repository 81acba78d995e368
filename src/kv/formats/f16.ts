// f16: IEEE half precision, 2 bytes a value (llama.cpp's default KV type), rounded to nearest even.
import type { KVFormat } from '../format.js';
import { f16ToF32, f32ToF16 } from './half.js';

export const f16Format: KVFormat = {
  name: 'f16',
  id: 1,
  blockValues: 1,
  blockBytes: 2,
  groupTokens: 1,
  encode(src, srcAt, n, dst, dstAt) {
    for (let i = 0; i < n; i++) {
      const h = f32ToF16(src[srcAt + i]!);
      dst[dstAt + 2 * i] = h & 0xff;
      dst[dstAt + 2 * i + 1] = h >>> 8;
    }
  },
  decode(src, rowAt, first, n, out, outAt) {
    const at = rowAt + 2 * first;
    for (let i = 0; i < n; i++) out[outAt + i] = f16ToF32(src[at + 2 * i]! | (src[at + 2 * i + 1]! << 8));
  },
};

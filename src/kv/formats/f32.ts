// f32: the exact format, 4 bytes a value (little-endian, as the native side reads it).
import type { KVFormat } from '../format.js';

export const f32Format: KVFormat = {
  name: 'f32',
  id: 0,
  blockValues: 1,
  blockBytes: 4,
  groupTokens: 1,
  encode(src, srcAt, n, dst, dstAt) {
    const view = new DataView(dst.buffer, dst.byteOffset + dstAt, n * 4);
    for (let i = 0; i < n; i++) view.setFloat32(i * 4, src[srcAt + i]!, true);
  },
  decode(src, rowAt, first, n, out, outAt) {
    const view = new DataView(src.buffer, src.byteOffset + rowAt + first * 4, n * 4);
    for (let i = 0; i < n; i++) out[outAt + i] = view.getFloat32(i * 4, true);
  },
};

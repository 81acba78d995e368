// Round-to-nearest quantization of f32 values to Q4_1, Q5_0, Q5_1 and IQ4_NL blocks (ggml-common.h
// layouts), for tests that need real weights in these types; not tuned for quality.
import { f16ToF32, IQ4_NL_VALUES } from '../../src/model/gguf/dequant.js';
import { GGMLType, typeName, typeTraits } from '../../src/model/gguf/types.js';
import { halfBits } from './helpers.js';

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** The bytes of `x` (a whole number of 32-value blocks) quantized to `type`. */
export function quantizeBlock32(type: GGMLType, x: Float32Array): Uint8Array {
  const t = typeTraits(type)!;
  if (t.blockSize !== 32 || x.length % 32 !== 0) throw new Error(`cannot quantize ${x.length} values to ${typeName(type)}`);
  const out = new Uint8Array((x.length / 32) * t.typeSize);
  const view = new DataView(out.buffer);
  for (let b = 0; b < x.length / 32; b++) {
    const v = x.subarray(b * 32, b * 32 + 32);
    const o = b * t.typeSize;
    const q = new Uint8Array(32); // stored quant of each element: 0..15 or 0..31
    // The stored half, and the value it holds, which the quants are rounded against.
    const putHalf = (at: number, value: number) => {
      const h = halfBits(value);
      view.setUint16(o + at, h, true);
      return f16ToF32(h);
    };
    if (type === GGMLType.Q4_1 || type === GGMLType.Q5_1) {
      const levels = type === GGMLType.Q4_1 ? 15 : 31;
      const lo = Math.min(...v), hi = Math.max(...v);
      const d = putHalf(0, (hi - lo) / levels);
      const m = putHalf(2, lo);
      for (let j = 0; j < 32; j++) q[j] = d > 0 ? clamp(Math.round((v[j]! - m) / d), 0, levels) : 0;
    } else {
      // The largest magnitude with its sign maps to the most negative level (-16, or the grid's -127).
      let big = 0;
      for (const e of v) if (Math.abs(e) > Math.abs(big)) big = e;
      if (type === GGMLType.Q5_0) {
        const d = putHalf(0, big / -16);
        for (let j = 0; j < 32; j++) q[j] = d !== 0 ? clamp(Math.round(v[j]! / d) + 16, 0, 31) : 16;
      } else {
        const d = putHalf(0, big / -127);
        for (let j = 0; j < 32; j++) {
          let best = 0;
          for (let k = 1; k < 16; k++) {
            if (Math.abs(d * IQ4_NL_VALUES[k]! - v[j]!) < Math.abs(d * IQ4_NL_VALUES[best]! - v[j]!)) best = k;
          }
          q[j] = best;
        }
      }
    }
    const five = type === GGMLType.Q5_0 || type === GGMLType.Q5_1;
    const qs = o + t.typeSize - 16;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      out[qs + j] = (q[j]! & 0xf) | ((q[j + 16]! & 0xf) << 4);
      qh |= ((q[j]! >> 4) & 1) << j;
      qh |= ((q[j + 16]! >> 4) & 1) << (j + 16);
    }
    if (five) view.setUint32(qs - 4, qh >>> 0, true);
  }
  return out;
}

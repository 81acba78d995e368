// IEEE half-precision conversion for the f16 KV format and the f16 block scales of q8_0/q4_0: round to
// nearest even, as F16C's vcvtps2ph and ARM's fcvt do, so the reference and native caches hold the same bits.
import { f16ToF32 } from '../../model/gguf/dequant.js';

export { f16ToF32 };

const bits = new DataView(new ArrayBuffer(4));

/** The f16 bit pattern nearest to x (ties to even); overflow gives ±Inf, NaN stays NaN. */
export function f32ToF16(x: number): number {
  bits.setFloat32(0, x);
  const f = bits.getUint32(0);
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  const mant = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  // Unbiased exponent rebased to f16's bias of 15.
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero) in f16: shift the mantissa with its implicit bit into place, rounding to even.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // Rounding up may carry into the exponent, which is still the right answer (up to Inf).
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

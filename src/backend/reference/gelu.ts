// GELU as llama.cpp's CPU backend evaluates it (native/gelu.h says why): the tanh approximation in f32 at
// the input rounded to f16, the result rounded to f16; at or below -10 it is 0, at or above 10 the input.
import { f16ToF32, f32ToF16 } from '../../kv/formats/half.js';

const f32 = Math.fround;
const COEF_A = f32(0.044715);
const SQRT_2_OVER_PI = f32(Math.sqrt(2 / Math.PI));

/** The tanh approximation with every operation rounded to f32, in the order llama.cpp's formula gives. */
function geluTanhF32(x: number): number {
  const inner = f32(f32(SQRT_2_OVER_PI * x) * f32(1 + f32(f32(COEF_A * x) * x)));
  return f32(f32(0.5 * x) * f32(1 + f32(Math.tanh(inner))));
}

let table: Float32Array | undefined;

/** GELU of every f16 input (indexed by its bits), as the f16 value it rounds to. */
function halfTable(): Float32Array {
  if (!table) {
    table = new Float32Array(1 << 16);
    for (let h = 0; h < table.length; h++) table[h] = f16ToF32(f32ToF16(geluTanhF32(f16ToF32(h))));
  }
  return table;
}

export function geluLikeLlamaCpp(x: number): number {
  if (x <= -10) return 0;
  if (x >= 10) return x;
  return halfTable()[f32ToF16(x)]!;
}

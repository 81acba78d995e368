// llama.cpp's f32 arithmetic written out in TypeScript, one rounding at a time, as its CPU build (x86,
// AVX-512, no AMX) performs it: the expected values of the tests that require vserve's kernels to give
// its results to the bit. Each function names the ggml routine it follows.

const f32 = Math.fround;
const bits = new Float32Array(1);
const bitsInt = new Int32Array(bits.buffer);

/** The f32 next to x (x finite, not zero) away from or toward zero. */
function nextF32(x: number, awayFromZero: boolean): number {
  bits[0] = x;
  bitsInt[0]! += awayFromZero ? 1 : -1;
  return bits[0]!;
}

/**
 * a * b + c rounded once to f32, for f32 a, b and c: a * b is exact in f64 (24 + 24 bits). f64 holds the
 * sum rounded; it is off the f32 result only when it lands exactly halfway between two f32 values, and
 * then the rounding error of the f64 sum says which side is right.
 */
export function fusedF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const pb = s - c, cb = s - pb;
  const err = (p - pb) + (c - cb);
  const r = f32(s);
  if (r === s || err === 0 || r === 0) return r;
  const other = nextF32(r, Math.abs(s) > Math.abs(r));
  if (s !== (r + other) / 2) return r;
  // Exactly halfway in f64: the exact sum lies on err's side of it.
  const up = err > 0;
  return up === (other > r) ? other : r;
}

/** The sum of 16 f32 lanes by halves (lane l + lane l + 8, then + 4, + 2, + 1): _mm512_reduce_add_ps. */
export function sumHalving(lanes: ArrayLike<number>): number {
  let v = Array.from(lanes);
  while (v.length > 1) {
    const half = v.length / 2;
    v = v.slice(0, half).map((x, l) => f32(x + v[l + half]!));
  }
  return v[0]!;
}

/** ggml_vec_dot_f32 on AVX-512 for n a multiple of 64: four 16-lane fused sums, (v0 + v2) + (v1 + v3). */
export function dotF32(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  const v = [0, 1, 2, 3].map(() => new Array<number>(16).fill(0));
  for (let i = 0; i < n; i += 64) {
    for (let j = 0; j < 4; j++) for (let l = 0; l < 16; l++) v[j]![l] = fusedF32(a[i + 16 * j + l]!, b[i + 16 * j + l]!, v[j]![l]!);
  }
  return sumHalving(v[0]!.map((x, l) => f32(f32(x + v[2]![l]!) + f32(v[1]![l]! + v[3]![l]!))));
}

// The constants of ggml_v_expf (from Arm's optimized routines), as f32.
const EXP = {
  shift: 12582912, // 1.5 * 2^23
  log2e: 1.4426950216293335, // 0x1.715476p+0
  ln2High: 0.693145751953125, // 0x1.62e4p-1
  ln2Low: 1.428606765330187e-6, // 0x1.7f7d1cp-20
  // The polynomial's coefficients of b^1 .. b^5 (0x1.ffffecp-1, 0x1.fffdb6p-2, 0x1.555e66p-3, 0x1.573e2ep-5, 0x1.0e4020p-7).
  c: [0.9999994039535522, 0.4999912679195404, 0.16668395698070526, 0.04189976677298546, 0.008247390389442444],
};

/** ggml_v_expf, AVX-512 form: 2^n by scalef, 0 or infinity where |n| > 192. */
export function expAsLlamaCpp(x: number): number {
  const n = f32(fusedF32(x, EXP.log2e, EXP.shift) - EXP.shift);
  const b = fusedF32(-n, EXP.ln2Low, fusedF32(-n, EXP.ln2High, x));
  const u = f32(b * b);
  const [c1, c2, c3, c4, c5] = EXP.c as [number, number, number, number, number];
  const j = fusedF32(fusedF32(fusedF32(c5, b, c4), u, fusedF32(c3, b, c2)), u, fusedF32(c1, b, 1));
  if (Math.abs(n) > 192) return n <= 0 ? 0 : Infinity;
  return f32(j * 2 ** n);
}

/** ggml_vec_swiglu_f32 on AVX-512 (16 at a time; the tail would take libm's expf). */
export function swiglu(gate: number, up: number): number {
  return f32(f32(gate / f32(1 + expAsLlamaCpp(f32(0 - gate)))) * up);
}

/** ggml_compute_forward_rms_norm_f32 then the weight multiply: one row. */
export function rmsnorm(x: ArrayLike<number>, weight: ArrayLike<number>, eps: number): Float32Array {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += f32(x[i]! * x[i]!);
  const mean = f32(sum / x.length);
  const scale = f32(1 / f32(Math.sqrt(f32(mean + f32(eps)))));
  return Float32Array.from(x, (v, i) => f32(v * scale) * weight[i]!);
}

/**
 * One head of llama.cpp's attention without flash attention, f32 K and V, for a query attending the
 * cache's positions first .. first + keys.length - 1: kq by dotF32, scaled; softmax over the row (exp of
 * 16 cells at a time, each 16 added by halves into an f64 sum; the weights times its f32 reciprocal);
 * then each output value as dotF32 of the value column with the weights over the cache's cells (cell p
 * at lane p mod 64, the cells outside the range weighing 0).
 */
export function attentionHead(q: ArrayLike<number>, keys: ArrayLike<number>[], values: ArrayLike<number>[], first: number, scale: number): Float32Array {
  const d = q.length, count = keys.length, cells = Math.ceil((first + count) / 64) * 64;
  const s = new Array<number>(cells).fill(-Infinity);
  for (let i = 0; i < count; i++) s[first + i] = f32(dotF32(q, keys[i]!, d) * scale);
  const max = Math.max(...s);
  const e = s.map((x) => (x === -Infinity ? 0 : expAsLlamaCpp(f32(x - max))));
  let sum = 0;
  for (let c = 0; c < cells; c += 16) sum += sumHalving(e.slice(c, c + 16));
  const inv = f32(1 / sum);
  const w = e.map((x) => f32(x * inv));
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    const column = new Array<number>(cells).fill(0);
    for (let i = 0; i < count; i++) column[first + i] = values[i]![j]!;
    out[j] = dotF32(column, w, cells);
  }
  return out;
}

/**
 * ggml_compute_forward_soft_max_f32 on one row (an expert router's): exp of x - max by ggml_v_expf on each
 * whole 16 values, each 16 added by halves into an f64 sum; expf on the rest (Math.exp rounded to f32
 * stands for it, and may differ in its last bit now and then); every exp times the f32 reciprocal.
 */
export function softmax(x: ArrayLike<number>): Float32Array {
  const max = Math.max(...Array.from(x));
  const e = new Float32Array(x.length);
  let sum = 0, i = 0;
  for (; i + 16 <= x.length; i += 16) {
    for (let l = 0; l < 16; l++) e[i + l] = expAsLlamaCpp(f32(x[i + l]! - max));
    sum += sumHalving(e.subarray(i, i + 16));
  }
  for (; i < x.length; i++) sum += e[i] = f32(Math.exp(f32(x[i]! - max)));
  const inv = f32(1 / sum);
  return e.map((v) => f32(v * inv));
}

/**
 * ggml_vec_dot_f32 (AVX-512) for any n: dotF32 over the whole 64-value steps, then each remaining
 * product added to the f32 total by a fused multiply-add (the build contracts `sumf += x[i]*y[i]`).
 */
export function vecDotF32(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  const whole = n - (n % 64);
  let sum = dotF32(a, b, whole);
  for (let i = whole; i < n; i++) sum = fusedF32(a[i]!, b[i]!, sum);
  return sum;
}

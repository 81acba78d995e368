// The rotation a cache may store K and V in (`rotate`, llama.cpp's approach to 4-bit KV): each head's
// vector is multiplied by a normalized Walsh-Hadamard matrix H, which spreads a few large channels over
// all of them before quantizing. H is symmetric and orthogonal, so q.k = (Hq).(Hk) and the attention
// output is H applied to the output computed on rotated V. Blocks are the largest power of two dividing
// the head size. f32 arithmetic step by step, as native/hadamard.h does it, so both store the same bytes.

/** Largest power of two dividing headDim: the size of the Hadamard blocks. */
export function hadamardBlock(headDim: number): number {
  return headDim & -headDim;
}

/** Rotates x[at .. at + n) in place, in blocks of `block` (a power of two dividing n). */
export function hadamardInPlace(x: Float32Array, at: number, n: number, block: number): void {
  const scale = Math.fround(1 / Math.sqrt(block));
  for (let b = at; b < at + n; b += block) {
    for (let len = 1; len < block; len <<= 1) {
      for (let i = b; i < b + block; i += 2 * len) {
        for (let j = i; j < i + len; j++) {
          const u = x[j]!, v = x[j + len]!;
          x[j] = Math.fround(u + v);
          x[j + len] = Math.fround(u - v);
        }
      }
    }
    for (let i = b; i < b + block; i++) x[i] = Math.fround(x[i]! * scale);
  }
}

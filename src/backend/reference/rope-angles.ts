// RoPE's cos and sin for one position, in f32 as llama.cpp computes them (and native/elementwise.cc's
// ropeRows): pair i turns by position x base^(-2/ropeDim) multiplied in i times, each product rounded to
// f32, over the pair's factor, times the position scale, blended with the unscaled angle by YaRN's ramp
// (one fused multiply-add). Math.cos of the f32 angle, rounded to f32, stands for the C library's cosf,
// which may round differently in its last bit now and then.
import type { RopeParams } from '../backend.js';

const f32 = Math.fround;

/** cos and sin of every rotated pair's angle at `position`, each times the attention factor, into `cos` and `sin`. */
export function ropeCosSin(p: RopeParams, position: number, cos: Float32Array, sin: Float32Array): void {
  const half = p.ropeDim / 2;
  const thetaScale = f32(Math.pow(f32(p.freqBase), f32(-2 / p.ropeDim)));
  const scale = f32(p.freqScale);
  const m = f32(p.attnFactor ?? 1);
  let theta = f32(position);
  for (let i = 0; i < half; i++) {
    const extrapolated = f32(theta / (p.freqFactors ? p.freqFactors[i]! : 1));
    const interpolated = f32(scale * extrapolated);
    const mix = p.yarnRamp ? p.yarnRamp[i]! : 0;
    // A fused multiply-add: f64 holds the product exactly, so only the sum rounds (twice, to f64 then to
    // f32, which differs from one rounding only in rare ties).
    const angle = mix === 0 ? interpolated : f32(interpolated * f32(1 - mix) + f32(extrapolated * mix));
    cos[i] = f32(f32(Math.cos(angle)) * m);
    sin[i] = f32(f32(Math.sin(angle)) * m);
    theta = f32(theta * thetaScale);
  }
}

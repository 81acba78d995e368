// Self-attention as the Llama family computes it: project to Q, K and V (with optional biases and
// per-head QK norms), rotate Q and K by position (and, for Mistral 3, scale Q by it), store K and V in
// the cache, attend, project back. The Q scalings are plain arithmetic on the rows, so every backend runs
// them.
import type { AttentionShape, Backend, KVView, RopeParams, Weight } from '../../backend/backend.js';
import { applyQueryTemperature, type QueryTemperature } from '../attention-temperature.js';
import type { RopeScaling } from '../rope-scaling.js';
import type { LayerStep } from './layer-step.js';

export interface AttentionWeights {
  wq: Weight;
  wk: Weight;
  wv: Weight;
  wo: Weight;
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  /** Per-head RMS norms of Q and K before RoPE (Qwen3, Gemma 3): headDim weights shared by the heads. */
  qNorm?: Float32Array;
  kNorm?: Float32Array;
}

export interface AttentionOptions {
  nHeads: number;
  nKVHeads: number;
  headDim: number;
  ropeDim: number;
  ropeFreqBase: number;
  ropeFreqScale: number;
  ropeMode: 'normal' | 'neox';
  /** Per-pair frequency divisors, the cos/sin multiplier and YaRN's blend (loadRopeOptions in rope-scaling.ts). */
  ropeFreqFactors?: Float32Array;
  ropeAttnFactor?: number;
  ropeYarnRamp?: Float32Array;
  /** The file's scaling, checked to have been resolved into the three above. */
  ropeScaling?: RopeScaling;
  /** Softmax scale (default 1/sqrt(headDim) as llama.cpp rounds it, softmaxScale). */
  scale?: number;
  /**
   * Queries multiplied by this (f32) after RoPE instead of the scores by `scale`, which is then 1: where
   * llama.cpp's graph scales Q (Gemma, Phi-3), so the scores round as its do.
   */
  queryScale?: number;
  /** Sliding window in positions (Mistral, Gemma's local layers); omitted: every earlier position. */
  window?: number;
  /** Attention logit soft-cap (Gemma 2); omitted: none. */
  softcap?: number;
  /** Queries scaled by their position after RoPE (Ministral 3); omitted: none. */
  queryTemperature?: QueryTemperature;
  normEps: number;
}

/** 1/sqrt(x) in f32 arithmetic (1.0f / sqrtf(x)), as llama.cpp computes its attention scales. */
export function softmaxScale(x: number): number {
  return Math.fround(1 / Math.fround(Math.sqrt(x)));
}

export class AttentionBlock {
  private readonly ropeQ: RopeParams;
  private readonly ropeK: RopeParams;
  private readonly shape: AttentionShape;

  constructor(readonly w: AttentionWeights, private readonly o: AttentionOptions) {
    if (o.ropeScaling?.type === 'yarn' && !o.ropeYarnRamp) throw new Error('attention: YaRN scaling was not resolved into its ramp (loadRopeOptions)');
    this.ropeQ = {
      nHeads: o.nHeads, headDim: o.headDim, ropeDim: o.ropeDim, freqBase: o.ropeFreqBase, freqScale: o.ropeFreqScale, mode: o.ropeMode,
      freqFactors: o.ropeFreqFactors, attnFactor: o.ropeAttnFactor, ...(o.ropeYarnRamp ? { yarnRamp: o.ropeYarnRamp } : {}),
    };
    this.ropeK = { ...this.ropeQ, nHeads: o.nKVHeads };
    this.shape = {
      nHeads: o.nHeads, nKVHeads: o.nKVHeads, headDim: o.headDim, scale: o.queryScale !== undefined ? 1 : o.scale ?? softmaxScale(o.headDim),
      ...(o.window !== undefined ? { window: o.window } : {}),
      ...(o.softcap !== undefined ? { softcap: o.softcap } : {}),
    };
  }

  /** Re-rotates the keys this layer stored in rows first .. first + count - 1 of `slot` by `delta` positions. */
  shiftKeys(b: Backend, kv: KVView, layer: number, slot: number, first: number, count: number, delta: number): void {
    b.shiftKeys(kv, layer, slot, first, count, delta, this.ropeK);
  }

  /** out[n, dim] = attention output of the normed input h[n, dim]. out may alias h. */
  forward(out: Float32Array, h: Float32Array, s: LayerStep): void {
    const { backend: b, batch, n, scratch } = s;
    const o = this.o, w = this.w;
    const qDim = o.nHeads * o.headDim;
    const kvDim = o.nKVHeads * o.headDim;
    const q = scratch.get('q', n * qDim);
    const k = scratch.get('k', n * kvDim);
    const v = scratch.get('v', n * kvDim);
    const attn = scratch.get('attn', n * qDim);
    b.matmulMany([q, k, v], h, n, [w.wq, w.wk, w.wv]);
    if (w.bq) b.addBias(q, w.bq, n);
    if (w.bk) b.addBias(k, w.bk, n);
    if (w.bv) b.addBias(v, w.bv, n);
    if (w.qNorm) b.rmsnorm(q, q, w.qNorm, n * o.nHeads, o.headDim, o.normEps);
    if (w.kNorm) b.rmsnorm(k, k, w.kNorm, n * o.nKVHeads, o.headDim, o.normEps);
    b.rope(q, batch.positions, this.ropeQ);
    b.rope(k, batch.positions, this.ropeK);
    if (o.queryTemperature) applyQueryTemperature(q, batch.positions, n, qDim, o.queryTemperature);
    if (o.queryScale !== undefined) {
      const f = Math.fround(o.queryScale);
      for (let i = 0; i < n * qDim; i++) q[i] = q[i]! * f;
    }
    b.kvStore(s.kv, s.layer, k, v, batch.slots, s.rows);
    const votes = batch.scores;
    b.attention(attn, q, s.kv, s.layer, batch.slots, s.rows, this.shape, votes && { voters: votes.voters, acc: votes.acc(s.layer), stride: votes.stride });
    b.matmul(out, attn, n, w.wo);
  }
}

// One pre-norm transformer layer: x += attention(norm(x)); x += ffn(ffnNorm(x)). Gemma 2/3 also norm
// each branch's output before it is added (the post norms).
import { gatherRows } from '../batch.js';
import type { AttentionBlock } from './attention.js';
import type { FeedForward } from './feed-forward.js';
import type { LayerStep } from './layer-step.js';

export interface DecoderLayerParts {
  inputNorm: Float32Array;
  attention: AttentionBlock;
  ffnNorm: Float32Array;
  ffn: FeedForward;
  postAttentionNorm?: Float32Array;
  postFfnNorm?: Float32Array;
  normEps: number;
  dim: number;
}

/** Only some rows go on past attention: those batch rows (ascending), and the step the MLP runs as on them. */
export interface FfnRows {
  rows: Int32Array;
  step: LayerStep;
}

export class DecoderLayer {
  constructor(readonly p: DecoderLayerParts) {}

  get attention(): AttentionBlock {
    return this.p.attention;
  }

  get inputNorm(): Float32Array {
    return this.p.inputNorm;
  }

  /**
   * x is the residual stream and h holds inputNorm(x). Adds the attention branch into x and returns
   * the MLP branch (in h) for the caller to add, so that add can carry the next layer's input norm.
   * With `ffn`, only its rows go on past attention: x and h are narrowed to them (row j becomes
   * ffn.rows[j]) and the MLP runs on them alone, as ffn.step.
   */
  forward(x: Float32Array, h: Float32Array, s: LayerStep, ffn?: FfnRows): Float32Array {
    const b = s.backend;
    const p = this.p;
    p.attention.forward(h, h, s);
    if (p.postAttentionNorm) b.rmsnorm(h, h, p.postAttentionNorm, s.n, p.dim, p.normEps);
    if (ffn) {
      gatherRows(x, p.dim, ffn.rows);
      gatherRows(h, p.dim, ffn.rows);
      s = ffn.step;
    }
    const n = s.n;
    b.addRmsnorm(x, h, h, p.ffnNorm, n, p.dim, p.normEps);
    p.ffn.forward(h, h, s);
    if (p.postFfnNorm) b.rmsnorm(h, h, p.postFfnNorm, n, p.dim, p.normEps);
    return h;
  }
}

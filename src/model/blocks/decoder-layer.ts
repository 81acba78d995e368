// One pre-norm transformer layer: x += attention(norm(x)); x += ffn(ffnNorm(x)). Gemma 2/3 also norm
// each branch's output before it is added (the post norms).
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
   */
  forward(x: Float32Array, h: Float32Array, s: LayerStep): Float32Array {
    const { backend: b, n } = s;
    const p = this.p;
    p.attention.forward(h, h, s);
    if (p.postAttentionNorm) b.rmsnorm(h, h, p.postAttentionNorm, n, p.dim, p.normEps);
    b.addRmsnorm(x, h, h, p.ffnNorm, n, p.dim, p.normEps);
    p.ffn.forward(h, h, s);
    if (p.postFfnNorm) b.rmsnorm(h, h, p.postFfnNorm, n, p.dim, p.normEps);
    return h;
  }
}

// One pre-norm transformer layer: x += attention(norm(x)); x += ffn(ffnNorm(x)). Gemma 2/3 also norm
// each branch's output before it is added (the post norms).
import { gatherRows, narrowBatch } from '../batch.js';
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
   * With `ffnRows` (ascending batch rows), only those rows go on past attention: x and h are narrowed
   * to them (row j becomes ffnRows[j]) and the MLP runs on them alone; the caller narrows its batch.
   */
  forward(x: Float32Array, h: Float32Array, s: LayerStep, ffnRows?: Int32Array): Float32Array {
    const { backend: b } = s;
    let n = s.n;
    const p = this.p;
    p.attention.forward(h, h, s);
    if (p.postAttentionNorm) b.rmsnorm(h, h, p.postAttentionNorm, n, p.dim, p.normEps);
    if (ffnRows) {
      gatherRows(x, p.dim, ffnRows);
      gatherRows(h, p.dim, ffnRows);
      n = ffnRows.length;
      s = { ...s, n, batch: narrowBatch(s.batch, ffnRows), rows: Int32Array.from(ffnRows, (i) => s.rows[i]!) };
    }
    b.addRmsnorm(x, h, h, p.ffnNorm, n, p.dim, p.normEps);
    p.ffn.forward(h, h, s);
    if (p.postFfnNorm) b.rmsnorm(h, h, p.postFfnNorm, n, p.dim, p.normEps);
    return h;
  }
}

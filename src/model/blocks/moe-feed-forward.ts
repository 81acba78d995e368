// A mixture-of-experts MLP (Mixtral, Qwen2-MoE, Qwen3-MoE): a router picks k of the layer's SwiGLU
// experts per token and the output is their weighted sum, plus (Qwen2-MoE) a shared expert every token
// runs, scaled by a sigmoid gate. The batch is grouped by expert: each expert's tokens are gathered
// into one contiguous batch, so an expert costs one matmul per projection however many tokens chose it.
import type { Weight } from '../../backend/backend.js';
import { routeTokens, type RoutingOptions } from './expert-router.js';
import type { FeedForward } from './feed-forward.js';
import type { LayerStep } from './layer-step.js';

/** One expert: down(silu(gate(h)) * up(h)). */
export interface ExpertWeights {
  gate: Weight;
  up: Weight;
  down: Weight;
}

export interface SharedExpert {
  ffn: FeedForward;
  /** Scales the shared expert's output by sigmoid(gate · h) per token (Qwen2-MoE); absent: added as is. */
  gate?: Float32Array;
}

export interface MoEParts {
  /** Router: nExperts rows over the model's dim. */
  router: Weight;
  experts: ExpertWeights[];
  nUsed: number;
  normalize: boolean;
  shared?: SharedExpert;
}

export class MoEFeedForward implements FeedForward {
  private readonly routing: RoutingOptions;
  private readonly dim: number;
  private readonly width: number;

  constructor(readonly p: MoEParts) {
    const first = p.experts[0];
    if (!first) throw new RangeError('MoEFeedForward: no experts');
    this.dim = p.router.cols;
    this.width = first.gate.rows;
    if (p.router.rows !== p.experts.length) throw new RangeError(`MoEFeedForward: the router scores ${p.router.rows} experts, the layer has ${p.experts.length}`);
    for (const x of p.experts) {
      if (x.gate.cols !== this.dim || x.up.cols !== this.dim || x.up.rows !== this.width || x.down.cols !== this.width || x.down.rows !== this.dim) {
        throw new RangeError(`MoEFeedForward: expert "${x.gate.name}" is not ${this.dim} -> ${this.width} -> ${this.dim}`);
      }
    }
    if (p.shared?.gate && p.shared.gate.length !== this.dim) throw new RangeError(`MoEFeedForward: shared expert gate has ${p.shared.gate.length} weights, not ${this.dim}`);
    this.routing = { nExperts: p.experts.length, nUsed: p.nUsed, normalize: p.normalize };
  }

  forward(out: Float32Array, h: Float32Array, s: LayerStep): void {
    const { backend: b, n, scratch } = s;
    const { dim, width } = this;
    const logits = scratch.get('moeLogits', n * this.p.experts.length);
    b.matmul(logits, h, n, this.p.router);
    const r = routeTokens(logits, n, this.routing);
    // out may alias h, which every expert still reads: sum into a separate buffer.
    const sum = scratch.get('moeSum', n * dim).fill(0);
    this.p.experts.forEach((x, e) => {
      const from = r.start[e]!, count = r.start[e + 1]! - from;
      if (count === 0) return;
      const rows = scratch.get('moeRows', count * dim);
      for (let j = 0; j < count; j++) rows.set(h.subarray(r.token[from + j]! * dim, (r.token[from + j]! + 1) * dim), j * dim);
      const gate = scratch.get('moeGate', count * width);
      const up = scratch.get('moeUp', count * width);
      b.matmulMany([gate, up], rows, count, [x.gate, x.up]);
      b.swiglu(gate, gate, up, count * width);
      b.matmul(rows, gate, count, x.down);
      for (let j = 0; j < count; j++) addScaled(sum, r.token[from + j]! * dim, rows, j * dim, r.weight[from + j]!, dim);
    });
    const shared = this.p.shared;
    if (shared) {
      const y = scratch.get('moeShared', n * dim);
      shared.ffn.forward(y, h, s);
      for (let t = 0; t < n; t++) addScaled(sum, t * dim, y, t * dim, shared.gate ? sigmoid(dot(h, t * dim, shared.gate)) : 1, dim);
    }
    out.set(sum);
  }
}

function addScaled(to: Float32Array, at: number, from: Float32Array, fromAt: number, scale: number, len: number): void {
  for (let i = 0; i < len; i++) to[at + i] = to[at + i]! + scale * from[fromAt + i]!;
}

function dot(x: Float32Array, at: number, w: Float32Array): number {
  let acc = 0;
  for (let i = 0; i < w.length; i++) acc += x[at + i]! * w[i]!;
  return acc;
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

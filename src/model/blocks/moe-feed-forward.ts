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
    const k = this.p.nUsed;
    const nExperts = this.p.experts.length;
    const probs = scratch.get('moeProbs', n * nExperts);
    b.matmul(probs, h, n, this.p.router);
    b.softmax(probs, probs, n, nExperts);
    const r = routeTokens(probs, n, this.routing);
    // Each route's output row, at (token, slot): out may alias h, which every expert still reads.
    const routed = scratch.get('moeRouted', n * k * dim);
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
      for (let j = 0; j < count; j++) {
        const route = from + j;
        scaleInto(routed, (r.token[route]! * k + r.slot[route]!) * dim, rows, j * dim, r.weight[route]!, dim);
      }
    });
    const sum = scratch.get('moeSum', n * dim);
    // As llama.cpp adds them: the weighted outputs in slot order, each sum rounded to f32.
    for (let t = 0; t < n; t++) {
      sum.set(routed.subarray(t * k * dim, (t * k + 1) * dim), t * dim);
      for (let i = 1; i < k; i++) addInto(sum, t * dim, routed, (t * k + i) * dim, dim);
    }
    const shared = this.p.shared;
    if (shared) {
      const y = scratch.get('moeShared', n * dim);
      shared.ffn.forward(y, h, s);
      for (let t = 0; t < n; t++) {
        if (shared.gate) scaleInto(y, t * dim, y, t * dim, sharedExpertGate(dot(h, t * dim, shared.gate)), dim);
        addInto(sum, t * dim, y, t * dim, dim);
      }
    }
    out.set(sum);
  }
}

/** to[at..] = from[fromAt..] * scale, each product rounded to f32. */
function scaleInto(to: Float32Array, at: number, from: Float32Array, fromAt: number, scale: number, len: number): void {
  for (let i = 0; i < len; i++) to[at + i] = from[fromAt + i]! * scale;
}

/** to[at..] += from[fromAt..], each sum rounded to f32. */
function addInto(to: Float32Array, at: number, from: Float32Array, fromAt: number, len: number): void {
  for (let i = 0; i < len; i++) to[at + i] = to[at + i]! + from[fromAt + i]!;
}

function dot(x: Float32Array, at: number, w: Float32Array): number {
  let acc = 0;
  for (let i = 0; i < w.length; i++) acc += x[at + i]! * w[i]!;
  return acc;
}

/** sigmoid(g) as llama.cpp's Qwen2-MoE graph takes it, in f32: silu(g) / g (0.5 at g = 0, where that is 0 / 0). */
function sharedExpertGate(g: number): number {
  const x = Math.fround(g);
  if (x === 0) return 0.5;
  const silu = Math.fround(x / Math.fround(1 + Math.fround(Math.exp(-x))));
  return Math.fround(silu / x);
}

// The position-wise MLP of a layer. Architectures differ in the gate's activation (SwiGLU for Llama,
// GeGLU for Gemma) and in whether experts are mixed; each is a FeedForward.
import type { Weight } from '../../backend/backend.js';
import type { LayerStep } from './layer-step.js';

export interface FeedForward {
  /** out[n, dim] = MLP of the normed input h[n, dim]. out may alias h. */
  forward(out: Float32Array, h: Float32Array, s: LayerStep): void;
}

/** down(act(gate(h)) * up(h)) for a gated activation op of the backend. */
abstract class GatedFeedForward implements FeedForward {
  constructor(readonly gate: Weight, readonly up: Weight, readonly down: Weight) {}

  protected abstract activate(s: LayerStep, gate: Float32Array, up: Float32Array): void;

  forward(out: Float32Array, h: Float32Array, s: LayerStep): void {
    const ffn = this.gate.rows;
    const gate = s.scratch.get('gate', s.n * ffn);
    const up = s.scratch.get('up', s.n * ffn);
    s.backend.matmulMany([gate, up], h, s.n, [this.gate, this.up]);
    this.activate(s, gate, up);
    s.backend.matmul(out, gate, s.n, this.down);
  }
}

/** down(silu(gate(h)) * up(h)). */
export class SwiGLUFeedForward extends GatedFeedForward {
  protected activate(s: LayerStep, gate: Float32Array, up: Float32Array): void {
    s.backend.swiglu(gate, gate, up, gate.length);
  }
}

/** down(gelu(gate(h)) * up(h)), GELU in its tanh approximation (Gemma). */
export class GeGLUFeedForward extends GatedFeedForward {
  protected activate(s: LayerStep, gate: Float32Array, up: Float32Array): void {
    s.backend.geglu(gate, gate, up, gate.length);
  }
}

// ArrayKV: a ContiguousKV backed by ordinary Float32Arrays, every slot allocated for the full context
// up front. Used by tests and the single-sequence generate path until a KV manager is attached.
import { alignedFloat32Array } from './aligned-array.js';
import type { ContiguousKV } from './backend.js';

export class ArrayKV implements ContiguousKV {
  readonly layout = 'contiguous' as const;
  private readonly k: Float32Array[];
  private readonly v: Float32Array[];

  constructor(
    readonly nLayers: number,
    readonly maxSlots: number,
    readonly maxContext: number,
    readonly kvHeads: number,
    readonly headDim: number,
  ) {
    const perLayer = maxSlots * maxContext * kvHeads * headDim;
    this.k = Array.from({ length: nLayers }, () => alignedFloat32Array(perLayer));
    this.v = Array.from({ length: nLayers }, () => alignedFloat32Array(perLayer));
  }

  keys(layer: number): Float32Array {
    return this.k[layer] ?? fail(layer, this.nLayers);
  }
  values(layer: number): Float32Array {
    return this.v[layer] ?? fail(layer, this.nLayers);
  }
}

function fail(layer: number, n: number): never {
  throw new RangeError(`KV layer ${layer} is outside 0..${n - 1}`);
}

// ArrayKV: a ContiguousKV backed by ordinary byte arrays, every slot allocated for the full context up
// front (one page per slot). Used by tests and the single-sequence generate path until a KV manager is
// attached.
import { alignedBytes } from './aligned-array.js';
import type { ContiguousKV } from './backend.js';
import { DEFAULT_KV_TYPE, type KVFormat, type KVType } from '../kv/format.js';
import { residualRingFor, type ResidualRing } from '../kv/residual-ring.js';
import { resolveShape, tokenBytes } from '../kv/shape.js';

export class ArrayKV implements ContiguousKV {
  readonly layout = 'contiguous' as const;
  readonly keyFormat: KVFormat;
  readonly valueFormat: KVFormat;
  readonly rowBytes: number;
  readonly rowsPerPage: number;
  readonly pageBytes: number;
  readonly residual: ResidualRing | undefined;
  readonly rotate: boolean;
  private readonly k: Uint8Array[];
  private readonly v: Uint8Array[];

  constructor(
    readonly nLayers: number,
    readonly maxSlots: number,
    readonly maxContext: number,
    readonly kvHeads: number,
    readonly headDim: number,
    type: KVType = DEFAULT_KV_TYPE,
    /** Newest tokens kept in f16 (KIVI's residual; default 128 with KIVI formats, else 0). */
    residualTokens?: number,
    /** Store K and V rotated (see KVShape.rotate; default: on with q8_0 and q4_0). */
    rotate?: boolean,
  ) {
    const shape = resolveShape({ layers: nLayers, kvHeads, headDim, maxSlots, maxContext, type, residual: residualTokens, rotate });
    this.rotate = shape.rotate;
    this.residual = residualRingFor(shape);
    this.keyFormat = shape.keyFormat;
    this.valueFormat = shape.valueFormat;
    this.rowBytes = tokenBytes(shape);
    this.rowsPerPage = maxContext;
    this.pageBytes = maxContext * this.rowBytes;
    this.k = Array.from({ length: nLayers }, () => alignedBytes(maxSlots * this.pageBytes));
    this.v = Array.from({ length: nLayers }, () => alignedBytes(maxSlots * this.pageBytes));
  }

  keys(layer: number): Uint8Array {
    return this.k[layer] ?? fail(layer, this.nLayers);
  }
  values(layer: number): Uint8Array {
    return this.v[layer] ?? fail(layer, this.nLayers);
  }
}

function fail(layer: number, n: number): never {
  throw new RangeError(`KV layer ${layer} is outside 0..${n - 1}`);
}

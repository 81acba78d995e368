// The residual window of a KV cache (backend.ts ResidualWindow): per (layer, K/V) a ring of f16 rows for
// every slot, and per (layer, slot) how many tokens are already encoded. The managers own one when their
// formats need it, and move its boundary where they move tokens: a new or freed slot starts at 0, cached
// blocks attached to a slot are encoded already, and a shared prefix copies the source's waiting rows.
import { alignedBytes } from '../backend/aligned-array.js';
import type { ResidualWindow } from '../backend/backend.js';
import { KVError } from './errors.js';
import { groupTokens, needsResidual, type ResolvedKVShape } from './shape.js';

/** The most tokens of a sequence one kvStore takes: the ring's slack, and the engine's chunk per forward pass. */
const RING_CHUNK_TOKENS = 32;

export class ResidualRing implements ResidualWindow {
  readonly ringRows: number;
  private readonly rings: Uint8Array[];
  private readonly boundaries: Int32Array[];
  /** Bytes of one f16 row. */
  private readonly rowBytes: number;

  readonly base: Int32Array;
  readonly chunkTokens: number;

  /** `tokens`: R, a multiple of the group (resolveShape checks it). */
  constructor(private readonly shape: ResolvedKVShape, readonly tokens: number, readonly groupTokens: number) {
    // The window's R + G - 1 rows at most, and room for the rows one kvStore call adds.
    this.chunkTokens = Math.max(groupTokens, RING_CHUNK_TOKENS);
    this.ringRows = tokens + groupTokens + this.chunkTokens;
    this.base = new Int32Array(shape.maxSlots);
    this.rowBytes = shape.kvHeads * shape.headDim * 2;
    this.rings = Array.from({ length: shape.layers * 2 }, () => alignedBytes(shape.maxSlots * this.ringRows * this.rowBytes));
    this.boundaries = Array.from({ length: shape.layers }, () => new Int32Array(shape.maxSlots));
  }

  keys(layer: number): Uint8Array {
    return this.rings[this.check(layer) * 2]!;
  }

  values(layer: number): Uint8Array {
    return this.rings[this.check(layer) * 2 + 1]!;
  }

  encoded(layer: number): Int32Array {
    return this.boundaries[this.check(layer)]!;
  }

  /** Bytes the rings take (outside the page pool). */
  get bytes(): number {
    return this.rings.length * this.shape.maxSlots * this.ringRows * this.rowBytes;
  }

  /** The slot holds `encoded` tokens, all of them encoded (a new slot: 0; attached cached blocks). */
  reset(slot: number, encoded = 0): void {
    for (const b of this.boundaries) b[slot] = encoded;
    this.base[slot] = encoded;
  }

  /** dst (empty) takes src's first `tokens` tokens: the encoded ones as the manager copies them, the rest from src's ring. */
  share(src: number, dst: number, tokens: number): void {
    const slotBytes = this.ringRows * this.rowBytes;
    for (let layer = 0; layer < this.shape.layers; layer++) {
      const encoded = Math.min(this.boundaries[layer]![src]!, tokens);
      this.boundaries[layer]![dst] = encoded;
      this.base[dst] = encoded;
      for (const ring of [this.rings[layer * 2]!, this.rings[layer * 2 + 1]!]) {
        ring.copyWithin(dst * slotBytes, src * slotBytes, (src + 1) * slotBytes);
      }
    }
  }

  private check(layer: number): number {
    if (!(Number.isInteger(layer) && layer >= 0 && layer < this.shape.layers)) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT', `layer ${layer} out of range 0..${this.shape.layers - 1}`);
    }
    return layer;
  }
}

/** The ring a cache of this shape needs, if any. */
export function residualRingFor(shape: ResolvedKVShape): ResidualRing | undefined {
  return needsResidual(shape) ? new ResidualRing(shape, shape.residual, groupTokens(shape)) : undefined;
}

/** Compaction moves rows one by one, which would split the groups the formats encode together. */
export function refuseCompaction(ring: ResidualRing | undefined): void {
  if (ring) throw new KVError('ERR_KV_INVALID_ARGUMENT', 'compact: caches with a residual window (the KIVI formats) cannot be compacted yet');
}

// What the eviction policies read about each cache row, kept beside the KV cache: for every (layer,
// slot, KV head), the token position the row holds and the attention mass it has collected. After an
// eviction, rows are no longer in position order (compaction moves tail rows into holes), and each KV
// head may hold different tokens, so both are tracked per head and move with their rows.
//
// The scores arrays are laid out as the attention op's accumulators ([slot][kvHeads][maxContext] per
// layer, see AttentionScores): attention adds into them directly, with the slot as accumulator index.
import type { EvictionInput, KeepSets } from './policy.js';
import { applyMoves, moveList } from './keep-order.js';

export interface RowBookShape {
  layers: number;
  kvHeads: number;
  maxSlots: number;
  maxContext: number;
}

export class RowBook {
  private readonly scoreArrays: Float32Array[];
  private readonly positionArrays: Int32Array[];

  constructor(readonly shape: RowBookShape) {
    const size = shape.maxSlots * shape.kvHeads * shape.maxContext;
    this.scoreArrays = Array.from({ length: shape.layers }, () => new Float32Array(size));
    this.positionArrays = Array.from({ length: shape.layers }, () => new Int32Array(size));
  }

  /** Row stride of the accumulators: a (slot, head) has maxContext rows. */
  get stride(): number {
    return this.shape.maxContext;
  }

  /** The layer's accumulators, as attention takes them. */
  scores(layer: number): Float32Array {
    return this.scoreArrays[layer]!;
  }

  private offset(slot: number, head: number): number {
    return (slot * this.shape.kvHeads + head) * this.shape.maxContext;
  }

  /** A slot starting with `rows` rows in position order (a cached prefix): positions 0..rows-1, no scores. */
  reset(slot: number, rows: number): void {
    for (let layer = 0; layer < this.shape.layers; layer++) {
      for (let h = 0; h < this.shape.kvHeads; h++) {
        const o = this.offset(slot, h);
        const positions = this.positionArrays[layer]!;
        for (let r = 0; r < rows; r++) positions[o + r] = r;
        this.scoreArrays[layer]!.fill(0, o, o + this.shape.maxContext);
      }
    }
  }

  /** Forgets the slot's scores (TOVA reads only the newest query's). */
  clearScores(slot: number, rows: number): void {
    for (let layer = 0; layer < this.shape.layers; layer++) {
      for (let h = 0; h < this.shape.kvHeads; h++) {
        const o = this.offset(slot, h);
        this.scoreArrays[layer]!.fill(0, o, o + rows);
      }
    }
  }

  /**
   * Records that `count` tokens at positions first.. were stored at rows row.. of `slot` (every head; a
   * layer that holds `deficits[layer]` rows fewer than the slot stored them that much lower).
   */
  record(slot: number, row: number, first: number, count: number, deficits?: Int32Array): void {
    for (let layer = 0; layer < this.shape.layers; layer++) {
      const positions = this.positionArrays[layer]!;
      for (let h = 0; h < this.shape.kvHeads; h++) {
        const o = this.offset(slot, h) + row - (deficits?.[layer] ?? 0);
        for (let i = 0; i < count; i++) positions[o + i] = first + i;
      }
    }
  }

  /** dst's first `rows` rows become copies of src's (a forked choice). */
  copySlot(src: number, dst: number, rows: number): void {
    for (let layer = 0; layer < this.shape.layers; layer++) {
      for (const a of [this.positionArrays[layer]!, this.scoreArrays[layer]!]) {
        for (let h = 0; h < this.shape.kvHeads; h++) {
          const from = this.offset(src, h);
          a.copyWithin(this.offset(dst, h), from, from + rows);
        }
      }
    }
  }

  /** What a policy reads about `slot` when it holds `rows` rows and must keep `keep`. */
  input(slot: number, rows: number, keep: number, window: number): EvictionInput {
    const { layers, kvHeads, maxContext } = this.shape;
    return {
      layers,
      kvHeads,
      rows,
      keep,
      window,
      positions: (layer, head) => this.positionArrays[layer]!.subarray(this.offset(slot, head), this.offset(slot, head) + maxContext),
      scores: (layer, head) => this.scoreArrays[layer]!.subarray(this.offset(slot, head), this.offset(slot, head) + maxContext),
    };
  }

  /**
   * The compaction lists the KV managers take for a policy's keep sets ([layer][head], entry i = the row
   * that ends at row i); nothing moves until applyMoves.
   */
  moveLists(sets: KeepSets, rows: number): Int32Array[][] {
    return sets.map((heads) => heads.map((set) => moveList(set, rows)));
  }

  /** Moves positions and scores as the KV manager moved the rows; rows past the kept ones lose their scores. */
  applyMoves(slot: number, rows: number, lists: Int32Array[][]): void {
    lists.forEach((heads, layer) =>
      heads.forEach((list, h) => {
        const o = this.offset(slot, h), end = o + this.shape.maxContext;
        applyMoves(list, this.positionArrays[layer]!.subarray(o, end));
        const scores = this.scoreArrays[layer]!.subarray(o, end);
        applyMoves(list, scores);
        scores.fill(0, list.length, rows);
      }),
    );
  }
}

// What one forward pass is given: a token-packed batch, any mix of prefill chunks and decodes of
// different sequences.

/**
 * One step's work: token i of the batch is `tokens[i]` at RoPE position `positions[i]` of KV slot
 * `slots[i]`, stored at cache row `rows[i]` of its slot and attending to rows 0..rows[i]. Rows equal
 * positions until a sequence evicts tokens (DESIGN.md §8.3); then its rows are fewer than its positions.
 */
export interface Batch {
  tokens: Int32Array;
  positions: Int32Array;
  /** Cache rows (default: the positions). */
  rows?: Int32Array;
  slots: Int32Array;
  /** Indices of the batch rows whose next-token logits are wanted (usually each sequence's last). */
  logitRows: Int32Array;
  /** Attention weights to collect for the eviction policies (omitted: none). */
  scores?: BatchScores;
  /** Per layer, cache rows where a layer keeps fewer rows than the slot (PyramidKV; default: `rows`). */
  layerRows?: (layer: number) => Int32Array;
  /** CacheBlend's selective recompute of reused document tokens (model/blend-selection.ts); omitted: none. */
  blend?: BatchBlend;
}

/**
 * Which batch tokens are reused document tokens (their K/V already placed in the cache), grouped per
 * sequence, and what share of each group is recomputed past the selection layer.
 */
export interface BatchBlend {
  /** Per batch token: its group, or -1 for a token computed in every layer. */
  groups: Int32Array;
  /** Per group: the share (0..1) of its tokens recomputed past `layer`. */
  shares: Float64Array;
  /** The layer whose key deviation picks them; every token runs through layers 0..layer. */
  layer: number;
  /** Gradual filtering: select on this many consecutive layers from `layer` on (default 1). */
  stages?: number;
  /** Set by the forward pass: group tokens that ran through every layer. */
  recomputed?: number;
}

/** Per layer, where attention adds the weights of the batch's voting tokens (see AttentionScores). */
export interface BatchScores {
  /** Per batch token: the accumulator it adds into, or -1. */
  voters: Int32Array;
  /** The layer's accumulators, [accumulator][kvHeads][stride]. */
  acc(layer: number): Float32Array;
  stride: number;
}

/** The batch restricted to tokens `keep` (ascending), logit rows renumbered; every logit row must be kept. */
export function narrowBatch(batch: Batch, keep: Int32Array): Batch {
  const local = new Int32Array(batch.tokens.length).fill(-1);
  keep.forEach((i, j) => (local[i] = j));
  const take = (a: Int32Array) => Int32Array.from(keep, (i) => a[i]!);
  const logitRows = Int32Array.from(batch.logitRows, (r) => {
    const j = local[r] ?? -1;
    if (j < 0) throw new Error(`narrowBatch: logit row ${r} was dropped from the batch`);
    return j;
  });
  const blend = batch.blend && { ...batch.blend, groups: take(batch.blend.groups) };
  return {
    tokens: take(batch.tokens),
    positions: take(batch.positions),
    ...(batch.rows ? { rows: take(batch.rows) } : {}),
    slots: take(batch.slots),
    logitRows,
    ...(batch.scores ? { scores: { ...batch.scores, voters: take(batch.scores.voters) } } : {}),
    ...(batch.layerRows ? { layerRows: (layer: number) => take(batch.layerRows!(layer)) } : {}),
    ...(blend ? { blend } : {}),
  };
}

/** Moves rows `keep` (ascending) of a [rows][width] activation to its front, in place. */
export function gatherRows(x: Float32Array, width: number, keep: Int32Array): void {
  keep.forEach((i, j) => {
    if (i !== j) x.copyWithin(j * width, i * width, (i + 1) * width);
  });
}
